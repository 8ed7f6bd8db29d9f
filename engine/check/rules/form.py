"""Condition forms: the base every condition of the rule language is built on, and the registry.

A condition form (``answer``, ``flag``, ``percent_sufficient``, ``all``...) is one class that
declares, in one place, everything qi does with it:

* its **model** — the pydantic fields under its single key, checked when a rule set is loaded;
* ``levels`` — which rules may use it: ``case``, ``organisation`` and/or ``sample``;
* :meth:`Form.items` — the framework items it reads (for scope checks, ``cites`` and the handbook);
* :meth:`Form.check` — checks that need the whole rule set (bands, bindings, groupings...);
* :meth:`Form.describe` — the condition in plain English (traces, handbook, explain);
* :meth:`Form.lower` — its lowering to the compiled condition tree (``engine.compile.conditions``
  passes in the lowering context: this stage does not import later ones);
* :meth:`Form.seen` — the values a trace shows it saw (and, for sample forms,
  :meth:`Form.aggregates`, the figures behind them).

Defining a subclass with a ``key`` registers it; ``engine.check.rules.conditions`` imports every
module of its package, so a new form is a new file there (or a class in an existing one).
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, ClassVar, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag, create_model
from pydantic_core import InitErrorDetails

from engine.check import models
from engine.check.models import Strict, _error

#: Where a condition may appear: rules over each case, over each provider's organisation
#: evidence, and over the whole sample's aggregates.
CASE, ORGANISATION, SAMPLE = "case", "organisation", "sample"

#: Every registered form, in definition order (modules are imported in name order).
REGISTRY: list[type[Form]] = []


def as_list(value: Any) -> Any:
    """Let a single value stand for a one-element list: ``flag: x`` means ``flag: [x]``."""
    return value if isinstance(value, list) else [value]


def one_or_many(item_type: Any, **schema: Any) -> Any:
    """A non-empty list where a single value may stand for a one-element list."""
    return Annotated[list[item_type], BeforeValidator(as_list),
                     Field(min_length=1, json_schema_extra={"x-one-or-many": True, **schema})]


def either(values: list, joiner: str = "or") -> str:
    """``a``, ``a or b``, ``a, b or c``: a list of values in words."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + f" {joiner} " + values[-1]


def problem(loc: tuple, value: Any, code: str, message: str, hint: str) -> InitErrorDetails:
    """A validation problem carrying a qi diagnostic code, at ``loc`` in the document."""
    return InitErrorDetails(type=_error(code, message, hint), loc=loc, input=value)


class Form(Strict):
    """Base of every condition form. Subclasses set ``key`` and ``levels`` and override what applies."""

    #: The form's single key in YAML, e.g. ``answer``; a subclass without one is not registered.
    key: ClassVar[str] = ""
    #: The rules it may appear in (:data:`CASE`, :data:`ORGANISATION`, :data:`SAMPLE`).
    levels: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("key"), str) and cls.key:
            REGISTRY.append(cls)

    @property
    def body(self) -> Any:
        """The value under the condition's single key."""
        return getattr(self, next(iter(type(self).model_fields)))

    def children(self) -> list[tuple[tuple, Form]]:
        """The conditions this one combines, each with its location below this one."""
        return []

    def items(self) -> list[tuple[tuple, str]]:
        """The framework items the condition reads, each with its location below this one."""
        return []

    def elsewhere(self) -> list[tuple[tuple, str, Form]]:
        """Conditions this one reads in another scope (an organisation rule's condition on its
        provider's cases), each with its location below this one and its scope. They are checked
        and lowered in that scope, never walked as this rule's own (see :func:`nested`)."""
        return []

    def item_ids(self) -> list[str]:
        return [item for _, item in self.items()]

    def check(self, context: Any, loc: tuple) -> None:
        """Checks that need the rule set (``context``, see ``ruleset.SampleContext``); report
        problems with ``context.problem(...)``."""

    def describe(self, bindings: dict | None = None) -> str:
        """The condition in plain English (composites describe only their own connective)."""
        raise NotImplementedError(type(self).__name__)

    def lower(self, low: Any) -> Any:
        """The condition as a node of the compiled tree, built with the lowering context ``low``
        (``engine.compile.conditions.Lowering``: schema attributes, ``test``, ``all``, ``any``...)."""
        raise NotImplementedError(type(self).__name__)

    def seen(self, view: Any) -> dict:
        """The values a trace shows for this condition: ``view.fact`` is the fact the rules engine
        matched, ``view.model`` the case or organisation file, ``view.names`` the attribute names."""
        return {}

    def aggregates(self, view: Any, bindings: dict) -> list[dict]:
        """Sample forms: the aggregate figures the condition read, each with the cases behind it."""
        return []


class Combinator(Form):
    """Base of ``all``, ``any`` and ``not``: defined once, made for each level by :func:`union`
    with children of that level's condition type."""

    #: ``many``: a list of conditions; ``one``: a single condition.
    arity: ClassVar[str] = "many"


def walk(condition: Form, loc: tuple = ()):
    """Every condition in the tree, with its location, parents first."""
    yield loc, condition
    for where, child in condition.children():
        yield from walk(child, loc + where)


def nested(condition: Form, loc: tuple = ()):
    """Every condition read in another scope anywhere in the tree: (location, scope, condition)."""
    for where, found in walk(condition, loc):
        for below, scope, inner in found.elsewhere():
            yield where + below, scope, inner


def condition_key(condition: Form) -> str:
    """A short stable key for a condition's content (the same condition, the same key, in every
    process): how a condition evaluated on each case is found again by the rule that reads it."""
    text = json.dumps(condition.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def forms(level: str) -> dict[str, type[Form]]:
    """The registered forms allowed at ``level`` (``case`` includes organisation forms: organisation
    rules share the case language and are checked for scope once the rule set is read)."""
    allowed = {CASE, ORGANISATION} if level == CASE else {level}
    return {cls.key: cls for cls in REGISTRY if cls.levels & allowed}


DECLARED = models.DECLARED_TAG


class Declared(Form):
    """Base of the form for keys the framework declares rather than qi: a one-key mapping whose key
    no registered form has is validated as this form, which finds the key in the framework."""


def one_key_union(named: dict[str, type], error_type: str, declared: type[Declared] | None = None) -> Any:
    """A union of mappings with one key each, told apart by that key (pydantic then reports errors
    of the chosen form only); anything else is ``error_type``, with the known keys in its context —
    or, with ``declared``, any other one-key mapping is that form's to find in the framework."""

    def key_of(value: Any) -> str | None:
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in named:
            return next(iter(value))
        if isinstance(value, Form) and value.key in named:  # serialising a parsed condition
            return value.key
        if declared is not None and (isinstance(value, declared) or (
                isinstance(value, dict) and len(value) == 1 and isinstance(next(iter(value)), str))):
            return DECLARED
        return None

    members = [Annotated[cls, Tag(name)] for name, cls in named.items()]
    if declared is not None:
        members.append(Annotated[declared, Tag(DECLARED)])
    return Annotated[
        Union[tuple(members)],  # type: ignore[misc]
        Discriminator(key_of, custom_error_type=error_type, custom_error_message=error_type.replace("_", " "),
                      custom_error_context={"conditions": ", ".join(named)}),
    ]


def union(level: str, prefix: str) -> Any:
    """The condition type of one level: a one-key union of its forms, with ``all``/``any``/``not``
    made for this level (named ``{prefix}AllCondition``...) so their children are of the same type."""
    named: dict[str, type] = {}
    made: list[type] = []
    for key, cls in forms(level).items():
        if issubclass(cls, Combinator):
            field = next(iter(cls.model_fields))
            info = cls.model_fields[field]
            child = "Condition" if cls.arity == "one" else Annotated[list["Condition"], Field(min_length=1)]
            name = f"{prefix}{cls.__name__}"
            cls = create_model(name, __base__=cls, __doc__=cls.__doc__, __module__=__name__,
                               **{field: (child, Field(alias=info.alias, description=info.description))})
            globals()[name] = cls  # found by name, so parsed rules pickle to worker processes
            made.append(cls)
        named[key] = cls
    declared = next((cls for cls in Declared.__subclasses__() if cls.levels & ({CASE, ORGANISATION} if level == CASE
                                                                             else {level})), None)
    condition = one_key_union(named, "unknown_condition", declared)
    for cls in made:
        cls.model_rebuild(_types_namespace={"Condition": condition})
    for cls in named.values():  # a form naming "Condition" in its body (provider_cases: where) gets this one
        if cls not in made and not cls.__pydantic_complete__:
            cls.model_rebuild(_types_namespace={"Condition": condition})
    return condition
