"""``provider_cases``: an organisation's answers read against its provider's own case findings.

    when:
      provider_cases:
        where: {fact: multi_agency_relevant}     # a case condition: which of the provider's cases
        insufficient_on: ["3.4", "3.6", "5.5"]   # case criteria whose findings are read
        at_least: 50                             # % of those cases insufficient on one of them
        min_cases: 3                             # fewer cases counted: the condition does not hold

Of the provider's cases where ``where`` holds, those *judged* on the criteria (at least one of
them sufficient or insufficient) are counted; the condition holds when at least ``min_cases``
were counted and at least ``at_least`` % of them are insufficient on one of the criteria.
Instead of ``insufficient_on``, ``failing`` names a case condition (e.g. a line of enquiry
answered no): every case where ``where`` holds is counted, and those where ``failing`` holds
count against. It is how an organisation rule says "the provider's own cases contradict what its
organisation file claims" — the thresholds are the rule set's, written in the rule.

It is an organisation form that reads cases, so it is known only in a sample run, after the
provider's cases are judged (``engine.run.run``). Without the cases (an organisation judged on
its own) it does not hold, and its trace says the cases were not read. ``where`` is a case
condition: checked against case scope, lowered on the case rules' schema and evaluated on each
case's final fact as the case is judged (see :meth:`Form.elsewhere`).
"""

from __future__ import annotations

import functools
from typing import Annotated, ClassVar

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from engine.check import models
from engine.check.models import Strict
from engine.check.rules.form import CASE, ORGANISATION, Form, as_list, condition_key, either, one_or_many, problem

#: A criterion judged case by case (the form reads case findings).
CaseCriterion = Annotated[str, models.criterion_of_scope(CASE), Field(json_schema_extra={"x-vocabulary": "criteria."})]


class CasesTest(Strict):
    where: "Condition" = Field(  # the case condition type, given by form.union
        description="A case condition choosing the provider's cases to read.")
    insufficient_on: one_or_many(CaseCriterion) | None = Field(
        default=None, description="Case criteria; a case counts against the organisation when one of them is "
        "insufficient (cases judged on none of them are left out).")
    failing: Annotated[list["Condition"], BeforeValidator(as_list),
                       Field(max_length=1, json_schema_extra={"x-one-or-many": True})] = Field(
        default_factory=list, description="Or a case condition: a case counts against the organisation when it holds.")
    at_least: float = Field(gt=0, le=100, description="% of the cases counted that must count against it.")
    min_cases: int = Field(default=1, ge=1, description="Fewest cases counted for the condition to hold.")

    @model_validator(mode="after")
    def _one_test(self) -> CasesTest:
        if (self.insufficient_on is None) == (not self.failing):
            raise ValidationError.from_exception_data("CasesTest", [problem(
                ("insufficient_on",), None, "invalid_value", "give exactly one of insufficient_on and failing",
                'e.g. insufficient_on: ["3.4", "3.6"]')])
        return self


def _words(condition: Form) -> str:
    """A case condition in words, composites included (``a and (b or c)``)."""
    parts = [_words(child) for _, child in condition.children()]
    if not parts:
        return condition.describe()
    if condition.key == "not":
        return f"not ({parts[0]})"
    joined = (" and " if condition.key == "all" else " or ").join(parts)
    return f"({joined})"


def figures(body: CasesTest, key: str, cases) -> dict | None:
    """What the condition counts among ``cases`` (None when the cases were not read): the cases
    matching ``where``, those judged on the criteria, and the references of those insufficient."""
    if cases is None:
        return None
    matching = [c for c in cases if key in c.matched]
    if body.failing:
        failing = condition_key(body.failing[0])
        judged = matching
        against = sorted(c.reference for c in matching if failing in c.matched)
    else:
        judged = [c for c in matching
                  if any(c.findings.get(k) in ("sufficient", "insufficient") for k in body.insufficient_on)]
        against = sorted(c.reference for c in judged
                         if any(c.findings.get(k) == "insufficient" for k in body.insufficient_on))
    return {"matching": len(matching), "judged": len(judged), "insufficient": len(against),
            "percent": round(100 * len(against) / len(judged), 1) if judged else None,
            "holds": len(judged) >= body.min_cases and 100 * len(against) >= body.at_least * len(judged),
            "cases": against}


# the attribute's value and its wording in a lint witness (module-level: compiled rules are pickled)

def _contradicted(body: CasesTest, key: str, model) -> bool:
    found = figures(body, key, getattr(model, "provider_cases", None))
    return bool(found and found["holds"])


def _witness(value: bool) -> str:
    return "the provider's cases contradict it" if value else "the provider's cases do not contradict it"


class ProviderCasesCondition(Form):
    """Enough of the provider's own cases (of a kind) are insufficient on given case criteria."""

    key: ClassVar[str] = "provider_cases"
    levels: ClassVar[frozenset[str]] = frozenset({ORGANISATION})
    provider_cases: CasesTest

    def elsewhere(self) -> list[tuple[tuple, str, Form]]:
        found = [(("provider_cases", "where"), CASE, self.body.where)]
        if self.body.failing:
            found.append((("provider_cases", "failing", 0), CASE, self.body.failing[0]))
        return found

    def describe(self, bindings: dict | None = None) -> str:
        body = self.body
        enough = f"(at least {body.min_cases} case{'s' * (body.min_cases != 1)} counted)"
        if body.failing:
            return (f"of the provider's cases where {_words(body.where)}, at least {body.at_least:g}% are cases where "
                    f"{_words(body.failing[0])} {enough}")
        one = "it" if len(body.insufficient_on) == 1 else "one of them"
        return (f"of the provider's cases where {_words(body.where)} judged on {either(body.insufficient_on)}, "
                f"at least {body.at_least:g}% are insufficient on {one} {enough}")

    def lower(self, low):
        key = condition_key(self)
        attribute = low.extra(f"cases_{key}", (True, False),
                              functools.partial(_contradicted, self.body, condition_key(self.body.where)), _witness)
        return low.test(attribute, [True])

    def seen(self, view) -> dict:
        found = figures(self.body, condition_key(self.body.where), getattr(view.model, "provider_cases", None))
        if found is None:
            return {"provider cases": "not read: organisation evidence judged without its provider's cases "
                                      "(judged in a sample run only)"}
        return {"provider cases matching": found["matching"], "counted": found["judged"],
                "falling short": found["insufficient"], "percent falling short": found["percent"],
                "cases": found["cases"]}
