"""The report model: a finished run as the report stage and the store receive it.

:class:`Report` is the run's report.json (``content``, the JSON contract in docs/report.md) and
the result of every case behind it (``spool``, trace.jsonl's lines, expanded to full results with
report.json's rule table as they are read, kept on disk so that a run of any size keeps memory
flat). Both parts are named fields, not a dict with a hidden spool.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections.abc import Iterator, Mapping

import orjson

from engine.judge import trace


class CaseSpool:
    """Every case's result, one JSON line each (:func:`engine.judge.trace.case_line`), kept on
    disk — an anonymous temporary file only its owner can read — rather than in memory, so a run of
    any size keeps memory flat. Lines may be added in any order; they are read back in
    case-reference order. ``table`` is the run's rule table, which :meth:`results` expands lines with."""

    def __init__(self, table: dict | None = None) -> None:
        self.table = table
        self._file = tempfile.TemporaryFile(mode="w+b")
        self._where: dict[str, tuple[int, int]] = {}
        self._end = 0
        self._sha256: str | None = None

    @property
    def count(self) -> int:
        return len(self._where)

    @property
    def references(self) -> list[str]:
        """The case references, in the order :meth:`lines` gives their lines."""
        return sorted(self._where)

    def add(self, reference: str, line: bytes) -> None:
        """One case's result, already encoded by :func:`encode`."""
        self._file.seek(self._end)
        self._file.write(line)
        self._where[reference] = (self._end, len(line))
        self._end += len(line)
        self._sha256 = None

    @property
    def sha256(self) -> str:
        """The sha256 of trace.jsonl: every line, in case-reference order."""
        if self._sha256 is None:
            digest = hashlib.sha256()
            for line in self.lines():
                digest.update(line)
            self._sha256 = digest.hexdigest()
        return self._sha256

    def lines(self):
        """The raw lines, in case-reference order (one reader at a time)."""
        self._file.flush()
        for reference in self.references:
            offset, length = self._where[reference]
            self._file.seek(offset)
            yield self._file.read(length)

    def records(self):
        """Every case's line as kept (not expanded), in case-reference order."""
        for line in self.lines():
            yield orjson.loads(line)

    def results(self):
        """Every case's full result, its traces expanded, in case-reference order."""
        for line in self.lines():
            found = orjson.loads(line)
            yield trace.expand(found, self.table) if self.table is not None else found



@dataclasses.dataclass(frozen=True)
class Report(Mapping):
    """A finished run: ``content`` is report.json (the JSON contract in docs/report.md), ``spool``
    the full case results behind it (trace.jsonl, one line per case, on disk)."""

    content: dict
    spool: CaseSpool

    @property
    def run_id(self) -> str:
        return self.content["run"]["id"]

    # read as a mapping, it is the JSON contract itself
    def __getitem__(self, key: str):
        return self.content[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.content)

    def __len__(self) -> int:
        return len(self.content)
