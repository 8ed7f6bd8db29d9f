"""``cause_found``: inspectors recorded a cause in their work with an organisation.

    when:
      cause_found: [management_oversight]

holds when the organisation file's ``causes`` records at least one of the causes (from the
framework's ``causes`` vocabulary). It lets an organisation rule weigh what inspectors found in
their fieldwork with the organisation beside its answers and its own cases (``provider_cases``):
a cause is concluded where the two point the same way, never from one alone unless a rule set
says so.

Like ``evidence_source``, the form is the whole of its implementation: one true/false attribute
per cause, added to the organisation's fact only when a rule reads it.
"""

from __future__ import annotations

import functools
from typing import ClassVar

from engine.check.rules.form import ORGANISATION, Form, either
from engine.check.rules.terms import terms


def _recorded(cause: str, model) -> bool:
    return cause in (getattr(model, "causes", None) or {})


def _words(cause: str, value: bool) -> str:
    return f"{cause} {'recorded' if value else 'not recorded'} by the inspectors"


class CauseFoundCondition(Form):
    """The inspectors recorded one of these causes in the organisation's evidence."""

    key: ClassVar[str] = "cause_found"
    levels: ClassVar[frozenset[str]] = frozenset({ORGANISATION})
    cause_found: terms("causes", "cause")

    def describe(self, bindings: dict | None = None) -> str:
        return f"the inspectors found {either(self.cause_found)} in their work with the organisation"

    def lower(self, low):
        return low.any(low.test(low.extra(f"found_{low.names.safe(cause)}", (True, False),
                                          functools.partial(_recorded, cause), functools.partial(_words, cause)),
                                [True])
                       for cause in self.cause_found)

    def seen(self, view) -> dict:
        found = getattr(view.model, "causes", None) or {}
        return {"causes found": [cause for cause in self.cause_found if cause in found]}
