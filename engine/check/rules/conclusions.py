"""Conclusions: what follows when a rule's condition holds — per case or organisation (findings,
enablers, barriers, derived facts) and for the whole sample (ratings, recommendations, sample
enablers and barriers)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from engine.check.models import Strict
from engine.check.rules.conditions import Condition
from engine.check.rules.form import as_list, one_key_union
from engine.check.rules.terms import CriterionId, FactName, Provider, RuleId, StandardId, Target

Finding = Literal["sufficient", "insufficient", "not_applicable"]


class FindingBody(Strict):
    criterion: CriterionId = Field(description="Criterion id, quoted, e.g. \"3.4\".")
    value: Finding = Field(description="sufficient | insufficient | not_applicable")


class Among(Strict):
    """The cases where an enabler or barrier can arise: its shares across the sample are of them."""

    where: Condition = Field(description="A case condition choosing those cases, e.g. {flag: child_safeguarding}.")
    cases: str = Field(min_length=1, description="Those cases in words, for the report, e.g. \"cases with child "
                                                 "safeguarding concerns\".")


class FactorBody(Strict):
    id: RuleId = Field(description="Stable id, e.g. children-harm-unassessed.")
    text: str = Field(min_length=1, description="The enabler or barrier in words, for the report.")
    criterion: CriterionId = Field(description="The criterion it bears on, quoted, e.g. \"3.6\".")
    among: Among | None = Field(default=None, description=(
        "Case rules: the cases where it can arise, so its share is of the relevant cases (a case with it counts as "
        "one of them); omit for every case."))


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


Conclusion = one_key_union({"finding": FindingConclusion, "enabler": EnablerConclusion,
                            "barrier": BarrierConclusion, "fact": FactConclusion}, "unknown_conclusion")


# --- the whole sample -----------------------------------------------------------------------------


class RecommendationBody(Strict):
    id: RuleId = Field(description="Stable id, e.g. improve-assessment.")
    text: str = Field(min_length=1, description="The recommendation; may use {criterion}, {criterion_title}, "
                                                "{standard}, {standard_title}, {provider}, and {criteria} / {standards}: every criterion "
                                                "or standard the rule's instances concluded it for (one recommendation per cause).")
    to: Annotated[list[str], BeforeValidator(as_list), Field(min_length=1)] = Field(
        description="Who it is addressed to: providers, bodies in sample.recipients, or \"{provider}\" for the "
                    "provider of a rule with for_each: provider.")


class RatingBody(Target):
    band: str = Field(description="A band from sample.bands.")
    overall: bool = Field(default=False, description=(
        "The overall rating (of every standard together, e.g. from rating_score), not a criterion's or standard's."))


class SampleFactorBody(Strict):
    id: RuleId = Field(description="Stable id.")
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


SampleConclusion = one_key_union({"recommendation": RecommendationConclusion, "rating": RatingConclusion,
                                  "enabler": SampleEnablerConclusion, "barrier": SampleBarrierConclusion,
                                  "fact": FactConclusion}, "unknown_conclusion")
