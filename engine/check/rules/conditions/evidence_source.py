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
