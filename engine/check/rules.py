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
import string
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import InitErrorDetails

from engine.base.diagnostics import InputError, did_you_mean
from engine.check import framework as frameworks
from engine.check import models, validate
from engine.check.models import Answer, Strict, _error, vocabulary
from engine.load import source

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,79}$"
FACT_ID_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
Finding = Literal["sufficient", "insufficient", "not_applicable"]


def _as_list(value: Any) -> Any:
    """Let a single value stand for a one-element list: ``flag: x`` means ``flag: [x]``."""
    return value if isinstance(value, list) else [value]


def _values(kind: str, what: str, item_type: type = str) -> Any:
    return Annotated[list[Annotated[item_type, vocabulary(kind, what)]], BeforeValidator(_as_list),
                     Field(min_length=1, json_schema_extra={"x-vocabulary": kind, "x-one-or-many": True})]


# Items and criteria are checked to exist here; that each section (case rules, organisation
# rules) reads only its own scope is checked by RuleSet once the whole file is read.
ItemId = Annotated[str, models.item_of_scope(None),
                   Field(pattern=models.ITEM_ID_PATTERN, json_schema_extra={"x-vocabulary": "items."})]
Answers = Annotated[list[Answer], BeforeValidator(_as_list), Field(min_length=1, json_schema_extra={"x-one-or-many": True})]
FactName = Annotated[str, Field(pattern=FACT_ID_PATTERN)]


# --- conditions -----------------------------------------------------------------------------------


class ItemAnswer(Strict):
    item: ItemId = Field(description="Framework item id, e.g. 3.1.a.")
    in_: Answers = Field(alias="in", description="Answers that satisfy the condition, e.g. [no, partly].")


class ItemsAnswer(Strict):
    items: Annotated[list[ItemId], Field(min_length=1)] = Field(description="Framework item ids.")
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
    not_assessed: ItemId


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


def one_key_union(forms: dict[str, type], error_type: str) -> Any:
    """A union of mappings with one key each, told apart by that key (pydantic then reports errors
    of the chosen form only); anything else is ``error_type``, with the known keys in its context."""

    def key_of(value: Any) -> str | None:
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in forms:
            return next(iter(value))
        return None

    return Annotated[
        Union[tuple(Annotated[cls, Tag(name)] for name, cls in forms.items())],  # type: ignore[misc]
        Discriminator(key_of, custom_error_type=error_type, custom_error_message=error_type.replace("_", " "),
                      custom_error_context={"conditions": ", ".join(forms)}),
    ]


Condition = one_key_union(_CONDITIONS, "unknown_condition")
for _model in (AllCondition, AnyCondition, NotCondition):
    _model.model_rebuild()


_CONDITION_KINDS = {cls: name for name, cls in _CONDITIONS.items()}


def condition_kind(condition: Strict) -> str:
    """The form of a condition, e.g. ``answer`` or ``all``."""
    return _CONDITION_KINDS[type(condition)]


def condition_body(condition: Strict) -> Any:
    """The value under the condition's single key."""
    kind = condition_kind(condition)
    return getattr(condition, "not_" if kind == "not" else kind)


# --- conclusions ----------------------------------------------------------------------------------

CriterionId = Annotated[str, models.criterion_of_scope(None), Field(json_schema_extra={"x-vocabulary": "criteria."})]


class FindingBody(Strict):
    criterion: CriterionId = Field(description="Criterion id, quoted, e.g. \"3.1\".")
    value: Finding = Field(description="sufficient | insufficient | not_applicable")


class FactorBody(Strict):
    id: Annotated[str, Field(pattern=RULE_ID_PATTERN)] = Field(description="Stable id, e.g. children-risk-unassessed.")
    text: str = Field(min_length=1, description="The enabler or barrier in words, for the report.")
    criterion: CriterionId = Field(description="The criterion it bears on, quoted, e.g. \"3.3\".")


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


Conclusion = one_key_union(_CONCLUSIONS, "unknown_conclusion")


# --- rules and rule sets --------------------------------------------------------------------------


class Rule(Strict):
    """One rule: when the condition holds for a case, the conclusions follow."""

    id: Annotated[str, Field(pattern=RULE_ID_PATTERN)] = Field(description="Stable id, e.g. harm-to-children-not-identified.")
    title: str = Field(min_length=1, description="A short title, for reports.")
    rationale: str = Field(min_length=1, description="Why the conclusion follows, in plain English.")
    cites: list[ItemId] = Field(default_factory=list,
                                description="Framework items the rule rests on (none for rules over case context only).")
    priority: int = Field(default=0, description="Higher wins when rules conclude different findings on a criterion.")
    when: Condition = Field(description="The condition, a mapping with one key: all, any, not, answer, flag, ...")
    then: Annotated[list[Conclusion], Field(min_length=1)] = Field(description="What follows when the condition holds.")


# --- sample-level rules: conditions over aggregates, conclusions for the whole sample -----------------

Provider = Annotated[str, vocabulary("providers", "provider"), Field(json_schema_extra={"x-vocabulary": "providers"})]
StandardId = Annotated[str, Field(pattern=r"^[0-9]+$", description="Standard id, quoted, e.g. \"3\".")]
BINDABLE = ("criterion", "standard", "provider")


class Target(Strict):
    """What an aggregate is about: a criterion or a standard, overall or for one provider. Fields
    left out are taken from the rule's ``for_each``."""

    criterion: CriterionId | None = Field(default=None, description="Criterion id, e.g. \"3.1\".")
    standard: StandardId | None = Field(default=None, description="Standard id, e.g. \"3\" (pooled over its criteria).")
    provider: Provider | None = Field(default=None, description="A provider; omit for the whole sample.")


class Threshold(Strict):
    at_least: float | None = Field(default=None, description="Holds when the figure is at least this.")
    below: float | None = Field(default=None, description="Holds when the figure is below this.")

    @model_validator(mode="after")
    def _bounded(self) -> Threshold:
        if self.at_least is None and self.below is None:
            raise ValidationError.from_exception_data("Threshold", [_problem(
                ("at_least",), None, "invalid_threshold", "give at_least, below, or both (a range)",
                "e.g. at_least: 65, below: 80")])
        if self.at_least is not None and self.below is not None and self.at_least >= self.below:
            raise ValidationError.from_exception_data("Threshold", [_problem(
                ("below",), self.below, "invalid_threshold", f"no figure is at least {self.at_least} and below "
                f"{self.below}", "make below larger than at_least")])
        return self


class PercentTest(Target, Threshold):
    """% sufficient of applicable cases (groups under the minimum size never hold)."""


class ShareTest(Threshold):
    barrier: str | None = Field(default=None, description="A case-level barrier id.")
    enabler: str | None = Field(default=None, description="A case-level enabler id.")
    provider: Provider | None = Field(default=None, description="A provider; omit for the whole sample.")

    @model_validator(mode="after")
    def _one_factor(self) -> ShareTest:
        if (self.barrier is None) == (self.enabler is None):
            raise ValidationError.from_exception_data("ShareTest", [_problem(
                ("barrier",), None, "invalid_value", "give exactly one of barrier and enabler",
                "e.g. barrier: children-risk-unassessed")])
        return self


class GapTest(Strict):
    criterion: CriterionId | None = None
    standard: StandardId | None = None
    between: str = Field(description="provider, sentence_type, risk_of_serious_harm, or a diversity field.")
    at_least: float = Field(description="Points between the highest and lowest comparable groups.")


class ProviderGapTest(Strict):
    criterion: CriterionId | None = None
    standard: StandardId | None = None
    provider: Provider = Field(description="The provider whose figure is lower.")
    other: Provider = Field(description="The provider it is compared with.")
    by_at_least: float = Field(description="How many points lower.")


class RatedTest(Target):
    band: Annotated[list[str], BeforeValidator(_as_list), Field(min_length=1)] = Field(
        description="Bands (from sample.bands) that satisfy the condition.")


class PercentCondition(Strict):
    """The % of applicable cases judged sufficient is at least / below a figure."""
    percent_sufficient: PercentTest


class ShareCondition(Strict):
    """The % of cases with a given barrier or enabler is at least / below a figure."""
    share_with: ShareTest


class GapCondition(Strict):
    """Groups of cases differ by at least N points on % sufficient."""
    gap: GapTest


class ProviderGapCondition(Strict):
    """One provider's % sufficient is at least N points below another's."""
    provider_below: ProviderGapTest


class RatedCondition(Strict):
    """A criterion or standard has been rated one of these bands by another sample rule."""
    rated: RatedTest


class CriterionRatedCondition(Strict):
    """Some criterion of the standard has been rated one of these bands."""
    criterion_rated: RatedTest


class SampleAllCondition(Strict):
    """Every one of the conditions holds."""
    all: Annotated[list[SampleCondition], Field(min_length=1)]


class SampleAnyCondition(Strict):
    """At least one of the conditions holds."""
    any: Annotated[list[SampleCondition], Field(min_length=1)]


class SampleNotCondition(Strict):
    """The condition does not hold."""
    not_: SampleCondition = Field(alias="not")


_SAMPLE_CONDITIONS: dict[str, type[Strict]] = {
    "percent_sufficient": PercentCondition, "share_with": ShareCondition, "gap": GapCondition,
    "provider_below": ProviderGapCondition, "rated": RatedCondition, "criterion_rated": CriterionRatedCondition,
    "fact": FactCondition, "all": SampleAllCondition, "any": SampleAnyCondition, "not": SampleNotCondition,
}


SampleCondition = one_key_union(_SAMPLE_CONDITIONS, "unknown_condition")
for _model in (SampleAllCondition, SampleAnyCondition, SampleNotCondition):
    _model.model_rebuild()


class RecommendationBody(Strict):
    id: Annotated[str, Field(pattern=RULE_ID_PATTERN)] = Field(description="Stable id, e.g. improve-risk-assessment.")
    text: str = Field(min_length=1, description="The recommendation; may use {criterion}, {criterion_title}, "
                                                "{standard}, {standard_title}, {provider}.")
    to: Annotated[list[str], BeforeValidator(_as_list), Field(min_length=1)] = Field(
        description="Who it is addressed to: providers, bodies in sample.recipients, or \"{provider}\" for the "
                    "provider of a rule with for_each: provider.")


class RatingBody(Target):
    band: str = Field(description="A band from sample.bands.")


class SampleFactorBody(Strict):
    id: Annotated[str, Field(pattern=RULE_ID_PATTERN)] = Field(description="Stable id.")
    text: str = Field(min_length=1, description="The enabler or barrier across the sample (placeholders as for recommendations).")
    criterion: CriterionId | None = None
    standard: StandardId | None = None
    provider: Provider | None = None


class RecommendationConclusion(Strict):
    """A recommendation, addressed to one or more bodies."""
    recommendation: RecommendationBody


class RatingConclusion(Strict):
    """A rating band for a criterion or standard (the worst band concluded wins)."""
    rating: RatingBody


class SampleEnablerConclusion(Strict):
    """An enabler across the sample."""
    enabler: SampleFactorBody


class SampleBarrierConclusion(Strict):
    """A barrier across the sample."""
    barrier: SampleFactorBody


_SAMPLE_CONCLUSIONS = {"recommendation": RecommendationConclusion, "rating": RatingConclusion,
                       "enabler": SampleEnablerConclusion, "barrier": SampleBarrierConclusion, "fact": FactConclusion}


SampleConclusion = one_key_union(_SAMPLE_CONCLUSIONS, "unknown_conclusion")


class SampleRule(Strict):
    """A rule over the whole sample's aggregates, optionally instantiated for each criterion,
    standard and/or provider (``for_each``); conditions and conclusions that leave out a
    criterion, standard or provider take the instance's."""

    id: Annotated[str, Field(pattern=RULE_ID_PATTERN)] = Field(description="Stable id.")
    title: str = Field(min_length=1)
    rationale: str = Field(min_length=1, description="Why the conclusion follows, in plain English.")
    cites: list[Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+(\.[a-z]+)?)?$")]] = Field(
        default_factory=list, description="Standards, criteria or items the rule rests on.")
    for_each: Annotated[list[Literal["criterion", "standard", "provider"]], BeforeValidator(_as_list)] = Field(
        default_factory=list, description="Instantiate the rule for each case-scoped criterion or standard, and/or provider.")
    priority: int = 0
    when: SampleCondition
    then: Annotated[list[SampleConclusion], Field(min_length=1)]


class SampleSettings(Strict):
    """How the sample is aggregated and rated."""

    min_group_size: int = Field(default=5, ge=1, description="Groups with fewer applicable cases are marked, not compared.")
    gap_points: float = Field(default=15, description="Differences between groups of at least this many points are flagged.")
    bands: list[str] = Field(default_factory=list, description="Rating bands, best first; the worst concluded wins.")
    recipients: list[models.Term] = Field(default_factory=list,
                                          description="Bodies recommendations may be addressed to besides providers.")


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
    rules: Annotated[list[Rule], Field(min_length=1)] = Field(description="Rules over each case.")
    organisation_rules: list[Rule] = Field(default_factory=list,
                                           description="Rules over each provider's organisation evidence.")
    sample: SampleSettings = Field(default_factory=SampleSettings)
    sample_rules: list[SampleRule] = Field(default_factory=list, description="Rules over the whole sample.")

    @model_validator(mode="after")
    def _cross_references(self, info: ValidationInfo) -> RuleSet:
        """What no single field can check: ids unique, facts declared, each section reading only
        its own scope, and sample rules' bands, recipients, placeholders and bindings."""
        problems: list[InitErrorDetails] = []
        declared: dict[str, int] = {}
        for index, fact in enumerate(self.facts):
            if fact.id in declared:
                problems.append(_problem(("facts", index, "id"), fact.id, "duplicate_fact",
                                         f"fact {fact.id!r} is declared twice", "declare each fact once"))
            declared.setdefault(fact.id, index)
        seen: dict[str, tuple] = {}
        sections = (("rules", self.rules), ("organisation_rules", self.organisation_rules),
                    ("sample_rules", self.sample_rules))
        for section, section_rules in sections:
            for index, rule in enumerate(section_rules):
                here = (section, index)
                if rule.id in seen:
                    problems.append(_problem(here + ("id",), rule.id, "duplicate_rule",
                                             f"rule id {rule.id!r} is already used by {seen[rule.id][0]} "
                                             f"{seen[rule.id][1] + 1}", "give each rule its own id"))
                seen.setdefault(rule.id, here)
                for loc, name in facts_read(rule.when, here + ("when",)):
                    if name not in declared:
                        problems.append(_problem(loc, name, "unknown_fact", f"fact {name!r} is not declared",
                                                 did_you_mean(name, list(declared), "declared facts")))
                for c_index, conclusion in enumerate(rule.then):
                    if isinstance(conclusion, FactConclusion) and conclusion.fact not in declared:
                        problems.append(_problem(here + ("then", c_index, "fact"), conclusion.fact, "unknown_fact",
                                                 f"fact {conclusion.fact!r} is not declared",
                                                 did_you_mean(conclusion.fact, list(declared), "declared facts")))
        framework = (info.context or {}).get("framework")
        if framework is not None:
            for index, rule in enumerate(self.rules):
                problems += _scope_problems(rule, ("rules", index), "case", framework)
            for index, rule in enumerate(self.organisation_rules):
                problems += _scope_problems(rule, ("organisation_rules", index), "organisation", framework)
            for index, rule in enumerate(self.sample_rules):
                problems += _sample_problems(self, rule, ("sample_rules", index), framework)
        if problems:
            raise ValidationError.from_exception_data("RuleSet", problems)
        return self


#: Conditions that read only an organisation's evidence (and so may appear in organisation rules).
ORGANISATION_CONDITIONS = {"answer", "any_answer", "all_answers", "at_least", "not_assessed", "provider", "fact",
                           "all", "any", "not"}


def _scope_problems(rule: Rule, here: tuple, scope: str, framework: models.Framework) -> list[InitErrorDetails]:
    """A case rule reads and concludes on case-scoped items and criteria; an organisation rule on
    organisation-scoped ones, and reads no case context."""
    problems = []
    items_allowed = set(framework.item_ids(scope))
    other = "organisation_rules" if scope == "case" else "rules"

    def check_item(loc: tuple, item: str) -> None:
        if item not in items_allowed:
            problems.append(_problem(loc, item, "wrong_scope", f"item {item!r} is not judged in {scope} evidence",
                                     f"rules over it belong in {other}"))

    for index, item in enumerate(rule.cites):
        check_item(here + ("cites", index), item)
    for loc, condition in walk(rule.when, here + ("when",)):
        kind = condition_kind(condition)
        body = condition_body(condition)
        if scope == "organisation" and kind not in ORGANISATION_CONDITIONS:
            problems.append(_problem(loc, kind, "wrong_scope", f"condition {kind!r} reads case context",
                                     "organisation rules read answers, provider and facts only"))
        if kind == "answer":
            check_item(loc + (kind, "item"), body.item)
        elif kind in ("any_answer", "all_answers", "at_least"):
            for i, item in enumerate(body.items):
                check_item(loc + (kind, "items", i), item)
        elif kind == "not_assessed":
            check_item(loc + (kind,), body)
    criteria = {c.id for st in framework.standards if st.scope == scope for c in st.criteria}
    for index, conclusion in enumerate(rule.then):
        body = getattr(conclusion, "finding", None) or getattr(conclusion, "enabler", None) \
            or getattr(conclusion, "barrier", None)
        if body is not None and body.criterion not in criteria:
            problems.append(_problem(here + ("then", index), body.criterion, "wrong_scope",
                                     f"criterion {body.criterion!r} is not judged in {scope} evidence",
                                     f"conclusions on it belong in {other}"))
    return problems


PLACEHOLDERS = ("criterion", "criterion_title", "standard", "standard_title", "provider")
GROUPINGS = ("provider", "sentence_type", "risk_of_serious_harm")


def _sample_problems(ruleset: RuleSet, rule: SampleRule, here: tuple,
                     framework: models.Framework) -> list[InitErrorDetails]:
    problems = []
    bands = ruleset.sample.bands
    bound = set(rule.for_each)
    standards = [st.id for st in framework.standards if st.scope == "case"]
    recipients = framework.vocabulary.ids("providers") + [r.id for r in ruleset.sample.recipients]
    groupings = list(GROUPINGS) + [d.id for d in framework.vocabulary.diversity]
    factors = {(kind, getattr(c, kind).id) for r in ruleset.rules for c in r.then
               for kind in ("barrier", "enabler") if hasattr(c, kind)}

    def target(loc: tuple, body, needs_target: bool = True) -> None:
        criterion = getattr(body, "criterion", None)
        standard = getattr(body, "standard", None)
        if criterion is not None and standard is not None:
            problems.append(_problem(loc, None, "invalid_value", "give a criterion or a standard, not both",
                                     "remove one of them"))
        if standard is not None and standard not in standards:
            problems.append(_problem(loc + ("standard",), standard, "unknown_standard",
                                     f"{standard!r} is not a case-scoped standard",
                                     did_you_mean(standard, standards, "standards")))
        if needs_target and criterion is None and standard is None and not bound & {"criterion", "standard"}:
            problems.append(_problem(loc, None, "unbound_target", "this names no criterion or standard",
                                     "add criterion: or standard:, or for_each: criterion to the rule"))

    def band(loc: tuple, value: str) -> None:
        if value not in bands:
            problems.append(_problem(loc, value, "unknown_band", f"{value!r} is not a rating band",
                                     did_you_mean(value, bands, "sample.bands")))

    for loc, condition in walk(rule.when, here + ("when",)):
        kind = next(name for name, cls in _SAMPLE_CONDITIONS.items() if type(condition) is cls)
        body = getattr(condition, "not_" if kind == "not" else kind)
        where = loc + (kind,)
        if kind in ("percent_sufficient", "gap", "provider_below", "rated"):
            target(where, body)
        if kind in ("rated", "criterion_rated"):
            for i, value in enumerate(body.band):
                band(where + ("band", i), value)
        if kind == "criterion_rated" and body.standard is None and "standard" not in bound:
            problems.append(_problem(where, None, "unbound_target", "this names no standard",
                                     "add standard:, or for_each: standard to the rule"))
        if kind == "gap" and body.between not in groupings:
            problems.append(_problem(where + ("between",), body.between, "unknown_value",
                                     f"cannot compare groups by {body.between!r}",
                                     did_you_mean(body.between, groupings, "groupings")))
        if kind == "provider_below" and body.provider == body.other:
            problems.append(_problem(where + ("other",), body.other, "invalid_value",
                                     "a provider cannot be compared with itself", "name the other provider"))
        if kind == "share_with":
            factor = ("barrier", body.barrier) if body.barrier else ("enabler", body.enabler)
            if factor not in factors:
                known = sorted(i for k, i in factors if k == factor[0])
                problems.append(_problem(where + (factor[0],), factor[1], "unknown_factor",
                                         f"no case rule concludes the {factor[0]} {factor[1]!r}",
                                         did_you_mean(factor[1], known, f"{factor[0]}s")))
    for index, conclusion in enumerate(rule.then):
        loc = here + ("then", index)
        texts = []
        if isinstance(conclusion, RatingConclusion):
            target(loc + ("rating",), conclusion.rating)
            band(loc + ("rating", "band"), conclusion.rating.band)
        elif isinstance(conclusion, RecommendationConclusion):
            texts.append((loc + ("recommendation", "text"), conclusion.recommendation.text, set()))
            for i, to in enumerate(conclusion.recommendation.to):
                if to == "{provider}" and "provider" in bound:
                    continue  # the instance's provider
                if to not in recipients:
                    problems.append(_problem(loc + ("recommendation", "to", i), to, "unknown_recipient",
                                             f"{to!r} is not a provider or a declared recipient",
                                             did_you_mean(to, recipients, "recipients")))
        elif isinstance(conclusion, (SampleEnablerConclusion, SampleBarrierConclusion)):
            kind = "enabler" if isinstance(conclusion, SampleEnablerConclusion) else "barrier"
            body = getattr(conclusion, kind)
            target(loc + (kind,), body, needs_target=False)
            texts.append((loc + (kind, "text"), body.text,
                          {name for name in BINDABLE if getattr(body, name, None) is not None}))
        for text_loc, text, given in texts:
            available = bound | given
            fillable = {"provider"} & available | ({"criterion", "criterion_title"} if "criterion" in available else
                                                    set()) | ({"standard", "standard_title"} if "standard" in available
                                                              else set())
            try:
                names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
            except ValueError as error:
                problems.append(_problem(text_loc, text, "invalid_value", f"the text is not a valid template: {error}",
                                         "write {{ and }} for literal braces"))
                continue
            for name in names:
                if name not in PLACEHOLDERS:
                    problems.append(_problem(text_loc, name, "unknown_placeholder",
                                             f"{{{name}}} is not a placeholder", did_you_mean(name, PLACEHOLDERS,
                                                                                              "placeholders")))
                elif name not in fillable:
                    problems.append(_problem(text_loc, name, "unbound_placeholder",
                                             f"{{{name}}} has no value in this rule",
                                             "add the matching for_each to the rule, or name it in the conclusion"))
    return problems


def _problem(loc: tuple, value: Any, code: str, message: str, hint: str) -> InitErrorDetails:
    return InitErrorDetails(type=_error(code, message, hint), loc=loc, input=value)


def walk(condition: Strict, loc: tuple = ()):
    """Every condition in the tree (case or sample rules), with its location, parents first."""
    yield loc, condition
    if isinstance(condition, (AllCondition, SampleAllCondition)):
        for index, child in enumerate(condition.all):
            yield from walk(child, loc + ("all", index))
    elif isinstance(condition, (AnyCondition, SampleAnyCondition)):
        for index, child in enumerate(condition.any):
            yield from walk(child, loc + ("any", index))
    elif isinstance(condition, (NotCondition, SampleNotCondition)):
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
    try:
        return LoadedRuleSet(validate.to_model(document, RuleSet, framework), document, framework)
    except InputError as error:
        # cross-rule checks run only on a valid model: give the ones that need no model in the same pass
        raise InputError(error.diagnostics + _raw_duplicates(document)) from None


def _raw_duplicates(document: source.Document) -> list:
    found = []
    seen: dict[str, int] = {}
    for section in ("rules", "organisation_rules", "sample_rules"):
        entries = document.data.get(section)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            rule_id = entry.get("id") if isinstance(entry, dict) else None
            if isinstance(rule_id, str):
                if rule_id in seen:
                    found.append(document.diagnostic((section, index, "id"), "duplicate_rule",
                                                     f"rule id {rule_id!r} is already used on line {seen[rule_id]}",
                                                     "give each rule its own id"))
                seen.setdefault(rule_id, document.where((section, index, "id"))[0])
    return found


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


def _target_words(body, bindings: dict) -> str:
    criterion = getattr(body, "criterion", None) or (None if getattr(body, "standard", None) else bindings.get("criterion"))
    standard = getattr(body, "standard", None) or (None if criterion else bindings.get("standard"))
    provider = getattr(body, "provider", None) or bindings.get("provider")
    what = f"criterion {criterion}" if criterion else f"standard {standard}"
    return what + (f" for {provider}" if provider else "")


def describe_sample(condition: Strict, bindings: dict) -> str:
    """A sample-level condition in plain English, with the instance's bindings filled in."""
    kind = next(name for name, cls in _SAMPLE_CONDITIONS.items() if type(condition) is cls)
    body = getattr(condition, "not_" if kind == "not" else kind)
    if kind in ("all", "any", "not"):
        return {"all": "all of these hold", "any": "at least one of these holds", "not": "this does not hold"}[kind]
    if kind == "fact":
        return f"the fact {body} holds"

    def bound(threshold) -> str:
        if threshold.at_least is not None and threshold.below is not None:
            return f"at least {threshold.at_least:g}% and below {threshold.below:g}%"
        return f"at least {threshold.at_least:g}%" if threshold.at_least is not None else f"below {threshold.below:g}%"

    if kind == "percent_sufficient":
        return f"% sufficient on {_target_words(body, bindings)} is {bound(body)}"
    if kind == "share_with":
        factor = f"barrier {body.barrier}" if body.barrier else f"enabler {body.enabler}"
        provider = body.provider or bindings.get("provider")
        return f"the share of {provider + ' ' if provider else ''}cases with the {factor} is {bound(body)}"
    if kind == "gap":
        return f"groups by {body.between} differ by at least {body.at_least:g} points on {_target_words(body, bindings)}"
    if kind == "provider_below":
        return (f"{body.provider} is at least {body.by_at_least:g} points below {body.other} on "
                f"{_target_words(body, {k: v for k, v in bindings.items() if k != 'provider'})}")
    if kind == "rated":
        return f"{_target_words(body, bindings)} is rated {_either(body.band)}"
    standard = body.standard or bindings.get("standard")
    provider = body.provider or bindings.get("provider")
    return f"a criterion of standard {standard}{' for ' + provider if provider else ''} is rated {_either(body.band)}"


def items_of(condition: Strict) -> list[str]:
    """The framework items a single (non-composite) case condition reads."""
    kind = _CONDITION_KINDS.get(type(condition))
    body = condition_body(condition) if kind else None
    if kind == "answer":
        return [body.item]
    if kind in ("any_answer", "all_answers", "at_least"):
        return list(body.items)
    if kind == "not_assessed":
        return [body]
    return []
