"""Rule sets: the rule language methodology staff write, as strict models, and loading them.

A rule set is YAML (``rules/*.yaml``): an id, a version, the framework it applies to, the derived
facts it declares, and rules. A rule says *when* (a condition over the inspector's answers, the
case context and derived facts) *then* what follows (criterion findings, enablers, barriers,
derived facts). Every condition is a mapping with exactly one key naming its form::

    when:
      all:
        - flag: child_safeguarding
        - answer: {item: 3.1.a, in: [no, partly]}
        - not: {fact: risk_to_children_assessed}

Values are checked against the framework (items, criteria, vocabulary) and against the facts the
rule set declares; problems come back as diagnostics with the file, line and column.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from engine import framework as frameworks
from engine import models, source, validate
from engine.diagnostics import InputError, did_you_mean
from engine.models import Answer, Strict, _error, vocabulary

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,79}$"
FACT_ID_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
Finding = Literal["sufficient", "insufficient", "not_applicable"]


def _as_list(value: Any) -> Any:
    """Let a single value stand for a one-element list: ``flag: x`` means ``flag: [x]``."""
    return value if isinstance(value, list) else [value]


def _values(kind: str, what: str, item_type: type = str) -> Any:
    return Annotated[list[Annotated[item_type, vocabulary(kind, what)]], BeforeValidator(_as_list),
                     Field(min_length=1, json_schema_extra={"x-vocabulary": kind, "x-one-or-many": True})]


CaseItem = Annotated[str, models.item_of_scope("case"),
                     Field(pattern=models.ITEM_ID_PATTERN, json_schema_extra={"x-vocabulary": "items.case"})]
AnyItem = Annotated[str, models.item_of_scope(None),
                    Field(pattern=models.ITEM_ID_PATTERN, json_schema_extra={"x-vocabulary": "items."})]
Answers = Annotated[list[Answer], BeforeValidator(_as_list), Field(min_length=1, json_schema_extra={"x-one-or-many": True})]
FactName = Annotated[str, Field(pattern=FACT_ID_PATTERN)]


# --- conditions -----------------------------------------------------------------------------------


class ItemAnswer(Strict):
    item: CaseItem = Field(description="Framework item id, e.g. 3.1.a.")
    in_: Answers = Field(alias="in", description="Answers that satisfy the condition, e.g. [no, partly].")


class ItemsAnswer(Strict):
    items: Annotated[list[CaseItem], Field(min_length=1)] = Field(description="Framework item ids.")
    in_: Answers = Field(alias="in", description="Answers that satisfy the condition.")


class AtLeast(ItemsAnswer):
    n: int = Field(ge=1, description="How many of the items must have one of the answers.")

    @model_validator(mode="after")
    def _reachable(self) -> AtLeast:
        if self.n > len(self.items):
            raise ValidationError.from_exception_data("AtLeast", [InitErrorDetails(
                type=_error("invalid_value", f"at least {self.n} of {len(self.items)} items can never hold",
                            f"n must be between 1 and {len(self.items)}"), loc=("n",), input=self.n)])
        return self


class DiversityTest(Strict):
    field: str = Field(description="A diversity characteristic from the framework vocabulary, e.g. gender.")
    in_: Annotated[list[str], BeforeValidator(_as_list), Field(min_length=1, json_schema_extra={"x-one-or-many": True})] = Field(
        alias="in", description="Values that satisfy the condition.")


class AnswerCondition(Strict):
    """One item's answer is one of the given answers (an item not assessed matches none)."""
    answer: ItemAnswer


class AnyAnswerCondition(Strict):
    """At least one of the items has one of the answers."""
    any_answer: ItemsAnswer


class AllAnswersCondition(Strict):
    """Every one of the items has one of the answers."""
    all_answers: ItemsAnswer


class AtLeastCondition(Strict):
    """At least n of the items have one of the answers."""
    at_least: AtLeast


class NotAssessedCondition(Strict):
    """The inspector recorded nothing on this item."""
    not_assessed: CaseItem


class RiskCondition(Strict):
    """Risk of serious harm is at or above this level (levels are ordered in the framework)."""
    risk_at_least: Annotated[str, vocabulary("risk_levels", "risk level")] = Field(
        json_schema_extra={"x-vocabulary": "risk_levels"})


class ProviderCondition(Strict):
    """The case is supervised by one of these providers."""
    provider: _values("providers", "provider")


class SentenceCondition(Strict):
    """The sentence is of one of these types."""
    sentence_type: _values("sentence_types", "sentence type")


class RequirementCondition(Strict):
    """The sentence has at least one of these requirements."""
    requirement: _values("requirement_types", "requirement type")


class FlagCondition(Strict):
    """The case has at least one of these flags."""
    flag: _values("flags", "flag")


class MappaCondition(Strict):
    """The case is (true) or is not (false) managed under MAPPA."""
    mappa: bool


class MappaCategoryCondition(Strict):
    """The MAPPA category is one of these."""
    mappa_category: _values("mappa_categories", "MAPPA category", int)


class MappaLevelCondition(Strict):
    """The MAPPA level is at or above this level."""
    mappa_level_at_least: Annotated[int, vocabulary("mappa_levels", "MAPPA level")]


class DiversityCondition(Strict):
    """A diversity characteristic has one of these values."""
    diversity: DiversityTest


class FactCondition(Strict):
    """A fact derived by another rule holds."""
    fact: FactName


class AllCondition(Strict):
    """Every one of the conditions holds."""
    all: Annotated[list[Condition], Field(min_length=1)]


class AnyCondition(Strict):
    """At least one of the conditions holds."""
    any: Annotated[list[Condition], Field(min_length=1)]


class NotCondition(Strict):
    """The condition does not hold."""
    not_: Condition = Field(alias="not")


_CONDITIONS: dict[str, type[Strict]] = {
    "answer": AnswerCondition, "any_answer": AnyAnswerCondition, "all_answers": AllAnswersCondition,
    "at_least": AtLeastCondition, "not_assessed": NotAssessedCondition, "risk_at_least": RiskCondition,
    "provider": ProviderCondition, "sentence_type": SentenceCondition, "requirement": RequirementCondition,
    "flag": FlagCondition, "mappa": MappaCondition, "mappa_category": MappaCategoryCondition,
    "mappa_level_at_least": MappaLevelCondition, "diversity": DiversityCondition, "fact": FactCondition,
    "all": AllCondition, "any": AnyCondition, "not": NotCondition,
}
CONDITION_NAMES = tuple(_CONDITIONS)


def _single_key(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _CONDITIONS:
        return next(iter(value))
    return None


Condition = Annotated[
    Union[tuple(Annotated[cls, Tag(name)] for name, cls in _CONDITIONS.items())],  # type: ignore[misc]
    Discriminator(_single_key, custom_error_type="unknown_condition", custom_error_message="unknown condition",
                  custom_error_context={"conditions": ", ".join(CONDITION_NAMES)}),
]
for _model in (AllCondition, AnyCondition, NotCondition):
    _model.model_rebuild()


def condition_kind(condition: Strict) -> str:
    """The form of a condition, e.g. ``answer`` or ``all``."""
    return next(name for name, cls in _CONDITIONS.items() if type(condition) is cls)


def condition_body(condition: Strict) -> Any:
    """The value under the condition's single key."""
    return getattr(condition, "not_" if isinstance(condition, NotCondition) else condition_kind(condition))


# --- conclusions ----------------------------------------------------------------------------------

CaseCriterion = Annotated[str, models.criterion_of_scope("case"), Field(json_schema_extra={"x-vocabulary": "criteria.case"})]


class FindingBody(Strict):
    criterion: CaseCriterion = Field(description="Criterion id, quoted, e.g. \"3.1\".")
    value: Finding = Field(description="sufficient | insufficient | not_applicable")


class FactorBody(Strict):
    id: Annotated[str, Field(pattern=RULE_ID_PATTERN)] = Field(description="Stable id, e.g. children-risk-unassessed.")
    text: str = Field(min_length=1, description="The enabler or barrier in words, for the report.")
    criterion: CaseCriterion = Field(description="The criterion it bears on, quoted, e.g. \"3.3\".")


class FindingConclusion(Strict):
    """The criterion is judged sufficient, insufficient or not applicable."""
    finding: FindingBody


class EnablerConclusion(Strict):
    """Practice that helps effectiveness."""
    enabler: FactorBody


class BarrierConclusion(Strict):
    """Something that gets in the way of effectiveness."""
    barrier: FactorBody


class FactConclusion(Strict):
    """A derived fact that other rules can read with `fact:`."""
    fact: FactName


_CONCLUSIONS = {"finding": FindingConclusion, "enabler": EnablerConclusion, "barrier": BarrierConclusion,
                "fact": FactConclusion}


def _conclusion_key(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _CONCLUSIONS:
        return next(iter(value))
    return None


Conclusion = Annotated[
    Union[tuple(Annotated[cls, Tag(name)] for name, cls in _CONCLUSIONS.items())],  # type: ignore[misc]
    Discriminator(_conclusion_key, custom_error_type="unknown_conclusion", custom_error_message="unknown conclusion",
                  custom_error_context={"conditions": ", ".join(_CONCLUSIONS)}),
]


# --- rules and rule sets --------------------------------------------------------------------------


class Rule(Strict):
    """One rule: when the condition holds for a case, the conclusions follow."""

    id: Annotated[str, Field(pattern=RULE_ID_PATTERN)] = Field(description="Stable id, e.g. harm-to-children-not-identified.")
    title: str = Field(min_length=1, description="A short title, for reports.")
    rationale: str = Field(min_length=1, description="Why the conclusion follows, in plain English.")
    cites: Annotated[list[AnyItem], Field(min_length=1)] = Field(description="Framework items the rule rests on.")
    priority: int = Field(default=0, description="Higher wins when rules conclude different findings on a criterion.")
    when: Condition = Field(description="The condition, a mapping with one key: all, any, not, answer, flag, ...")
    then: Annotated[list[Conclusion], Field(min_length=1)] = Field(description="What follows when the condition holds.")


class FactDeclaration(Strict):
    id: FactName = Field(description="The fact's name, e.g. risk_to_children_unassessed.")
    description: str = Field(min_length=1, description="What the fact means.")


class InForce(Strict):
    from_: Annotated[datetime.date, Field(strict=False)] = Field(alias="from", description="First day in force.")
    to: Annotated[datetime.date | None, Field(strict=False)] = Field(default=None, description="Last day in force.")


class RuleSet(Strict):
    """A rule set: how case evidence leads to findings, enablers, barriers and derived facts."""

    id: models.Reference = Field(description="Rule set id, e.g. hmip-qi-adult-2.0-default.")
    title: str = Field(description="What this rule set is.")
    version: str = Field(description="Rule set version, quoted, e.g. \"1.0.0\".")
    framework: models.FrameworkRef
    in_force: InForce | None = Field(default=None, description="The dates the rule set is in force.")
    description: str | None = Field(default=None, description="Notes for reviewers.")
    facts: list[FactDeclaration] = Field(default_factory=list, description="Derived facts rules may conclude and read.")
    rules: Annotated[list[Rule], Field(min_length=1)]

    @model_validator(mode="after")
    def _cross_references(self) -> RuleSet:
        """Rule ids unique; facts read and concluded are declared; declared facts unique."""
        problems: list[InitErrorDetails] = []
        declared: dict[str, int] = {}
        for index, fact in enumerate(self.facts):
            if fact.id in declared:
                problems.append(_problem(("facts", index, "id"), fact.id, "duplicate_fact",
                                         f"fact {fact.id!r} is declared twice", "declare each fact once"))
            declared.setdefault(fact.id, index)
        seen: dict[str, int] = {}
        for index, rule in enumerate(self.rules):
            if rule.id in seen:
                problems.append(_problem(("rules", index, "id"), rule.id, "duplicate_rule",
                                         f"rule id {rule.id!r} is already used by rule {seen[rule.id] + 1}",
                                         "give each rule its own id"))
            seen.setdefault(rule.id, index)
            for loc, name in facts_read(rule.when, ("rules", index, "when")):
                if name not in declared:
                    problems.append(_problem(loc, name, "unknown_fact", f"fact {name!r} is not declared",
                                             did_you_mean(name, list(declared), "declared facts")))
            for c_index, conclusion in enumerate(rule.then):
                if isinstance(conclusion, FactConclusion) and conclusion.fact not in declared:
                    problems.append(_problem(("rules", index, "then", c_index, "fact"), conclusion.fact, "unknown_fact",
                                             f"fact {conclusion.fact!r} is not declared",
                                             did_you_mean(conclusion.fact, list(declared), "declared facts")))
        if problems:
            raise ValidationError.from_exception_data("RuleSet", problems)
        return self


def _problem(loc: tuple, value: Any, code: str, message: str, hint: str) -> InitErrorDetails:
    return InitErrorDetails(type=_error(code, message, hint), loc=loc, input=value)


def walk(condition: Strict, loc: tuple = ()):
    """Every condition in the tree, with its location: (loc, condition), parents first."""
    yield loc, condition
    if isinstance(condition, (AllCondition, AnyCondition)):
        kind = condition_kind(condition)
        for index, child in enumerate(condition_body(condition)):
            yield from walk(child, loc + (kind, index))
    elif isinstance(condition, NotCondition):
        yield from walk(condition.not_, loc + ("not",))


def facts_read(condition: Strict, loc: tuple = ()) -> list[tuple[tuple, str]]:
    """The derived facts a condition reads, with where each is read."""
    return [(where + ("fact",), c.fact) for where, c in walk(condition, loc) if isinstance(c, FactCondition)]


@dataclasses.dataclass(frozen=True)
class LoadedRuleSet:
    """A validated rule set with the document it came from (positions, sha256) and its framework."""

    rules: RuleSet
    document: source.Document
    framework: models.Framework

    @property
    def sha256(self) -> str:
        return self.document.sha256

    def rule_line(self, index: int) -> int:
        return self.document.where(("rules", index), key=False)[0]


def load(path: str | os.PathLike[str], framework: models.Framework | None = None) -> LoadedRuleSet:
    """Load and validate a rule set file against its framework. Raises InputError."""
    return from_document(source.load(path), framework)


def from_document(document: source.Document, framework: models.Framework | None = None) -> LoadedRuleSet:
    """Validate a loaded rule set document; its framework is the one it names unless given."""
    if not isinstance(document.data, dict) or "rules" not in document.data:
        raise InputError([document.diagnostic((), "wrong_file_kind", "this is not a rule set",
                                              "a rule set has id, title, version, framework, facts and rules")])
    if framework is None:
        framework = _framework_named(document)
    return LoadedRuleSet(validate.to_model(document, "rules", framework), document, framework)


def _framework_named(document: source.Document) -> models.Framework:
    named = document.data.get("framework")
    known = frameworks.bundled()
    if isinstance(named, dict) and (named.get("id"), named.get("version")) in known:
        return frameworks.load(known[(named["id"], named["version"])])
    shown = f"{named.get('id')} {named.get('version')}" if isinstance(named, dict) else repr(named)
    raise InputError([document.diagnostic(("framework",), "unknown_framework",
                                          f"framework {shown} is not known to qi",
                                          did_you_mean(shown, [f"{i} {v}" for i, v in sorted(known)],
                                                       "known frameworks"))])


models.KINDS["rules"] = RuleSet


def _either(values: list, joiner: str = "or") -> str:
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + f" {joiner} " + values[-1]


def describe(condition: Strict) -> str:
    """A condition in plain English (composites describe only their own connective)."""
    kind = condition_kind(condition)
    body = condition_body(condition)
    if kind == "all":
        return "all of these hold"
    if kind == "any":
        return "at least one of these holds"
    if kind == "not":
        return "this does not hold"
    if kind == "answer":
        return f"{body.item} is {_either(body.in_)}"
    if kind == "any_answer":
        return f"any of {', '.join(body.items)} is {_either(body.in_)}"
    if kind == "all_answers":
        return f"each of {', '.join(body.items)} is {_either(body.in_)}"
    if kind == "at_least":
        return f"at least {body.n} of {', '.join(body.items)} are {_either(body.in_)}"
    if kind == "not_assessed":
        return f"{body} was not assessed"
    if kind == "risk_at_least":
        return f"risk of serious harm is {body} or higher"
    if kind == "provider":
        return f"the provider is {_either(body)}"
    if kind == "sentence_type":
        return f"the sentence is {_either(body)}"
    if kind == "requirement":
        return f"the sentence has a {_either(body)} requirement"
    if kind == "flag":
        return f"the case is flagged {_either(body)}"
    if kind == "mappa":
        return "the case is managed under MAPPA" if body else "the case is not managed under MAPPA"
    if kind == "mappa_category":
        return f"the MAPPA category is {_either(body)}"
    if kind == "mappa_level_at_least":
        return f"the MAPPA level is {body} or higher"
    if kind == "diversity":
        return f"{body.field} is {_either(body.in_)}"
    return f"the fact {body} holds"
