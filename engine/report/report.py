"""Report stage: the run's report rendered as files — report.json (the contract), report.md (an
inspection-report draft), report.html (one self-contained page with drill-down to every trace)
and trace.jsonl (one line per case).

The Markdown and HTML are views of the JSON report, through Jinja2 templates with autoescaping
for HTML (case notes are shown as text, never markup). The set is staged — each file written to
a temporary file beside its target — and published (renamed into place) only once all are
written and the run is recorded; the files are created readable by the owner only.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import stat
import tempfile
from pathlib import Path

from engine.base import render
from engine.base.diagnostics import Diagnostic, InputError
from engine.compile import facts
from engine.report import charts, draft, redact, word, wording
from engine.report.model import Report

FILES = ("report.json", "report.md", "report.html", "report.docx", "trace.jsonl")
#: What a redacted run writes: no trace.jsonl, whose lines are keyed by case reference and hold each
#: case's answers and context (a trace.jsonl left in the folder by an earlier run is removed).
REDACTED_FILES = FILES[:-1]


def files(redacted: bool) -> tuple[str, ...]:
    """The report files a run writes, redacted or not."""
    return REDACTED_FILES if redacted else FILES


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
    return {"r": report, "names": wording.Names(report), "ratings": ratings, "groups": groups, "traces": traces, "figure": functools.partial(draft.figure, confidence=report["aggregates"].get("confidence", 0.95)),
            "label": lambda key: plain.get(key) or (key.partition(":")[2] or key).replace("_", " "),
            "trace_limit": HTML_TRACE_LIMIT, "agreement_words": wording.agreement_words, "chart_svg": functools.partial(charts.svg, inline=True),
            "what_if_summary": wording.what_if_summary, "maker": wording.maker,
            "review_account": functools.partial(draft.review_account, label=lambda key: plain.get(key) or key),
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


def write(report: Report, out: str | os.PathLike[str], redact_with: list[str] | None = None,
          extra: dict | None = None) -> list[Path]:
    """Write the report files into ``out`` at once (see :func:`stage`); ``extra`` keys are
    added to report.json."""
    staged = stage(report, out, redact_with)
    try:
        staged.stage_json(extra or {})
    except BaseException:
        staged.discard()
        raise
    staged.publish()
    return [Path(out) / name for name in files(redact_with is not None)]


def stage(report: Report, out: str | os.PathLike[str], redact_with: list[str] | None = None,
          jobs: int = 1) -> Staged:
    """Stage the report set in ``out``: report.md, report.html, report.docx and trace.jsonl written to
    temporary files beside their targets, owner-only, none of them visible yet. report.json
    follows with :meth:`Staged.stage_json` (it records the store's head, known only once the run is
    being recorded); :meth:`Staged.publish` then renames them all into place.

    With ``redact_with`` (the framework's diversity fields) the files are redacted for publication
    (:mod:`engine.report.redact`) and no trace.jsonl is written: one left in ``out`` by an earlier
    run is removed when the set is published, so no case's trace sits beside a published report.
    Temporary files left in ``out`` by a killed run are removed first. With ``jobs`` over 1,
    report.docx (the slowest: its charts are drawn as images) is written by a forked worker while
    this process writes the others."""
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    remove_leftovers(out)
    redacted = redact_with is not None
    if redacted:
        report = Report(redact.report(report.content, redact_with), None)  # no case traces in any view
    staged = Staged(out, report, created, names=files(redacted))
    try:
        staged.check_targets()
        with _Aside(jobs > 1) as aside:
            staged.add("report.docx", lambda handle: word.write(report.content, handle.buffer), aside)
            staged.add("report.md", lambda handle: handle.write(as_markdown(report)))
            staged.add("report.html", lambda handle: handle.writelines(html_chunks(report)))
            if not redacted:
                lines = (line.decode() for line in report.spool.lines())
                staged.add("trace.jsonl", lambda handle: handle.writelines(lines))
    except BaseException:
        staged.discard()
        raise
    return staged


#: The writer a forked worker runs (set just before the worker is forked).
_PENDING = None


def _write_pending(descriptor: int) -> None:
    _write(descriptor, _PENDING)


class _Aside:
    """Writes one staged file in a forked worker while the caller goes on; leaving the block waits
    for it and raises what it raised. Not in use (``use`` false), files are written in turn."""

    def __init__(self, use: bool) -> None:
        self.use = use
        self._pool = self._future = None
        self._descriptor: int | None = None

    def submit(self, descriptor: int, writer) -> None:
        """Write through ``descriptor`` (the staged file's, inherited by the forked worker: never
        reopened by name); this process's copy is closed when the block is left."""
        global _PENDING
        import concurrent.futures
        import multiprocessing

        _PENDING, self._descriptor = writer, descriptor
        self._pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
        self._future = self._pool.submit(_write_pending, descriptor)

    def __enter__(self) -> _Aside:
        return self

    def __exit__(self, *exc) -> None:
        global _PENDING
        try:
            if self._future is not None:
                self._future.result()
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
            if self._descriptor is not None:
                os.close(self._descriptor)
            _PENDING = None


class Staged:
    """A report set written to temporary files in its folder, not yet visible: publish it (all
    renamed into place, or none) or discard it."""

    def __init__(self, out: Path, report: Report, created: bool, names: tuple[str, ...] = FILES) -> None:
        self.out, self.report, self._created = out, report, created
        self.names = names  # the reports this set writes; the other FILES in ``out`` are removed on publishing
        self.files: dict[str, Path] = {}

    def add(self, name: str, writer, aside: _Aside | None = None) -> None:
        """Stage ``name``, written by ``writer(handle)`` (in a worker, given an ``aside`` in use)."""
        self.files[name] = _stage(self.out, name, writer, aside)

    def stage_json(self, extra: dict) -> None:
        """report.json: the report, with ``extra`` keys (the store's head) after it."""
        self.add("report.json", lambda handle: _dump_json({**self.report.content, **extra}, handle))

    def check_targets(self) -> None:
        """Every report's place holds a file or nothing: a folder (or anything else) there would
        make publishing fail half-way, so it stops the run before anything is recorded."""
        blocked = [self.out / name for name in self.names if _blocked(self.out / name)]
        if blocked:
            raise InputError([Diagnostic(str(path), 1, 1, "report_blocked",
                                         "a report's place is taken by something that is not a file",
                                         "move it away or choose another --out; nothing was written or recorded")
                              for path in blocked])

    def publish(self) -> None:
        """Rename every staged file into place, and move aside (then delete) a report of an earlier
        run this set does not write (a redacted set's trace.jsonl). If one rename fails, those
        already made are undone (the previous reports come back) and the error is raised."""
        self.check_targets()
        done: list[tuple[Path, Path | None]] = []  # each report replaced, and the previous one kept aside
        try:
            for name in FILES:
                target = self.out / name
                if name in self.names:
                    done.append((target, _backup(target, name) if target.is_file() else None))
                    os.replace(self.files[name], target)
                elif target.is_file() or target.is_symlink():
                    aside = _temporary_name(self.out, name, "old")
                    done.append((target, aside))
                    os.replace(target, aside)
        except BaseException:
            _, unused = done.pop()  # not replaced: its target is as it was
            if unused is not None:
                with contextlib.suppress(OSError):
                    unused.unlink()
            for target, backup in reversed(done):
                with contextlib.suppress(OSError):
                    os.replace(backup, target) if backup else target.unlink()
            self.discard()
            raise
        finally:
            for _, backup in done:
                if backup is not None:
                    with contextlib.suppress(OSError):
                        backup.unlink()
        self.files.clear()

    def discard(self) -> None:
        """Remove the staged files (and ``out``, if staging made it and it is empty)."""
        for temporary in self.files.values():
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        self.files.clear()
        if self._created:
            with contextlib.suppress(OSError):
                self.out.rmdir()


def _backup(target: Path, name: str) -> Path | None:
    """A hard link to the report about to be replaced, to put it back if publishing fails."""
    backup = _temporary_name(target.parent, name, "old")
    try:
        os.link(target, backup)
    except OSError:  # a file system without hard links: publish without the undo
        return None
    return backup


def _blocked(path: Path) -> bool:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISLNK(mode))


#: ``.report.json.qi<pid>.<random>.tmp``: a staged report, named by the process that wrote it.
_TEMPORARY = re.compile(r"\.(?:" + "|".join(re.escape(n) for n in FILES) + r")\.qi(\d+)\.[^/]+\.tmp")


def _temporary_name(out: Path, name: str, tag: str) -> Path:
    return out / f".{name}.qi{os.getpid()}.{tag}{secrets.token_hex(4)}.tmp"


def remove_leftovers(out: Path) -> list[Path]:
    """Remove the temporary files a killed run left in ``out`` (those of a process still running
    are kept: it may be publishing now). Returns what was removed."""
    removed = []
    for path in out.glob(".*.tmp"):
        match = _TEMPORARY.fullmatch(path.name)
        if match and not _running(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is not publishing in this folder yet: its files there are leftovers
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stage(out: Path, name: str, writer, aside: _Aside | None = None) -> Path:
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.qi{os.getpid()}.", suffix=".tmp", dir=out)
    try:
        os.fchmod(descriptor, 0o600)
        if aside is not None and aside.use:
            aside.submit(descriptor, writer)
        else:
            _write(descriptor, writer)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return Path(temporary)


def _write(descriptor: int, writer) -> None:
    """Write a staged file through the descriptor mkstemp made (closing it): never reopened by its
    name, which someone able to write in the folder could have swapped for a link."""
    with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as handle:
        writer(handle)
        handle.flush()
        os.fsync(handle.fileno())
