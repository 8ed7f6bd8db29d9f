"""The connectives ``all``, ``any`` and ``not``, at every level (case, organisation, sample).

Each is defined once here; ``form.union`` makes one copy per level whose children are that
level's conditions, so a sample rule cannot hide a case condition inside ``all:``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from engine.check.rules.form import CASE, ORGANISATION, SAMPLE, Combinator, Form

EVERY_LEVEL = frozenset({CASE, ORGANISATION, SAMPLE})


class AllCondition(Combinator):
    """Every one of the conditions holds."""

    key: ClassVar[str] = "all"
    levels: ClassVar[frozenset[str]] = EVERY_LEVEL
    all: list[Any] = Field(description="Conditions that must all hold.")

    def children(self) -> list[tuple[tuple, Form]]:
        return [(("all", i), child) for i, child in enumerate(self.all)]

    def describe(self, bindings: dict | None = None) -> str:
        return "all of these hold"

    def lower(self, low):
        return low.all(child.lower(low) for child in self.all)


class AnyCondition(Combinator):
    """At least one of the conditions holds."""

    key: ClassVar[str] = "any"
    levels: ClassVar[frozenset[str]] = EVERY_LEVEL
    any: list[Any] = Field(description="Conditions of which at least one must hold.")

    def children(self) -> list[tuple[tuple, Form]]:
        return [(("any", i), child) for i, child in enumerate(self.any)]

    def describe(self, bindings: dict | None = None) -> str:
        return "at least one of these holds"

    def lower(self, low):
        return low.any(child.lower(low) for child in self.any)


class NotCondition(Combinator):
    """The condition does not hold."""

    key: ClassVar[str] = "not"
    levels: ClassVar[frozenset[str]] = EVERY_LEVEL
    arity: ClassVar[str] = "one"
    not_: Any = Field(alias="not", description="The condition that must not hold.")

    def children(self) -> list[tuple[tuple, Form]]:
        return [(("not",), self.not_)]

    def describe(self, bindings: dict | None = None) -> str:
        return "this does not hold"

    def lower(self, low):
        return low.negate(self.not_.lower(low))
