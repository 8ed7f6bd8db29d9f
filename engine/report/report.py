"""Report stage: the run's report rendered as files — report.json (the contract), report.md (an
inspection-report draft), report.html (one self-contained page with drill-down to every trace)
and trace.jsonl (one line per case).

The Markdown and HTML are views of the JSON report, through Jinja2 templates with autoescaping
for HTML (case notes are shown as text, never markup). Files are written atomically — each to a
temporary file that is renamed into place only once all are written — and created readable by
the owner only.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from engine.base import render
from engine.compile import facts
from engine.report import draft, redact, views, word
from engine.report.model import Report

FILES = ("report.json", "report.md", "report.html", "report.docx", "trace.jsonl")

def _dump_json(report: dict, handle) -> None:
    """report.json written as it is encoded, never held whole (indent 1, UTF-8, a final newline)."""
    json.dump(report, handle, indent=1, ensure_ascii=False)
    handle.write("\n")


#: Samples up to this size have every case's traces in report.html (a few MB); larger ones point to
#: trace.jsonl, so the page stays readable on a laptop.
HTML_TRACE_LIMIT = 300


class _Traces:
    """The full case results, read from the run's spool each time a template iterates them."""

    def __init__(self, spool) -> None:
        self.spool = spool

    def __iter__(self):
        return self.spool.results()


def _view(report: Report) -> dict:
    """What the templates need besides the report: lookups derived from it, nothing new."""
    spool, report = report.spool, report.content
    ratings = {(r["target"], r["group"]): r["band"] for r in report["sample_judgement"]["ratings"]}
    groups = [facts.ALL] + [f"provider:{p}" for p in report["sample"]["providers"]]
    traces = _Traces(spool) if spool is not None and spool.count <= HTML_TRACE_LIMIT else None
    plain = report.get("labels", {})
    return {"r": report, "ratings": ratings, "groups": groups, "traces": traces, "figure": draft.figure,
            "label": lambda key: plain.get(key) or (key.partition(":")[2] or key).replace("_", " "),
            "trace_limit": HTML_TRACE_LIMIT, "agreement_words": views.agreement_words,
            "what_if_summary": views.what_if_summary,
            "decisions": {(d["case"], d["criterion"]): d for d in report.get("review", {}).get("decisions", [])},
            "group_label": lambda g: "All" if g == facts.ALL else g.split(":", 1)[1],
            "provider_of": lambda g: facts.ALL if g == facts.ALL else g.split(":", 1)[1]}


def as_markdown(report: Report) -> str:
    return render.render("report.md.j2", draft=draft.build(report.content), **_view(report))


def html_chunks(report: Report):
    """report.html, rendered a piece at a time (a large sample's page is never held whole)."""
    return render.environment.get_template("report.html.j2").generate(draft=draft.build(report.content), **_view(report))


def as_html(report: Report) -> str:
    return "".join(html_chunks(report))


def write(report: Report, out: str | os.PathLike[str], redact_with: list[str] | None = None) -> list[Path]:
    """Write the four report files into ``out`` atomically, readable by the owner only: each is
    written to a temporary file, and all are renamed into place only once all are complete.

    With ``redact_with`` (the framework's diversity fields) the files are redacted for publication."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    if redact_with is not None:
        report = Report(redact.report(report.content, redact_with), _RedactedSpool(report.spool, redact_with))
    lines = (line.decode() for line in report.spool.lines())
    writers = {
        "report.json": lambda handle: _dump_json(report.content, handle),
        "report.md": lambda handle: handle.write(as_markdown(report)),
        "report.html": lambda handle: handle.writelines(html_chunks(report)),
        "report.docx": lambda handle: word.write(report.content, handle.buffer),
        "trace.jsonl": lambda handle: handle.writelines(lines),
    }
    staged: list[tuple[str, Path]] = []
    try:
        for name, writer in writers.items():
            staged.append((name, _stage(out, name, writer)))
        for name, temporary in staged:
            os.replace(temporary, out / name)
    finally:
        for _, temporary in staged:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
    return [out / name for name in writers]


class _RedactedSpool:
    """A spool whose case results are redacted as they are read."""

    def __init__(self, spool, fields: list[str]) -> None:
        self._spool, self._fields, self.count = spool, fields, spool.count

    def lines(self):
        return (redact.case_line(line, self._fields).encode() for line in self._spool.lines())

    def results(self):
        return (json.loads(line) for line in self.lines())


def _stage(out: Path, name: str, writer) -> Path:
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as handle:
            writer(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return Path(temporary)
