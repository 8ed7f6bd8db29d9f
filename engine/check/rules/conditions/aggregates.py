"""Sample conditions: over the whole sample's aggregates (% sufficient, shares of cases with a
barrier or enabler, gaps between groups) and over ratings concluded by other sample rules.

Figures count only for groups of at least the rule set's ``min_group_size`` applicable cases.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from engine.base.diagnostics import did_you_mean
from engine.check.models import Strict
from engine.check.rules.form import SAMPLE, Form, as_list, either, problem
from engine.check.rules.terms import (
    CriterionId,
    Provider,
    StandardId,
    Target,
    Threshold,
    group_of,
    target_of,
)

ONLY_SAMPLE = frozenset({SAMPLE})


def _target_words(body, bindings: dict) -> str:
    criterion, standard = target_of(body, bindings)
    provider = group_of(body, bindings)
    what = f"criterion {criterion}" if criterion else f"standard {standard}"
    return what + (f" for {provider}" if provider else "")


def _target_key(body, low) -> str:
    return low.names.target_key(*target_of(body, low.bindings))


def _group(body, low) -> str:
    return group_of(body, low.bindings) or low.names.ALL


def _bounded(low, attribute: str, threshold: Threshold):
    parts = []
    if threshold.at_least is not None:
        parts.append(low.compare(attribute, ">=", float(threshold.at_least)))
    if threshold.below is not None:
        parts.append(low.compare(attribute, "<", float(threshold.below)))
    return low.all(parts)


def _target(view, body, bindings: dict) -> dict:
    criterion, standard = target_of(body, bindings)
    return view.aggregates["targets"][criterion if criterion else f"standard {standard}"]


def _figures(target: dict, key: str) -> dict:
    found = target["groups"].get(key)
    return {"target": target["id"], "kind": target["kind"], "group": key,
            **({k: found[k] for k in ("counts", "applicable", "percent", "interval", "small", "cases") if k in found}
               if found else {"applicable": 0, "percent": None, "interval": None})}


def _group_key(body, bindings: dict) -> str:
    group = group_of(body, bindings)
    return f"provider:{group}" if group else "all"


class PercentTest(Target, Threshold):
    """% sufficient of applicable cases (groups under the minimum size never hold)."""


class PercentCondition(Form):
    """The % of applicable cases judged sufficient is at least / below a figure."""

    key: ClassVar[str] = "percent_sufficient"
    levels: ClassVar[frozenset[str]] = ONLY_SAMPLE
    percent_sufficient: PercentTest

    def check(self, context, loc: tuple) -> None:
        context.target(loc + (self.key,), self.body)

    def describe(self, bindings: dict | None = None) -> str:
        return f"% sufficient on {_target_words(self.body, bindings or {})} is {self.body.words()}"

    def lower(self, low):
        target, group = _target_key(self.body, low), _group(self.body, low)
        return low.all([low.compare(low.names.applicable_attribute(target, group), ">=", float(low.min_group_size)),
                        _bounded(low, low.names.percent_attribute(target, group), self.body)])

    def aggregates(self, view, bindings: dict) -> list[dict]:
        return [_figures(_target(view, self.body, bindings), _group_key(self.body, bindings))]


class ShareTest(Threshold):
    barrier: str | None = Field(default=None, description="A case-level barrier id.")
    enabler: str | None = Field(default=None, description="A case-level enabler id.")
    provider: Provider | None = Field(default=None, description="A provider; omit for the whole sample.")

    @model_validator(mode="after")
    def _one_factor(self) -> ShareTest:
        if (self.barrier is None) == (self.enabler is None):
            raise ValidationError.from_exception_data("ShareTest", [problem(
                ("barrier",), None, "invalid_value", "give exactly one of barrier and enabler",
                "e.g. barrier: children-harm-unassessed")])
        return self

    @property
    def factor(self) -> tuple[str, str]:
        return ("barrier", self.barrier) if self.barrier else ("enabler", self.enabler)


class ShareCondition(Form):
    """The % of cases with a given barrier or enabler is at least / below a figure."""

    key: ClassVar[str] = "share_with"
    levels: ClassVar[frozenset[str]] = ONLY_SAMPLE
    share_with: ShareTest

    def check(self, context, loc: tuple) -> None:
        kind, name = self.body.factor
        if (kind, name) not in context.factors:
            known = sorted(i for k, i in context.factors if k == kind)
            context.problem(loc + (self.key, kind), name, "unknown_factor",
                            f"no case rule concludes the {kind} {name!r}", did_you_mean(name, known, f"{kind}s"))

    def describe(self, bindings: dict | None = None) -> str:
        kind, name = self.body.factor
        provider = group_of(self.body, bindings or {})
        return (f"the share of {provider + ' ' if provider else ''}cases with the {kind} {name}, of the cases where it "
                f"can arise, is {self.body.words()}")

    def lower(self, low):
        """Of the cases where the factor can arise (its ``among``): at least min_group_size of them."""
        group = _group(self.body, low)
        return low.all([low.compare(low.names.relevant_attribute(*self.body.factor, group), ">=",
                                    float(low.min_group_size)),
                        _bounded(low, low.names.share_attribute(*self.body.factor, group), self.body)])

    def aggregates(self, view, bindings: dict) -> list[dict]:
        factor = ":".join(self.body.factor)
        key = _group_key(self.body, bindings)
        found = view.aggregates["factors"][factor]
        return [{"factor": factor, "group": key, "among": found.get("among"), **found["groups"].get(key, {})}]


class GapTest(Strict):
    criterion: CriterionId | None = None
    standard: StandardId | None = None
    between: str = Field(description="provider, a grouped context field, or a diversity field.")
    at_least: float | None = Field(default=None, ge=0, le=100, description=(
        "Points between the highest and lowest comparable groups; omit it to use the rule set's "
        "sample: gap_points (the one place the default rules set it)."))


def _threshold(given: float | None, low) -> float:
    return float(low.gap_points if given is None else given)


def _points(given: float | None) -> str:
    return "the rule set's gap_points" if given is None else f"{given:g} points"


class GapCondition(Form):
    """Groups of cases differ by at least N points on % sufficient, both groups reach the minimum
    size, and Fisher's exact test of the two (highest and lowest) gives p below the rule set's
    ``significance``. Only criteria are tested: a standard pools pairs, not independent people."""

    key: ClassVar[str] = "gap"
    levels: ClassVar[frozenset[str]] = ONLY_SAMPLE
    gap: GapTest

    def check(self, context, loc: tuple) -> None:
        context.target(loc + (self.key,), self.body)
        if self.body.between not in context.groupings:
            context.problem(loc + (self.key, "between"), self.body.between, "unknown_value",
                            f"cannot compare groups by {self.body.between!r}",
                            did_you_mean(self.body.between, context.groupings, "groupings"))

    def describe(self, bindings: dict | None = None) -> str:
        return (f"groups by {self.body.between} differ by at least {_points(self.body.at_least)} on "
                f"{_target_words(self.body, bindings or {})}, and Fisher's exact test passes")

    def lower(self, low):
        # the gap attribute is defined only for a gap that was tested and passed (see aggregate)
        return low.compare(low.names.gap_attribute(_target_key(self.body, low), self.body.between), ">=",
                           _threshold(self.body.at_least, low))

    def aggregates(self, view, bindings: dict) -> list[dict]:
        target = _target(view, self.body, bindings)
        gap = target["gaps"][self.body.between]
        return [{"target": target["id"], "between": self.body.between,
                 **{k: v for k, v in gap.items() if k != "exact_points"}}] + \
            [_figures(target, key) for key in gap["compared"]]


class ProviderGapTest(Strict):
    criterion: CriterionId | None = None
    standard: StandardId | None = None
    provider: Provider | None = Field(default=None, description=(
        "The provider whose figure is lower; omit it in a rule with for_each: provider."))
    other: Provider | None = Field(default=None, description=(
        "The provider it is compared with; omit it to compare with every other provider."))
    by_at_least: float | None = Field(default=None, ge=0, le=100, description=(
        "How many points lower; omit it to use the rule set's sample: gap_points."))


class ProviderGapCondition(Form):
    """One provider's % sufficient is at least N points below another's (or any other's), both reach
    the minimum size, and Fisher's exact test of the two gives p below the rule set's ``significance``."""

    key: ClassVar[str] = "provider_below"
    levels: ClassVar[frozenset[str]] = ONLY_SAMPLE
    provider_below: ProviderGapTest

    def check(self, context, loc: tuple) -> None:
        context.target(loc + (self.key,), self.body)
        if self.body.provider is not None and self.body.provider == self.body.other:
            context.problem(loc + (self.key, "other"), self.body.other, "invalid_value",
                            "a provider cannot be compared with itself", "name the other provider")
        if self.body.provider is None and "provider" not in context.bound:
            context.problem(loc + (self.key,), None, "unbound_target", "this names no provider",
                            "add provider:, or for_each: provider to the rule")

    def _provider(self, bindings: dict) -> str:
        return group_of(self.body, bindings)

    def _others(self, provider: str, providers) -> list[str]:
        return [self.body.other] if self.body.other else [p for p in providers if p != provider]

    def describe(self, bindings: dict | None = None) -> str:
        bindings = bindings or {}
        provider = self._provider(bindings) or "the provider"
        others = {k: v for k, v in bindings.items() if k != "provider"}
        return (f"{provider} is at least {_points(self.body.by_at_least)} below "
                f"{self.body.other or 'another provider'} on {_target_words(self.body, others)}, "
                f"and Fisher's exact test passes")

    def lower(self, low):
        provider = self._provider(low.bindings)
        target = _target_key(self.body, low)
        # the below attribute is defined only for a tested pair whose test passed (see aggregate)
        return low.any(low.compare(low.names.below_attribute(target, provider, other), ">=",
                                   _threshold(self.body.by_at_least, low))
                       for other in self._others(provider, low.providers))

    def aggregates(self, view, bindings: dict) -> list[dict]:
        target = _target(view, self.body, bindings)
        provider = self._provider(bindings)
        others = self._others(provider, [k.split(":", 1)[1] for k in target["groups"] if k.startswith("provider:")])
        wanted = {f"provider:{provider}"} | {f"provider:{o}" for o in others}
        compared = [{"target": target["id"], "between": "provider",
                     **{k: v for k, v in c.items() if k != "exact_points"}}
                    for c in target.get("comparisons", []) if {c["highest"], c["lowest"]} <= wanted
                    and f"provider:{provider}" in (c["highest"], c["lowest"])]
        return compared + [_figures(target, f"provider:{provider}")] + \
            [_figures(target, f"provider:{o}") for o in others]


class RatedTest(Target):
    band: Annotated[list[str], BeforeValidator(as_list), Field(min_length=1)] = Field(
        description="Bands (from sample.bands) that satisfy the condition.")


class RatedCondition(Form):
    """A criterion or standard has been rated one of these bands by another sample rule."""

    key: ClassVar[str] = "rated"
    levels: ClassVar[frozenset[str]] = ONLY_SAMPLE
    rated: RatedTest

    def check(self, context, loc: tuple) -> None:
        context.target(loc + (self.key,), self.body)
        for i, value in enumerate(self.body.band):
            context.band(loc + (self.key, "band", i), value)

    def describe(self, bindings: dict | None = None) -> str:
        return f"{_target_words(self.body, bindings or {})} is rated {either(self.body.band)}"

    def lower(self, low):
        return low.test(low.names.rating_attribute(_target_key(self.body, low), _group(self.body, low)),
                        self.body.band)


class CriterionRatedCondition(Form):
    """Some criterion of the standard has been rated one of these bands."""

    key: ClassVar[str] = "criterion_rated"
    levels: ClassVar[frozenset[str]] = ONLY_SAMPLE
    criterion_rated: RatedTest

    def check(self, context, loc: tuple) -> None:
        for i, value in enumerate(self.body.band):
            context.band(loc + (self.key, "band", i), value)
        if self.body.standard is None and "standard" not in context.bound:
            context.problem(loc + (self.key,), None, "unbound_target", "this names no standard",
                            "add standard:, or for_each: standard to the rule")
        elif (self.body.standard is None and context.organisation_bound) or \
                self.body.standard in context.organisation_standards:
            context.problem(loc + (self.key,), None, "wrong_scope", "an organisation-scoped standard's criteria are "
                            "not rated from case figures", "use criteria_sufficient for organisation standards")

    def describe(self, bindings: dict | None = None) -> str:
        bindings = bindings or {}
        standard = self.body.standard or bindings.get("standard")
        provider = group_of(self.body, bindings)
        return (f"a criterion of standard {standard}{' for ' + provider if provider else ''} is rated "
                f"{either(self.body.band)}")

    def lower(self, low):
        standard = self.body.standard or low.bindings["standard"]
        group = _group(self.body, low)
        return low.any(low.test(low.names.rating_attribute(low.names.target_key(c, None), group), self.body.band)
                       for c in low.standards[standard])


class JudgedTest(Threshold):
    """A count of an organisation-scoped standard's criteria (not a percentage)."""

    standard: StandardId | None = Field(default=None, description="An organisation-scoped standard; omit to take "
                                                                   "the rule's for_each: organisation_standard.")
    provider: Provider | None = Field(default=None, description="A provider; omit to take the rule's for_each.")


class CriteriaSufficientCondition(Form):
    """Of an organisation-scoped standard's criteria, the number the provider's organisation
    evidence was judged sufficient on is at least / below a count (never holds without evidence)."""

    key: ClassVar[str] = "criteria_sufficient"
    levels: ClassVar[frozenset[str]] = ONLY_SAMPLE
    criteria_sufficient: JudgedTest

    def check(self, context, loc: tuple) -> None:
        standard = self.body.standard
        if standard is None and not context.organisation_bound:
            context.problem(loc + (self.key,), None, "unbound_target", "this names no organisation-scoped standard",
                            "add standard:, or for_each: organisation_standard to the rule")
        elif standard is not None and standard not in context.organisation_standards:
            context.problem(loc + (self.key, "standard"), standard, "unknown_standard",
                            f"{standard!r} is not an organisation-scoped standard",
                            did_you_mean(standard, context.organisation_standards, "standards"))
        if self.body.provider is None and "provider" not in context.bound:
            context.problem(loc + (self.key,), None, "unbound_target", "this names no provider",
                            "add provider:, or for_each: provider to the rule")

    def describe(self, bindings: dict | None = None) -> str:
        bindings = bindings or {}
        standard = self.body.standard or bindings.get("standard")
        provider = self.body.provider or bindings.get("provider")
        count = " and ".join(part for part in (
            f"at least {self.body.at_least:g}" if self.body.at_least is not None else "",
            f"fewer than {self.body.below:g}" if self.body.below is not None else "") if part)
        return f"{count} of standard {standard}'s criteria are judged sufficient for {provider}"

    def lower(self, low):
        key = low.names.target_key(None, self.body.standard or low.bindings["standard"])
        group = self.body.provider or low.bindings["provider"]
        return low.all([low.compare(low.names.judged_attribute(key, group, "judged"), ">=", 1.0),
                        _bounded(low, low.names.judged_attribute(key, group, "sufficient"), self.body)])


class ScoreTest(Threshold):
    provider: Provider | None = Field(default=None, description="A provider; omit to take the rule's for_each, or "
                                                                "for the whole sample.")


class RatingScoreCondition(Form):
    """The sum of every standard's band score (``sample.band_scores``) is at least / below a figure:
    what an overall rating is derived from. Never holds while a standard is unrated."""

    key: ClassVar[str] = "rating_score"
    levels: ClassVar[frozenset[str]] = ONLY_SAMPLE
    rating_score: ScoreTest

    def check(self, context, loc: tuple) -> None:
        if not context.band_scores:
            context.problem(loc + (self.key,), None, "missing_field", "rating_score adds up band scores, but the rule "
                            "set gives none", "add sample.band_scores: a score for each band")

    def describe(self, bindings: dict | None = None) -> str:
        provider = group_of(self.body, bindings or {})
        return (f"the standards' band scores{' for ' + provider if provider else ''} add up to "
                f"{self.body.words().replace('%', '')}")

    def lower(self, low):
        attribute = low.names.score_attribute(_group(self.body, low))
        return low.all([low.compare(attribute, ">=", 0.0), _bounded(low, attribute, self.body)])
