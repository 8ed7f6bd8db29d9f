"""Rules and rule sets as strict models, and the checks that need the whole rule set: ids unique,
facts declared, each section reading only its own scope, and sample rules' bands, recipients,
placeholders and bindings (each condition form checks its own part, see ``Form.check``)."""

from __future__ import annotations

import dataclasses
import string
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, model_validator
from pydantic_core import InitErrorDetails

from engine.base.diagnostics import did_you_mean
from engine.check import criteria as declarations
from engine.check import models
from engine.check.models import Strict
from engine.check.rules import form
from engine.check.rules.conclusions import (
    Conclusion,
    FactConclusion,
    RatingConclusion,
    RecommendationConclusion,
    SampleBarrierConclusion,
    SampleConclusion,
    SampleEnablerConclusion,
)
from engine.check.rules.conditions import Condition, SampleCondition
from engine.check.rules.conditions.derived import FactCondition
from engine.check.rules.form import as_list, problem, walk
from engine.check.rules.terms import BINDABLE, FactName, ItemId, RuleId

#: Placeholders a sample conclusion's text may use.
PLACEHOLDERS = ("criterion", "criterion_title", "standard", "standard_title", "provider", "criteria", "standards")


def groupings(framework: models.Framework) -> list[str]:
    """Everything cases are grouped by in aggregates and gaps: the context fields the framework's
    vocabulary marks ``group``, then each diversity characteristic."""
    return [f.id for f in framework.vocabulary.context if f.group] + [d.id for d in framework.vocabulary.diversity]


class Rule(Strict):
    """One rule: when the condition holds for a case, the conclusions follow."""

    id: RuleId = Field(description="Stable id, e.g. harm-to-children-not-identified.")
    title: str = Field(min_length=1, description="A short title, for reports.")
    rationale: str = Field(min_length=1, description="Why the conclusion follows, in plain English.")
    cites: list[ItemId] = Field(default_factory=list,
                                description="Framework items the rule rests on (none for rules over case context only).")
    priority: int = Field(default=0, description="Higher wins when rules conclude different findings on a criterion.")
    when: Condition = Field(description="The condition, a mapping with one key: all, any, not, answer, flag, ...")
    then: Annotated[list[Conclusion], Field(min_length=1)] = Field(description="What follows when the condition holds.")
    warning: str | None = Field(default=None, min_length=1, description=(
        "Shown to the inspector, at the first answered item the rule cites, whenever the rule fires: e.g. answers "
        "that establish a context the case's own fields do not record."))


class SampleRule(Strict):
    """A rule over the whole sample's aggregates, optionally instantiated for each criterion,
    standard and/or provider (``for_each``); conditions and conclusions that leave out a
    criterion, standard or provider take the instance's."""

    id: RuleId = Field(description="Stable id.")
    title: str = Field(min_length=1)
    rationale: str = Field(min_length=1, description="Why the conclusion follows, in plain English.")
    cites: list[Annotated[str, Field(pattern=models.NODE_ID_PATTERN)]] = Field(
        default_factory=list, description="Standards, criteria or items of the framework the rule rests on.")
    for_each: Annotated[list[Literal["criterion", "standard", "organisation_standard", "provider"]],
                        BeforeValidator(as_list)] = Field(
        default_factory=list, description="Instantiate the rule for each case-scoped criterion or standard, each "
                                          "organisation-scoped standard (bound as the standard), and/or provider.")
    priority: int = 0
    when: SampleCondition
    then: Annotated[list[SampleConclusion], Field(min_length=1)]


class Page(Strict):
    """The page the Word draft (report.docx) is laid out on: A4 portrait with 25 mm margins unless
    the rule set says otherwise (landscape when wider than tall)."""

    width_mm: float = Field(default=210, ge=50, le=558, description="Page width in millimetres (A4: 210).")
    height_mm: float = Field(default=297, ge=50, le=558, description="Page height in millimetres (A4: 297).")
    margin_mm: float = Field(default=25, ge=0, description="The margin on every side, in millimetres.")

    #: The least room, in millimetres, the margins must leave for text across and down the page.
    TEXT_MM: ClassVar[float] = 20

    @model_validator(mode="after")
    def _room_for_text(self) -> Page:
        if min(self.width_mm, self.height_mm) - 2 * self.margin_mm < self.TEXT_MM:
            raise ValidationError.from_exception_data("Page", [problem(
                ("margin_mm",), self.margin_mm, "page_margins_too_wide",
                f"margins of {self.margin_mm:g} mm leave less than {self.TEXT_MM:g} mm for text on a "
                f"{self.width_mm:g} x {self.height_mm:g} mm page",
                "give a smaller sample.page.margin_mm, or a larger page")])
        return self


class ReviewPolicy(Strict):
    """How a run judged by this rule set is reviewed and signed off in the audit store."""

    independent_signoff: bool = Field(default=False, description=(
        "Nobody signs off a run in which their own decision is the one that stands on a finding: the "
        "sign-off is then a second person's check. Applies to accounts; a store without accounts is one "
        "person's, and its sign-offs say so."))


class SampleSettings(Strict):
    """How the sample is aggregated, rated and published."""

    min_group_size: int = Field(default=5, ge=1, description="Groups with fewer applicable cases are marked, not compared.")
    gap_points: float = Field(default=15, ge=0, le=100, description=(
        "Differences between groups (or providers) of at least this many points are flagged, when the test "
        "below also passes; the one place the gap threshold is set."))
    significance: float = Field(default=0.05, gt=0, lt=1, description=(
        "A gap is flagged only when Fisher's exact test (two-sided) gives a p-value below this level."))
    confidence: float = Field(default=0.95, gt=0, lt=1, description=(
        "The confidence level of the Wilson interval shown with every percentage."))
    adjust: Literal["none", "holm", "fdr_bh"] = Field(default="holm", description=(
        "How the p-values of a run's comparisons are adjusted for their number before they are held against "
        "`significance`: holm (the default: Holm-Bonferroni, the chance of any false flag kept below the level); "
        "none; "
        "fdr_bh (Benjamini-Hochberg, the expected share of false flags kept below the level)."))
    bands: list[str] = Field(default_factory=list, description="Rating bands, best first; the worst concluded wins. "
                             "Leave out for a rule set that issues no bands (percentages only).")
    rating_method: str | None = Field(
        default=None, min_length=1,
        description="How the bands are derived, in plain words (thresholds, how a standard is rated, what is "
                    "not rated); shown beside every band in every view. Required with bands. "
                    "{min_group_size} is replaced by that setting.")
    band_scores: dict[str, int] = Field(default_factory=dict, description=(
        "A score for each band, e.g. {outstanding: 3, good: 2, requires_improvement: 1, inadequate: 0}: what "
        "rating_score adds up over every standard's band, for an overall rating."))

    @model_validator(mode="after")
    def _scores_are_bands(self) -> SampleSettings:
        wrong = [problem(("band_scores", band, "[key]"), band, "unknown_band", f"{band!r} is not a rating band",
                         did_you_mean(band, self.bands, "sample.bands")) for band in self.band_scores
                 if band not in self.bands]
        missing = [band for band in self.bands if self.band_scores and band not in self.band_scores]
        if missing:
            wrong.append(problem(("band_scores",), self.band_scores, "missing_field",
                                 f"no score for {', '.join(missing)}", "give every band a score"))
        if wrong:
            raise ValidationError.from_exception_data("SampleSettings", wrong)
        return self

    @model_validator(mode="after")
    def _bands_explained(self) -> SampleSettings:
        if self.bands and not self.rating_method:
            raise ValidationError.from_exception_data("SampleSettings", [problem(
                ("bands",), self.bands, "bands_without_method",
                "a rule set that issues bands must say how they are derived",
                "add sample.rating_method: the thresholds, and how a standard takes its band")])
        if self.rating_method and not self.bands:
            raise ValidationError.from_exception_data("SampleSettings", [problem(
                ("rating_method",), self.rating_method, "method_without_bands",
                "rating_method describes bands, but sample.bands lists none", "list the bands, or remove rating_method")])
        return self

    def method_text(self) -> str | None:
        """The rating method as shown: None when the rule set issues no bands."""
        if not self.bands or not self.rating_method:
            return None
        return self.rating_method.replace("{min_group_size}", str(self.min_group_size))
    recipients: list[models.Term] = Field(default_factory=list,
                                          description="Bodies recommendations may be addressed to besides providers.")
    quote_practice_examples: bool = Field(default=False, description=(
        "Whether redacted reports (qi run --redact, qi report --redact), the ones fit for publication, quote "
        "practice examples from inspectors' notes: with no case reference, no file position, and the sample's "
        "case references taken out of the note. Off by default; the full report always quotes them."))
    page: Page = Field(default_factory=Page, description=(
        "The page size and margins of report.docx (default A4, 210 x 297 mm, with 25 mm margins)."))


class FactDeclaration(Strict):
    id: FactName = Field(description="The fact's name, e.g. harm_to_children_unassessed.")
    description: str = Field(min_length=1, description="What the fact means.")


class InForce(Strict):
    from_: models.Date = Field(alias="from", description="First day in force.")
    to: models.Date | None = Field(default=None, description="Last day in force.")


class RuleSet(Strict):
    """A rule set: how case evidence leads to findings, enablers, barriers and derived facts."""

    id: models.Reference = Field(description="Rule set id, e.g. hmip-qi-adult-2.0-default.")
    title: str = Field(description="What this rule set is.")
    version: str = Field(description="Rule set version, quoted, e.g. \"1.0.0\".")
    framework: models.FrameworkRef
    in_force: InForce | None = Field(default=None, description="The dates the rule set is in force.")
    description: str | None = Field(default=None, description="Notes for reviewers.")
    option: bool = Field(default=False, description="An optional variant of another rule set: used only when named "
                         "(--rules, or rules: ID in sample.yaml), never chosen because it is in force.")
    facts: list[FactDeclaration] = Field(default_factory=list, description="Derived facts rules may conclude and read.")
    criteria: list[declarations.Declaration] = Field(
        default_factory=list, description="Per-criterion declarations, expanded into counting rules over each case.")
    organisation_criteria: list[declarations.Declaration] = Field(
        default_factory=list, description="Per-criterion declarations for organisation-scoped criteria.")
    rules: Annotated[list[Rule], Field(min_length=1)] = Field(description="Rules over each case.")
    organisation_rules: list[Rule] = Field(default_factory=list,
                                           description="Rules over each provider's organisation evidence.")
    sample: SampleSettings = Field(default_factory=SampleSettings)
    sample_rules: list[SampleRule] = Field(default_factory=list, description="Rules over the whole sample.")
    review: ReviewPolicy | None = Field(default=None, description="How runs judged by this rule set are reviewed.")

    @model_validator(mode="after")
    def _cross_references(self, info: ValidationInfo) -> RuleSet:
        """What no single field can check: ids unique, facts declared, each section reading only
        its own scope, and sample rules' bands, recipients, placeholders and bindings."""
        problems = _identity_problems(self)
        framework = (info.context or {}).get("framework")
        if framework is not None:
            for index, rule in enumerate(self.rules):
                problems += _scope_problems(rule, ("rules", index), form.CASE, framework)
            for index, rule in enumerate(self.organisation_rules):
                problems += _scope_problems(rule, ("organisation_rules", index), form.ORGANISATION, framework)
            for index, rule in enumerate(self.sample_rules):
                problems += SampleContext.of(self, rule, framework).problems_of(rule, ("sample_rules", index))
        if problems:
            raise ValidationError.from_exception_data("RuleSet", problems)
        return self


def facts_read(condition: form.Form, loc: tuple = ()) -> list[tuple[tuple, str]]:
    """The derived facts a condition reads (in conditions read in another scope too), with where
    each is read."""
    found = [(where + ("fact",), c.fact) for where, c in walk(condition, loc) if isinstance(c, FactCondition)]
    for where, _, inner in form.nested(condition, loc):
        found += facts_read(inner, where)
    return found


def _identity_problems(ruleset: RuleSet) -> list[InitErrorDetails]:
    """Fact and rule ids unique; every fact read or concluded declared."""
    problems: list[InitErrorDetails] = []
    declared: dict[str, int] = {}
    for index, fact in enumerate(ruleset.facts):
        if fact.id in declared:
            problems.append(problem(("facts", index, "id"), fact.id, "duplicate_fact",
                                    f"fact {fact.id!r} is declared twice", "declare each fact once"))
        declared.setdefault(fact.id, index)
    seen: dict[str, tuple] = {}
    populations: dict[tuple[str, str], tuple] = {}
    sections = (("rules", ruleset.rules), ("organisation_rules", ruleset.organisation_rules),
                ("sample_rules", ruleset.sample_rules))
    for section, section_rules in sections:
        for index, rule in enumerate(section_rules):
            here = (section, index)
            if rule.id in seen:
                problems.append(problem(here + ("id",), rule.id, "duplicate_rule",
                                        f"rule id {rule.id!r} is already used by {seen[rule.id][0]} "
                                        f"{seen[rule.id][1] + 1}", "give each rule its own id"))
            seen.setdefault(rule.id, here)
            read = facts_read(rule.when, here + ("when",))
            for c_index, conclusion in enumerate(rule.then):
                for kind in ("barrier", "enabler"):
                    among = getattr(getattr(conclusion, kind, None), "among", None)
                    if among is not None:
                        read += facts_read(among.where, here + ("then", c_index, kind, "among", "where"))
                        first = populations.setdefault((kind, getattr(conclusion, kind).id), (among, here))
                        if first[0] != among:
                            problems.append(problem(here + ("then", c_index, kind, "among"), None, "inconsistent_factor",
                                                    f"the {kind} {getattr(conclusion, kind).id!r} has another among: in "
                                                    f"{first[1][0]} {first[1][1] + 1}",
                                                    "give every rule concluding it the same among"))
            for loc, name in read:
                if name not in declared:
                    problems.append(problem(loc, name, "unknown_fact", f"fact {name!r} is not declared",
                                            did_you_mean(name, list(declared), "declared facts")))
            for c_index, conclusion in enumerate(rule.then):
                if isinstance(conclusion, FactConclusion) and conclusion.fact not in declared:
                    problems.append(problem(here + ("then", c_index, "fact"), conclusion.fact, "unknown_fact",
                                            f"fact {conclusion.fact!r} is not declared",
                                            did_you_mean(conclusion.fact, list(declared), "declared facts")))
    return problems


def _condition_scope_problems(condition: form.Form, at: tuple, scope: str,
                              framework: models.Framework) -> list[InitErrorDetails]:
    """Every form of the condition allowed in ``scope`` and every item it reads of that scope;
    a condition read in another scope (``Form.elsewhere``) checked against that scope."""
    problems = []
    items_allowed = set(framework.item_ids(scope))
    for loc, found in walk(condition, at):
        if scope not in found.levels:
            allowed = ", ".join(key for key, cls in form.forms(scope).items() if scope in cls.levels)
            problems.append(problem(loc, found.key, "wrong_scope",
                                    f"condition {found.key!r} cannot be read in {scope} rules",
                                    f"{scope} rules read only: {allowed}"))
        for where, item in found.items():
            if item not in items_allowed:
                problems.append(problem(loc + where, item, "wrong_scope",
                                        f"item {item!r} is not judged in {scope} evidence",
                                        f"a {scope} condition reads {scope} items only"))
        for below, inner_scope, inner in found.elsewhere():
            problems += _condition_scope_problems(inner, loc + below, inner_scope, framework)
    return problems


def _scope_problems(rule: Rule, here: tuple, scope: str, framework: models.Framework) -> list[InitErrorDetails]:
    """A case rule reads and concludes on case-scoped items and criteria; an organisation rule on
    organisation-scoped ones, with the forms allowed in organisation rules only."""
    problems = []
    items_allowed = set(framework.item_ids(scope))
    other = "organisation_rules" if scope == form.CASE else "rules"

    def check_item(loc: tuple, item: str) -> None:
        if item not in items_allowed:
            problems.append(problem(loc, item, "wrong_scope", f"item {item!r} is not judged in {scope} evidence",
                                    f"rules over it belong in {other}"))

    for index, item in enumerate(rule.cites):
        check_item(here + ("cites", index), item)
    problems += _condition_scope_problems(rule.when, here + ("when",), scope, framework)
    criteria = {c.id for c in framework.criteria_of(scope)}
    for index, conclusion in enumerate(rule.then):
        body = getattr(conclusion, "finding", None) or getattr(conclusion, "enabler", None) \
            or getattr(conclusion, "barrier", None)
        if body is not None and body.criterion not in criteria:
            problems.append(problem(here + ("then", index), body.criterion, "wrong_scope",
                                    f"criterion {body.criterion!r} is not judged in {scope} evidence",
                                    f"conclusions on it belong in {other}"))
        among = getattr(body, "among", None)
        if among is not None:
            at = here + ("then", index, "barrier" if hasattr(conclusion, "barrier") else "enabler", "among")
            if scope != form.CASE:
                problems.append(problem(at, None, "wrong_scope", "among names cases, but this is an organisation rule",
                                        "say among: on case rules' enablers and barriers only"))
            else:
                problems += _condition_scope_problems(among.where, at + ("where",), form.CASE, framework)
    return problems


def factor_populations(ruleset: RuleSet) -> dict[tuple[str, str], Any]:
    """Each case enabler and barrier with the ``among`` its rules give it (None: every case)."""
    found: dict[tuple[str, str], Any] = {}
    for rule in ruleset.rules:
        for conclusion in rule.then:
            for kind in ("barrier", "enabler"):
                body = getattr(conclusion, kind, None)
                if body is not None and found.get((kind, body.id)) is None:
                    found[(kind, body.id)] = body.among
    return found


@dataclasses.dataclass
class SampleContext:
    """What a sample rule is checked against: the rule set's bands, recipients and case-level
    factors, the framework's standards and groupings, and the ids the rule is instantiated for.
    Condition forms check their part through it (``Form.check``)."""

    bands: list[str]
    band_scores: dict[str, int]
    bound: set[str]
    organisation_bound: bool
    standards: list[str]
    organisation_standards: list[str]
    nodes: set[str]
    recipients: list[str]
    groupings: list[str]
    factors: set[tuple[str, str]]
    problems: list[InitErrorDetails] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, ruleset: RuleSet, rule: SampleRule, framework: models.Framework) -> SampleContext:
        return cls(
            bands=ruleset.sample.bands, band_scores=ruleset.sample.band_scores,
            bound={"standard" if name == "organisation_standard" else name for name in rule.for_each},
            organisation_bound="organisation_standard" in rule.for_each,
            standards=[st.id for st in framework.standards if st.scope == form.CASE],
            organisation_standards=[st.id for st in framework.standards if st.scope == form.ORGANISATION],
            nodes=set(framework.ids()),
            recipients=framework.vocabulary.ids("providers") + [r.id for r in ruleset.sample.recipients],
            groupings=groupings(framework),
            factors={(kind, getattr(c, kind).id) for r in ruleset.rules for c in r.then
                     for kind in ("barrier", "enabler") if hasattr(c, kind)})

    def problem(self, loc: tuple, value: Any, code: str, message: str, hint: str) -> None:
        self.problems.append(problem(loc, value, code, message, hint))

    def target(self, loc: tuple, body: Any, needs_target: bool = True, organisation: bool = False) -> None:
        """A criterion or a standard, not both; a known standard (an organisation-scoped one too, with
        ``organisation``); named here or bound by ``for_each``."""
        criterion = getattr(body, "criterion", None)
        standard = getattr(body, "standard", None)
        if getattr(body, "overall", False):
            if criterion is not None or standard is not None:
                self.problem(loc, None, "invalid_value", "an overall rating names no criterion or standard",
                             "remove criterion: and standard:, or overall:")
            return
        if criterion is not None and standard is not None:
            self.problem(loc, None, "invalid_value", "give a criterion or a standard, not both", "remove one of them")
        if not organisation and standard is None and criterion is None and self.organisation_bound:
            self.problem(loc, None, "wrong_scope", "this reads a case-scoped criterion's or standard's figures, but "
                         "the rule is for each organisation-scoped standard",
                         "use for_each: standard, or an organisation condition (criteria_sufficient)")
        known = self.standards + (self.organisation_standards if organisation else [])
        if standard is not None and standard not in known:
            self.problem(loc + ("standard",), standard, "unknown_standard",
                         f"{standard!r} is not a {'' if organisation else 'case-scoped '}standard",
                         did_you_mean(standard, known, "standards"))
        if needs_target and criterion is None and standard is None and not self.bound & {"criterion", "standard"}:
            self.problem(loc, None, "unbound_target", "this names no criterion or standard",
                         "add criterion: or standard:, or for_each: criterion to the rule")

    def band(self, loc: tuple, value: str) -> None:
        if value not in self.bands:
            self.problem(loc, value, "unknown_band", f"{value!r} is not a rating band",
                         did_you_mean(value, self.bands, "sample.bands"))

    def problems_of(self, rule: SampleRule, here: tuple) -> list[InitErrorDetails]:
        """Every problem of one sample rule: its conditions (each form checks itself), then its conclusions."""
        for index, cited in enumerate(rule.cites):
            if cited not in self.nodes:
                self.problem(here + ("cites", index), cited, "unknown_value", f"{cited!r} is not a standard, criterion "
                             "or item of the framework", did_you_mean(cited, sorted(self.nodes)))
        for loc, condition in walk(rule.when, here + ("when",)):
            condition.check(self, loc)
        for index, conclusion in enumerate(rule.then):
            self._conclusion(conclusion, here + ("then", index))
        return self.problems

    def _conclusion(self, conclusion: Any, loc: tuple) -> None:
        if isinstance(conclusion, RatingConclusion):
            self.target(loc + ("rating",), conclusion.rating, organisation=True)
            self.band(loc + ("rating", "band"), conclusion.rating.band)
        elif isinstance(conclusion, RecommendationConclusion):
            self._text(loc + ("recommendation", "text"), conclusion.recommendation.text, set())
            for i, to in enumerate(conclusion.recommendation.to):
                if to == "{provider}" and "provider" in self.bound:
                    continue  # the instance's provider
                if to not in self.recipients:
                    self.problem(loc + ("recommendation", "to", i), to, "unknown_recipient",
                                 f"{to!r} is not a provider or a declared recipient",
                                 did_you_mean(to, self.recipients, "recipients"))
        elif isinstance(conclusion, (SampleEnablerConclusion, SampleBarrierConclusion)):
            kind = "enabler" if isinstance(conclusion, SampleEnablerConclusion) else "barrier"
            body = getattr(conclusion, kind)
            self.target(loc + (kind,), body, needs_target=False)
            self._text(loc + (kind, "text"), body.text,
                       {name for name in BINDABLE if getattr(body, name, None) is not None})

    def _text(self, loc: tuple, text: str, given: set[str]) -> None:
        """The placeholders of a conclusion's text are known and have values in this rule."""
        available = self.bound | given
        fillable = {"provider"} & available
        for target in ("criterion", "standard"):
            if target in available:
                fillable |= {target, f"{target}_title", "criteria" if target == "criterion" else "standards"}
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        except ValueError as error:
            self.problem(loc, text, "invalid_value", f"the text is not a valid template: {error}",
                         "write {{ and }} for literal braces")
            return
        for name in names:
            if name not in PLACEHOLDERS:
                self.problem(loc, name, "unknown_placeholder", f"{{{name}}} is not a placeholder",
                             did_you_mean(name, PLACEHOLDERS, "placeholders"))
            elif name not in fillable:
                self.problem(loc, name, "unbound_placeholder", f"{{{name}}} has no value in this rule",
                             "add the matching for_each to the rule, or name it in the conclusion")

