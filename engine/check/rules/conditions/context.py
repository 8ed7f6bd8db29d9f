"""Conditions on a case's context. The fields (provider, sentence type, requirements, risk of
serious harm, MAPPA, flags...) and their vocabularies are declared in the framework's vocabulary
(``context``); ``context`` and ``context_at_least`` read any of them, and ``provider``, ``flag``,
``risk_at_least``... are shorthands for the fields rules read most, with their own wording."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Union

from pydantic import Field, ValidationError, ValidationInfo, model_validator

from engine.base.diagnostics import did_you_mean
from engine.check import models
from engine.check.models import Strict, vocabulary
from engine.check.rules.form import CASE, ORGANISATION, Form, either, one_or_many, problem
from engine.check.rules.terms import terms

CONTEXT = frozenset({CASE})


def _context_field(field: str, info: ValidationInfo, loc: tuple) -> models.ContextField | None:
    """The declared field, or None when validating without a framework; raises unknown_field."""
    framework = (info.context or {}).get("framework")
    if framework is None:
        return None
    declared = framework.vocabulary.context_field(field)
    if declared is None:
        known = [f.id for f in framework.vocabulary.context]
        raise ValidationError.from_exception_data("context", [problem(
            loc, field, "unknown_field", f"{field!r} is not a field of case context", did_you_mean(field, known))])
    return declared


def _terms_of(field: models.ContextField, info: ValidationInfo) -> list:
    if field.shape == "present":
        return [True, False]
    return info.context["framework"].vocabulary.ids(field.terms)


class ContextTest(Strict):
    field: str = Field(description="A field of case context from the framework's vocabulary, e.g. sentence_type.")
    in_: one_or_many(Union[bool, int, str]) = Field(alias="in", description="Values (terms of the field's vocabulary) "
                                                    "that satisfy the condition; for a list field, any one of them.")

    @model_validator(mode="after")
    def _known(self, info: ValidationInfo) -> ContextTest:
        declared = _context_field(self.field, info, ("field",))
        if declared is not None:
            allowed = _terms_of(declared, info)
            wrong = [problem(("in", i), value, "unknown_value", f"{value!r} is not a value of {self.field}",
                             did_you_mean(value, allowed)) for i, value in enumerate(self.in_) if value not in allowed]
            if wrong:
                raise ValidationError.from_exception_data("context", wrong)
        return self


class ContextLevel(Strict):
    field: str = Field(description="An ordered field of case context, e.g. risk_of_serious_harm.")
    level: Union[int, str] = Field(description="A term of the field's vocabulary, e.g. high.")

    @model_validator(mode="after")
    def _known(self, info: ValidationInfo) -> ContextLevel:
        declared = _context_field(self.field, info, ("field",))
        if declared is not None:
            if not declared.ordered:
                raise ValidationError.from_exception_data("context", [problem(
                    ("field",), self.field, "invalid_value", f"{self.field!r} has no order to be at or above",
                    "use context: to test its values")])
            allowed = _terms_of(declared, info)
            if self.level not in allowed:
                raise ValidationError.from_exception_data("context", [problem(
                    ("level",), self.level, "unknown_value", f"{self.level!r} is not a value of {self.field}",
                    did_you_mean(self.level, allowed))])
        return self


def _value(view, field_id: str) -> Any:
    return models.context_value(view.model, view.fields[field_id])


class ContextCondition(Form):
    """A field of case context has one of these values (a list field: has one of them)."""

    key: ClassVar[str] = "context"
    levels: ClassVar[frozenset[str]] = CONTEXT
    context: ContextTest

    def describe(self, bindings: dict | None = None) -> str:
        return f"{self.context.field} is {either(self.context.in_)}"

    def lower(self, low):
        return low.context(self.context.field, self.context.in_)

    def seen(self, view) -> dict:
        return {self.context.field: _value(view, self.context.field)}


class ContextAtLeastCondition(Form):
    """An ordered field of case context is at or above this value (in the vocabulary's order)."""

    key: ClassVar[str] = "context_at_least"
    levels: ClassVar[frozenset[str]] = CONTEXT
    context_at_least: ContextLevel

    def describe(self, bindings: dict | None = None) -> str:
        return f"{self.context_at_least.field} is {self.context_at_least.level} or higher"

    def lower(self, low):
        return low.context_at_least(self.context_at_least.field, self.context_at_least.level)

    def seen(self, view) -> dict:
        return {self.context_at_least.field: _value(view, self.context_at_least.field)}


class _Shorthand(Form):
    """A shorthand for ``context`` on one field: lowered and seen as that field."""

    levels: ClassVar[frozenset[str]] = CONTEXT
    #: The context field (an id in the framework's vocabulary) the shorthand reads.
    field: ClassVar[str]

    def lower(self, low):
        return low.context(self.field, self.body)

    def seen(self, view) -> dict:
        return {self.field: _value(view, self.field)}


class RiskCondition(_Shorthand):
    """Risk of serious harm is at or above this level (levels are ordered in the framework)."""

    key: ClassVar[str] = "risk_at_least"
    field: ClassVar[str] = "risk_of_serious_harm"
    risk_at_least: Annotated[str, vocabulary("risk_levels", "risk level")] = Field(
        json_schema_extra={"x-vocabulary": "risk_levels"})

    def describe(self, bindings: dict | None = None) -> str:
        return f"risk of serious harm is {self.risk_at_least} or higher"

    def lower(self, low):
        return low.context_at_least(self.field, self.risk_at_least)


class ProviderCondition(_Shorthand):
    """The case is supervised by one of these providers."""

    key: ClassVar[str] = "provider"
    levels: ClassVar[frozenset[str]] = frozenset({CASE, ORGANISATION})
    field: ClassVar[str] = "provider"
    provider: terms("providers", "provider")

    def describe(self, bindings: dict | None = None) -> str:
        return f"the provider is {either(self.provider)}"

    def seen(self, view) -> dict:
        model = view.model
        return {"provider": getattr(model, "provider", None) or getattr(model, "organisation", None)}


class SentenceCondition(_Shorthand):
    """The sentence is of one of these types."""

    key: ClassVar[str] = "sentence_type"
    field: ClassVar[str] = "sentence_type"
    sentence_type: terms("sentence_types", "sentence type")

    def describe(self, bindings: dict | None = None) -> str:
        return f"the sentence is {either(self.sentence_type)}"


class RequirementCondition(_Shorthand):
    """The sentence has at least one of these requirements."""

    key: ClassVar[str] = "requirement"
    field: ClassVar[str] = "requirements"
    requirement: terms("requirement_types", "requirement type")

    def describe(self, bindings: dict | None = None) -> str:
        return f"the sentence has a {either(self.requirement)} requirement"


class FlagCondition(_Shorthand):
    """The case has at least one of these flags."""

    key: ClassVar[str] = "flag"
    field: ClassVar[str] = "flags"
    flag: terms("flags", "flag")

    def describe(self, bindings: dict | None = None) -> str:
        return f"the case is flagged {either(self.flag)}"


class _Mappa(_Shorthand):
    def seen(self, view) -> dict:
        mappa = view.model.mappa
        return {"mappa": mappa.model_dump() if mappa else None}


class MappaCondition(_Mappa):
    """The case is (true) or is not (false) managed under MAPPA."""

    key: ClassVar[str] = "mappa"
    field: ClassVar[str] = "mappa"
    mappa: bool

    def describe(self, bindings: dict | None = None) -> str:
        return "the case is managed under MAPPA" if self.mappa else "the case is not managed under MAPPA"

    def lower(self, low):
        return low.context(self.field, [self.mappa])


class MappaCategoryCondition(_Mappa):
    """The MAPPA category is one of these."""

    key: ClassVar[str] = "mappa_category"
    field: ClassVar[str] = "mappa_category"
    mappa_category: terms("mappa_categories", "MAPPA category", int)

    def describe(self, bindings: dict | None = None) -> str:
        return f"the MAPPA category is {either(self.mappa_category)}"


class MappaLevelCondition(_Mappa):
    """The MAPPA level is at or above this level."""

    key: ClassVar[str] = "mappa_level_at_least"
    field: ClassVar[str] = "mappa_level"
    mappa_level_at_least: Annotated[int, vocabulary("mappa_levels", "MAPPA level")]

    def describe(self, bindings: dict | None = None) -> str:
        return f"the MAPPA level is {self.mappa_level_at_least} or higher"

    def lower(self, low):
        return low.context_at_least(self.field, self.mappa_level_at_least)


class DiversityTest(Strict):
    field: str = Field(description="A diversity characteristic from the framework vocabulary, e.g. gender.")
    in_: one_or_many(str) = Field(alias="in", description="Values that satisfy the condition.")

    @model_validator(mode="after")
    def _in_vocabulary(self, info: ValidationInfo) -> DiversityTest:
        """The characteristic and its values are the framework's (an unknown one could never hold)."""
        framework = (info.context or {}).get("framework")
        if framework is None:
            return self
        fields = [d.id for d in framework.vocabulary.diversity]
        if self.field not in fields:
            raise ValidationError.from_exception_data("DiversityTest", [problem(
                ("field",), self.field, "unknown_value", f"{self.field!r} is not a diversity characteristic",
                did_you_mean(self.field, fields, "characteristics"))])
        allowed = framework.vocabulary.ids(f"diversity.{self.field}")
        problems = [problem(("in", index), value, "unknown_value", f"{value!r} is not a value of {self.field}",
                            did_you_mean(value, allowed)) for index, value in enumerate(self.in_) if value not in allowed]
        if problems:
            raise ValidationError.from_exception_data("DiversityTest", problems)
        return self


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
