"""Conditions on a case's context: provider, sentence, risk of serious harm, MAPPA, flags and
diversity. Allowed values come from the framework's vocabulary; "at or above" uses its order."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from engine.check.models import Strict, vocabulary
from engine.check.rules.form import CASE, ORGANISATION, Form, either, one_or_many
from engine.check.rules.terms import terms

CONTEXT = frozenset({CASE})


class RiskCondition(Form):
    """Risk of serious harm is at or above this level (levels are ordered in the framework)."""

    key: ClassVar[str] = "risk_at_least"
    levels: ClassVar[frozenset[str]] = CONTEXT
    risk_at_least: Annotated[str, vocabulary("risk_levels", "risk level")] = Field(
        json_schema_extra={"x-vocabulary": "risk_levels"})

    def describe(self, bindings: dict | None = None) -> str:
        return f"risk of serious harm is {self.risk_at_least} or higher"

    def lower(self, low):
        return low.at_or_above("risk", self.risk_at_least)

    def seen(self, view) -> dict:
        return {"risk_of_serious_harm": view.model.risk_of_serious_harm}


class ProviderCondition(Form):
    """The case is supervised by one of these providers."""

    key: ClassVar[str] = "provider"
    levels: ClassVar[frozenset[str]] = frozenset({CASE, ORGANISATION})
    provider: terms("providers", "provider")

    def describe(self, bindings: dict | None = None) -> str:
        return f"the provider is {either(self.provider)}"

    def lower(self, low):
        return low.test("provider", self.provider)

    def seen(self, view) -> dict:
        model = view.model
        return {"provider": getattr(model, "provider", None) or getattr(model, "organisation", None)}


class SentenceCondition(Form):
    """The sentence is of one of these types."""

    key: ClassVar[str] = "sentence_type"
    levels: ClassVar[frozenset[str]] = CONTEXT
    sentence_type: terms("sentence_types", "sentence type")

    def describe(self, bindings: dict | None = None) -> str:
        return f"the sentence is {either(self.sentence_type)}"

    def lower(self, low):
        return low.test("sentence_type", self.sentence_type)

    def seen(self, view) -> dict:
        return {"sentence_type": view.model.sentence.type}


class RequirementCondition(Form):
    """The sentence has at least one of these requirements."""

    key: ClassVar[str] = "requirement"
    levels: ClassVar[frozenset[str]] = CONTEXT
    requirement: terms("requirement_types", "requirement type")

    def describe(self, bindings: dict | None = None) -> str:
        return f"the sentence has a {either(self.requirement)} requirement"

    def lower(self, low):
        return low.any(low.test(low.names.requirement_attribute(r), [True]) for r in self.requirement)

    def seen(self, view) -> dict:
        return {"requirements": list(view.model.sentence.requirements)}


class FlagCondition(Form):
    """The case has at least one of these flags."""

    key: ClassVar[str] = "flag"
    levels: ClassVar[frozenset[str]] = CONTEXT
    flag: terms("flags", "flag")

    def describe(self, bindings: dict | None = None) -> str:
        return f"the case is flagged {either(self.flag)}"

    def lower(self, low):
        return low.any(low.test(low.names.flag_attribute(f), [True]) for f in self.flag)

    def seen(self, view) -> dict:
        return {"flags": list(view.model.flags)}


class _Mappa(Form):
    levels: ClassVar[frozenset[str]] = CONTEXT

    def seen(self, view) -> dict:
        mappa = view.model.mappa
        return {"mappa": mappa.model_dump() if mappa else None}


class MappaCondition(_Mappa):
    """The case is (true) or is not (false) managed under MAPPA."""

    key: ClassVar[str] = "mappa"
    mappa: bool

    def describe(self, bindings: dict | None = None) -> str:
        return "the case is managed under MAPPA" if self.mappa else "the case is not managed under MAPPA"

    def lower(self, low):
        return low.test("mappa", [self.mappa])


class MappaCategoryCondition(_Mappa):
    """The MAPPA category is one of these."""

    key: ClassVar[str] = "mappa_category"
    mappa_category: terms("mappa_categories", "MAPPA category", int)

    def describe(self, bindings: dict | None = None) -> str:
        return f"the MAPPA category is {either(self.mappa_category)}"

    def lower(self, low):
        return low.test("mappa_category", self.mappa_category)


class MappaLevelCondition(_Mappa):
    """The MAPPA level is at or above this level."""

    key: ClassVar[str] = "mappa_level_at_least"
    mappa_level_at_least: Annotated[int, vocabulary("mappa_levels", "MAPPA level")]

    def describe(self, bindings: dict | None = None) -> str:
        return f"the MAPPA level is {self.mappa_level_at_least} or higher"

    def lower(self, low):
        return low.at_or_above("mappa_level", self.mappa_level_at_least)


class DiversityTest(Strict):
    field: str = Field(description="A diversity characteristic from the framework vocabulary, e.g. gender.")
    in_: one_or_many(str) = Field(alias="in", description="Values that satisfy the condition.")


class DiversityCondition(Form):
    """A diversity characteristic has one of these values."""

    key: ClassVar[str] = "diversity"
    levels: ClassVar[frozenset[str]] = CONTEXT
    diversity: DiversityTest

    def describe(self, bindings: dict | None = None) -> str:
        return f"{self.diversity.field} is {either(self.diversity.in_)}"

    def lower(self, low):
        return low.test(low.names.diversity_attribute(self.diversity.field), self.diversity.in_)

    def seen(self, view) -> dict:
        field = self.diversity.field
        return {field: view.model.diversity.get(field, view.names.NOT_GIVEN)}
