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

from engine import facts, render

FILES = ("report.json", "report.md", "report.html", "trace.jsonl")

def as_json(report: dict) -> str:
    return json.dumps(report, indent=1, ensure_ascii=False) + "\n"


def as_jsonl(report: dict) -> str:
    return "".join(json.dumps(case, ensure_ascii=False, sort_keys=True) + "\n" for case in report["cases"])


def _view(report: dict) -> dict:
    """What the templates need besides the report: lookups derived from it, nothing new."""
    ratings = {(r["target"], r["group"]): r["band"] for r in report["sample_judgement"]["ratings"]}
    groups = [facts.ALL] + [f"provider:{p}" for p in report["sample"]["providers"]]
    return {"r": report, "ratings": ratings, "groups": groups,
            "group_label": lambda g: "All" if g == facts.ALL else g.split(":", 1)[1],
            "provider_of": lambda g: facts.ALL if g == facts.ALL else g.split(":", 1)[1]}


def as_markdown(report: dict) -> str:
    return render.render("report.md.j2", **_view(report))


def as_html(report: dict) -> str:
    return render.render("report.html.j2", **_view(report))


def write(report: dict, out: str | os.PathLike[str]) -> list[Path]:
    """Write the four report files into ``out`` atomically, readable by the owner only."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    contents = {"report.json": as_json(report), "report.md": as_markdown(report),
                "report.html": as_html(report), "trace.jsonl": as_jsonl(report)}
    staged: list[tuple[str, Path]] = []
    try:
        for name, text in contents.items():
            staged.append((name, _stage(out, name, text)))
        for name, temporary in staged:
            os.replace(temporary, out / name)
    finally:
        for _, temporary in staged:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
    return [out / name for name in contents]


def _stage(out: Path, name: str, text: str) -> Path:
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return Path(temporary)
