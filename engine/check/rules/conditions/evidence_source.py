"""``evidence_source``: a line of enquiry was evidenced from a given source.

    when:
      evidence_source: {item: 2.4.a, source: service_user}

holds when the inspector's evidence on the item lists at least one of the sources (from the
framework's ``evidence_sources`` vocabulary), e.g. that engagement was judged from the service
user's own account and not only from the case record. An item not assessed has no sources.

This form is the whole of its implementation: the model, the checks, the wording, the lowering
(one true/false attribute per item and source, added to the fact only when a rule reads it), the
values a trace shows and the wording of a lint witness.
"""

from __future__ import annotations

import functools
from typing import ClassVar

from pydantic import Field

from engine.check.models import Strict
from engine.check.rules.form import CASE, ORGANISATION, Form, either
from engine.check.rules.terms import ItemId, terms


class ItemSources(Strict):
    item: ItemId = Field(description="Framework item id, e.g. 2.4.a.")
    source: terms("evidence_sources", "evidence source") = Field(
        description="Evidence sources of which at least one must be listed, e.g. service_user.")


def _sources(model, item: str) -> list[str]:
    entry = model.evidence.get(item)
    return list(entry.sources) if entry is not None else []


# the attribute's value and its wording in a lint witness (module-level: compiled rules are pickled)

def _evidenced(item: str, source: str, model) -> bool:
    return source in _sources(model, item)


def _words(item: str, source: str, value: bool) -> str:
    return f"{item} {'evidenced' if value else 'not evidenced'} from {source}"


class EvidenceSourceCondition(Form):
    """The evidence on an item lists at least one of these sources."""

    key: ClassVar[str] = "evidence_source"
    levels: ClassVar[frozenset[str]] = frozenset({CASE, ORGANISATION})
    evidence_source: ItemSources

    def items(self) -> list[tuple[tuple, str]]:
        return [(("evidence_source", "item"), self.evidence_source.item)]

    def describe(self, bindings: dict | None = None) -> str:
        return f"the evidence on {self.evidence_source.item} is from {either(self.evidence_source.source)}"

    def lower(self, low):
        item = self.evidence_source.item
        return low.any(low.test(self._attribute(low, item, source), [True]) for source in self.evidence_source.source)

    @staticmethod
    def _attribute(low, item: str, source: str) -> str:
        return low.extra(f"src_{low.names.safe(item)}__{low.names.safe(source)}", (True, False),
                         functools.partial(_evidenced, item, source), functools.partial(_words, item, source))

    def seen(self, view) -> dict:
        item = self.evidence_source.item
        return {f"{item} sources": _sources(view.model, item)}


class ItemSourceCount(Strict):
    item: ItemId = Field(description="Framework item id, e.g. 3.4.h.")
    n: int = Field(ge=1, description="How many different sources the evidence must list.")


def _counted(item: str, n: int, model) -> bool:
    return len(set(_sources(model, item))) >= n


def _count_words(item: str, n: int, value: bool) -> str:
    return f"{item} evidenced from {'at least' if value else 'fewer than'} {n} sources"


class SourcesAtLeastCondition(Form):
    """The evidence on an item lists at least n different sources (corroboration, where the
    framework's words ask that work 'draws on available sources'). An item not assessed has none."""

    key: ClassVar[str] = "sources_at_least"
    levels: ClassVar[frozenset[str]] = frozenset({CASE, ORGANISATION})
    sources_at_least: ItemSourceCount

    def items(self) -> list[tuple[tuple, str]]:
        return [(("sources_at_least", "item"), self.sources_at_least.item)]

    def describe(self, bindings: dict | None = None) -> str:
        return f"the evidence on {self.sources_at_least.item} lists at least {self.sources_at_least.n} sources"

    def lower(self, low):
        item, n = self.sources_at_least.item, self.sources_at_least.n
        attribute = low.extra(f"srcn_{low.names.safe(item)}__{n}", (True, False),
                              functools.partial(_counted, item, n), functools.partial(_count_words, item, n))
        return low.test(attribute, [True])

    def seen(self, view) -> dict:
        item = self.sources_at_least.item
        return {f"{item} sources": _sources(view.model, item)}
