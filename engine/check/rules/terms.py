"""The values rules name — items, answers, facts, criteria, standards, providers, targets and
thresholds — as annotated types shared by conditions, conclusions and rules."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationError, model_validator

from engine.check import models
from engine.check.models import Answer, Strict, vocabulary
from engine.check.rules.form import one_or_many, problem

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,79}$"
FACT_ID_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
#: The ids a sample rule can be instantiated for (``for_each``) and conclusions can name.
BINDABLE = ("criterion", "standard", "provider")

# Items and criteria are checked to exist here; that each section (case rules, organisation
# rules) reads only its own scope is checked by RuleSet once the whole file is read.
ItemId = Annotated[str, models.item_of_scope(None),
                   Field(pattern=models.NODE_ID_PATTERN, json_schema_extra={"x-vocabulary": "items."})]
Answers = one_or_many(Answer)  # each checked against the vocabulary's answers
FactName = Annotated[str, Field(pattern=FACT_ID_PATTERN)]
RuleId = Annotated[str, Field(pattern=RULE_ID_PATTERN)]
CriterionId = Annotated[str, models.criterion_of_scope(None), Field(json_schema_extra={"x-vocabulary": "criteria."})]
StandardId = Annotated[str, Field(pattern=models.NODE_ID_PATTERN, description="Standard id, quoted, e.g. \"3\".")]
Provider = Annotated[str, vocabulary("providers", "provider"), Field(json_schema_extra={"x-vocabulary": "providers"})]


def terms(kind: str, what: str, item_type: type = str) -> Any:
    """One or more terms of framework vocabulary ``kind`` (``flags``...), checked against it."""
    return one_or_many(Annotated[item_type, vocabulary(kind, what)], **{"x-vocabulary": kind})


class Target(Strict):
    """What an aggregate is about: a criterion or a standard, overall or for one provider. Fields
    left out are taken from the rule's ``for_each``."""

    criterion: CriterionId | None = Field(default=None, description="Criterion id, e.g. \"3.4\".")
    standard: StandardId | None = Field(default=None, description="Standard id, e.g. \"3\" (pooled over its criteria).")
    provider: Provider | None = Field(default=None, description="A provider; omit for the whole sample.")


class Threshold(Strict):
    at_least: float | None = Field(default=None, description="Holds when the figure is at least this.")
    below: float | None = Field(default=None, description="Holds when the figure is below this.")

    @model_validator(mode="after")
    def _bounded(self) -> Threshold:
        if self.at_least is None and self.below is None:
            raise ValidationError.from_exception_data("Threshold", [problem(
                ("at_least",), None, "invalid_threshold", "give at_least, below, or both (a range)",
                "e.g. at_least: 65, below: 80")])
        if self.at_least is not None and self.below is not None and self.at_least >= self.below:
            raise ValidationError.from_exception_data("Threshold", [problem(
                ("below",), self.below, "invalid_threshold", f"no figure is at least {self.at_least} and below "
                f"{self.below}", "make below larger than at_least")])
        return self

    def words(self) -> str:
        """``at least 65%``, ``below 80%`` or ``at least 65% and below 80%``."""
        if self.at_least is not None and self.below is not None:
            return f"at least {self.at_least:g}% and below {self.below:g}%"
        return f"at least {self.at_least:g}%" if self.at_least is not None else f"below {self.below:g}%"


def target_of(body: Any, bindings: dict) -> tuple[str | None, str | None]:
    """The (criterion, standard) a condition or conclusion is about: its own, else the instance's."""
    if getattr(body, "overall", False):
        return None, None
    criterion = getattr(body, "criterion", None)
    standard = getattr(body, "standard", None)
    if criterion is None and standard is None:
        criterion, standard = bindings.get("criterion"), bindings.get("standard")
    return criterion, standard


def group_of(body: Any, bindings: dict) -> str | None:
    """The provider a condition or conclusion is about (its own, else the instance's), or None for all."""
    return getattr(body, "provider", None) or bindings.get("provider")
