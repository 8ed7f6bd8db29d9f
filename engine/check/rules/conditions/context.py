"""Conditions on a case's context. The fields and their vocabularies are declared in the
framework's vocabulary (``context``); ``context`` and ``context_at_least`` read any of them,
``provider`` reads qi's own field, and every other key is one the framework declares for a field
(its ``shorthands``), with the framework's own wording."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Union

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, ValidationInfo, model_serializer, model_validator
from pydantic_core import PydanticCustomError

from engine.base.diagnostics import did_you_mean
from engine.check import models
from engine.check.models import Strict
from engine.check.rules.form import CASE, ORGANISATION, Declared, Form, as_list, either, forms, one_or_many, problem
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
    field: str = Field(description="A field of case context from the framework's vocabulary, e.g. order_type.")
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
    field: str = Field(description="An ordered field of case context, e.g. a level.")
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


class DeclaredCondition(Declared):
    """A condition under a key the framework declares for one field of case context (the field's
    ``shorthands``), worded as the framework words it: ``flag: vulnerable`` where the framework's
    ``flags`` field declares the key ``flag``. Lowered and seen as ``context`` (or
    ``context_at_least``) on that field."""

    levels: ClassVar[frozenset[str]] = CONTEXT
    written: str = Field(description="The key as the rule writes it.")
    value: Any = Field(description="What the rule writes under it: values (in), one value (at_least), true/false.")

    _field: str = PrivateAttr("")
    _test: str = PrivateAttr("in")
    _words: str = PrivateAttr("")
    _shows: str | None = PrivateAttr(None)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler) -> dict:
        return {"type": "object", "minProperties": 1, "maxProperties": 1,
                "propertyNames": {"not": {"enum": sorted(forms(CASE))}}, "x-declared-conditions": True,
                "description": "A condition under a key the framework declares (a context field's shorthands), "
                               "e.g. flag: vulnerable."}

    @model_validator(mode="before")
    @classmethod
    def _from_document(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and set(data) == {"written", "value"}:
            return data  # a copy of a parsed condition
        key, value = next(iter(data.items()))
        framework = (info.context or {}).get("framework")
        found = framework.vocabulary.shorthand(key) if framework is not None else None
        if found is None:
            declared = [s.key for f in framework.vocabulary.context for s in f.shorthands] if framework else []
            raise PydanticCustomError("unknown_condition", "unknown condition",
                                      {"conditions": ", ".join([*forms(CASE), *declared])})
        field, shorthand = found
        allowed = _terms_of(field, info)
        if field.shape == "present":
            if not isinstance(value, bool):
                raise ValidationError.from_exception_data("condition", [problem(
                    (key,), value, "wrong_type", f"{key} is true or false", f"write {key}: true or {key}: false")])
            return {"written": key, "value": value}
        values = [value] if shorthand.test == "at_least" else as_list(value)
        if not values:
            raise ValidationError.from_exception_data("condition", [problem(
                (key,), value, "invalid_value", "this must not be empty", "add at least one value")])
        wrong = [problem((key,) if shorthand.test == "at_least" else (key, index), one, "unknown_value",
                         f"{one!r} is not a known {field.each or field.label.lower()}", did_you_mean(one, allowed))
                 for index, one in enumerate(values) if isinstance(one, bool) or one not in allowed]
        if wrong:
            raise ValidationError.from_exception_data("condition", wrong)
        return {"written": key, "value": values[0] if shorthand.test == "at_least" else values}

    @model_validator(mode="after")
    def _as_declared(self, info: ValidationInfo) -> DeclaredCondition:
        framework = (info.context or {}).get("framework")
        if framework is not None:
            field, shorthand = framework.vocabulary.shorthand(self.written)
            self._field, self._test, self._shows = field.id, shorthand.test, shorthand.shows
            self._words = (shorthand.words if self.value is not False else shorthand.otherwise) or shorthand.words
        return self

    @model_serializer
    def _as_written(self) -> dict:
        return {self.written: self.value}

    @property
    def key(self) -> str:  # type: ignore[override]
        return self.written

    @property
    def body(self) -> Any:
        return self.value

    def describe(self, bindings: dict | None = None) -> str:
        if isinstance(self.value, bool):
            return self._words
        return self._words.replace("{values}", either(self.value) if isinstance(self.value, list) else str(self.value))

    def lower(self, low):
        if self._test == "at_least":
            return low.context_at_least(self._field, self.value)
        return low.context(self._field, [self.value] if isinstance(self.value, bool) else self.value)

    def seen(self, view) -> dict:
        if self._shows is None:
            return {self._field: _value(view, self._field)}
        shown = view.model
        for part in self._shows.split("."):
            shown = getattr(shown, part, None) if shown is not None else None
        return {self._shows: shown.model_dump() if isinstance(shown, BaseModel) else shown}


class ProviderCondition(Form):
    """The case is supervised by one of these providers."""

    key: ClassVar[str] = "provider"
    levels: ClassVar[frozenset[str]] = frozenset({CASE, ORGANISATION})
    field: ClassVar[str] = "provider"
    provider: terms("providers", "provider")

    def describe(self, bindings: dict | None = None) -> str:
        return f"the provider is {either(self.provider)}"

    def lower(self, low):
        return low.context(self.field, self.provider)

    def seen(self, view) -> dict:
        model = view.model
        return {"provider": getattr(model, "provider", None) or getattr(model, "organisation", None)}


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
