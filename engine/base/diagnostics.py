"""Diagnostics: every problem qi finds in an input, with a stable code, a location and a hint.

A diagnostic renders as ``path:line:col: code: message (hint)``. Stages collect diagnostics
rather than stopping at the first, so a user sees every problem of a file (and of a sample) in
one pass. ``code`` is stable: tests and tools match on it, never on the wording.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable
from typing import Literal

from engine.base.text import printable

Severity = Literal["error", "warning"]

#: Most diagnostics reported for one file; the rest are summarised in one ``too_many_errors``.
MAX_PER_FILE = 100
CAPPED = "too_many_errors"


@dataclasses.dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem at one place in one file. Lines and columns are 1-based; 0 means unknown."""

    path: str
    line: int
    col: int
    code: str
    message: str
    hint: str = ""
    severity: Severity = "error"

    def render(self) -> str:
        """``path:line:col: code: message (hint)``; warnings say so before the message. One line,
        with control characters (in a file name, or quoted from a file) shown as escapes."""
        message = self.message if self.severity == "error" else f"warning: {self.message}"
        text = f"{self.path}:{self.line}:{self.col}: {self.code}: {message}"
        return printable(f"{text} ({self.hint})" if self.hint else text)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class InputError(Exception):
    """Raised by a stage when its input has errors; carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sort(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))


def sort(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sort by file and position, drop exact repeats, and cap each file at ``MAX_PER_FILE``.

    Idempotent: sorting an already sorted and capped list changes nothing.
    """
    unique = sorted(set(diagnostics))
    notes = {d.path: d for d in unique if d.code == CAPPED}
    capped: list[Diagnostic] = []
    per_file: dict[str, int] = {}
    for diagnostic in unique:
        if diagnostic.code == CAPPED:
            continue
        seen = per_file.get(diagnostic.path, 0)
        per_file[diagnostic.path] = seen + 1
        if seen < MAX_PER_FILE:
            capped.append(diagnostic)
    for path, count in per_file.items():
        if count > MAX_PER_FILE:
            notes[path] = Diagnostic(path, 1, 1, CAPPED,
                                     f"{count - MAX_PER_FILE} more problems in this file are not shown",
                                     "fix the ones above and run again")
    ordered: list[Diagnostic] = []
    for path in sorted({d.path for d in capped} | set(notes)):
        ordered += [d for d in capped if d.path == path] + ([notes[path]] if path in notes else [])
    return ordered


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)


def did_you_mean(found: object, allowed: Iterable[object], what: str = "allowed") -> str:
    """A hint naming the closest allowed value, then the allowed values themselves (abridged).

    >>> did_you_mean("comunity_order", ["community_order", "custody"])
    "did you mean 'community_order'? allowed: community_order, custody"
    """
    options = [str(a) for a in allowed]
    close = difflib.get_close_matches(str(found), options, n=1, cutoff=0.6)
    listed = ", ".join(options[:12]) + (f", … ({len(options)} in all)" if len(options) > 12 else "")
    listing = f"{what}: {listed}" if options else f"nothing is {what} here"
    return f"did you mean '{close[0]}'? {listing}" if close else listing
