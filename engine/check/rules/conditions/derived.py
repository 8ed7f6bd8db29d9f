"""The condition on facts derived by other rules (in case, organisation and sample rules)."""

from __future__ import annotations

from typing import ClassVar

from engine.check.rules.form import CASE, ORGANISATION, SAMPLE, Form
from engine.check.rules.terms import FactName


class FactCondition(Form):
    """A fact derived by another rule holds."""

    key: ClassVar[str] = "fact"
    levels: ClassVar[frozenset[str]] = frozenset({CASE, ORGANISATION, SAMPLE})
    fact: FactName

    def describe(self, bindings: dict | None = None) -> str:
        return f"the fact {self.fact} holds"

    def lower(self, low):
        return low.test(low.names.fact_attribute(self.fact), [True])

    def seen(self, view) -> dict:
        return {self.fact: view.fact[view.names.fact_attribute(self.fact)]}
