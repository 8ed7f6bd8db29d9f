"""Pages: what the runs list, a run page and a case page show, read from the audit store.

Every page is a view of what the store holds (the stored report and each case's result); nothing
is recomputed except ``verify``. Parsed reports and verify results are kept only until the
database file changes, so a page never shows a run as verified after its bytes were edited.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import re
import threading
import time
from pathlib import Path

from engine.base.diagnostics import InputError
from engine.report import charts, draft
from engine.report import ratings as rated
from engine.run import final
from engine.store import backend, review
from engine.store import store as audit

#: Cases per page on a run page: a 10,000-case run stays as quick to open as a small one.
PAGE_SIZE = 50
ALL = "all"


class NotFound(Exception):
    """A run, case or page the store does not hold (the view answers 404 with this message)."""


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of a long list: its entries, its number and how many pages there are."""

    entries: list
    number: int
    count: int
    total: int

    @classmethod
    def of(cls, entries: list, number: int, size: int = PAGE_SIZE) -> Page:
        count = max(1, math.ceil(len(entries) / size))
        if not 1 <= number <= count:
            raise NotFound(f"there is no page {number} (pages 1 to {count})")
        return cls(entries[(number - 1) * size:number * size], number, count, len(entries))


class Reader:
    """The audit store as the pages read it: one open store per thread (a connection stays in its
    thread), and caches that last until the store changes (engine.store.backend's signatures)."""

    def __init__(self, db_path: str | os.PathLike[str], key: bytes | None = None, read_only: bool = False) -> None:
        self.path = db_path if backend.is_postgres(db_path) else Path(db_path)
        self.key = key
        self.read_only = read_only  # opened read-only: a read-only workspace never writes, not even a migration
        self._local = threading.local()
        self._lock = threading.Lock()
        self._signature: tuple | None = None
        self._since = 0.0  # when the signature was last taken as changed
        self._reports: collections.OrderedDict[int, dict] = collections.OrderedDict()
        self._verified: dict | None = None
        self._verifying: threading.Thread | None = None

    def store(self) -> audit.Store:
        opened = getattr(self._local, "store", None)
        if opened is not None and not opened.backend.usable(opened.connection):  # a server restarted
            opened.close()
            opened = None
        if opened is None:
            opened = self._local.store = (audit.Store.open(self.path) if self.read_only else audit.Store(self.path))
        return opened

    def forget(self) -> None:
        """Close this thread's store (after a database error: the next page opens it afresh)."""
        opened = getattr(self._local, "store", None)
        self._local.store = None
        if opened is not None:
            try:
                opened.close()
            except backend.DatabaseError:
                pass

    def _fresh(self) -> None:
        """Forget what was cached if the database (or its journal) changed since."""
        opened = self.store()
        signature, now = opened.backend.change_signature(opened.connection), time.monotonic()
        if opened.backend.changed(self._signature, signature, now - self._since):
            self._signature, self._verified, self._since = signature, None, now
            self._reports.clear()

    def report(self, seq: int) -> dict:
        with self._lock:
            self._fresh()
            if seq in self._reports:
                self._reports.move_to_end(seq)
                return self._reports[seq]
        try:  # what the reviewers decided: figures from the final findings (engine.run.final)
            found = final.final_report(self.store(), seq, self.key, strict=False).content
        except InputError as error:
            found = self.store().report(seq)
            found["final_unavailable"] = "; ".join(d.message for d in error.diagnostics[:2])
            found.setdefault("review", {"decisions": [], "history": [], "open": [], "signoffs": [], "warnings": []})
        with self._lock:
            self._reports[seq] = found
            while len(self._reports) > 8:
                self._reports.popitem(last=False)
        return found

    def seq(self, run: int) -> int:
        """The seq of run number ``run``, or NotFound."""
        try:
            found = self.store().find(str(run))
        except InputError as error:
            raise NotFound(error.diagnostics[0].message) from None
        if found != run:  # find also takes run-id prefixes; a URL names the run by its number only
            raise NotFound(f"no run {run} in the store")
        return found

    def verification(self, wait: bool = True) -> dict | None:
        """``{"problems": [...], "bad": {seq: [problem, ...]}}`` from the store's own verify.

        Verify reads every stored byte (about a second for a 1,000-case run), so a page that
        only shows a run's status asks without waiting: it gets None while a verify runs in the
        background, and the result once it is known."""
        with self._lock:
            self._fresh()
            if self._verified is not None:
                return self._verified
            if not wait:
                if self._verifying is None or not self._verifying.is_alive():
                    self._verifying = threading.Thread(target=self._verify, name="qi-verify", daemon=True)
                    self._verifying.start()
                return None
        return self._verify()

    def _verify(self) -> dict:
        with self._lock:
            signature = self._signature
        problems: list[str] = []
        bad: dict[int, list[str]] = {}
        try:
            store = self.store()
            with store.snapshot():
                found_all = store.verify(key=self.key) + review.verify(store, self.key)  # as qi runs verify
        except (*backend.DatabaseError, InputError) as error:  # the server went away: said so, and not kept
            self.forget()
            why = error.diagnostics[0].message if isinstance(error, InputError) else backend.first_line(error)
            text = f"store_unavailable: the audit store cannot be read: {why}"
            return {"problems": [text], "bad": {0: [text]}}
        for found in found_all:
            text = f"{found.diagnostic.code}: {found.diagnostic.message}"
            problems.append(text)
            bad.setdefault(found.seq if found.seq is not None else 0, []).append(text)
        verified = {"problems": problems, "bad": bad}
        with self._lock:
            if self._signature == signature:  # the store did not change while it was read
                self._verified = verified
        return verified

    def case(self, seq: int, reference: str) -> dict:
        try:
            return self.store().case_result(seq, reference)
        except InputError as error:
            raise NotFound(error.diagnostics[0].message) from None


def verify_status(verification: dict | None, seq: int) -> str:
    """``verified``, or ``changed`` when the store's verify names this run (or cannot say which),
    or ``checking`` while the verify is still running."""
    if verification is None:
        return "checking"
    if seq in verification["bad"] or 0 in verification["bad"]:
        return "changed"
    return "verified"


def runs_list(reader: Reader) -> dict:
    """Every run, newest first, with its verify status and review state (sign-offs, decisions)."""
    verification = reader.verification()
    store = reader.store()
    runs = [{"summary": row, "verify": verify_status(verification, row.seq),
             "signoffs": review.signoffs(store, row.seq), "decisions": len(review.decisions_for_run(store, row.seq))}
            for row in reversed(store.runs())]
    return {"runs": runs, "problems": verification["problems"]}


def plain(key: str) -> str:
    """A group key as a heading where the report gives no label (``provider:EAST`` → ``EAST``)."""
    return "all cases" if key == ALL else key.split(":", 1)[-1]


def groups_of(report: dict) -> list[str]:
    """The groups every headline figure is given for: all cases, then each provider."""
    return [ALL] + [f"provider:{p}" for p in report["sample"]["providers"]]


def criteria_chart(reader: Reader, run: int, standard: str | None = None) -> str | None:
    """The SVG of the run's criteria chart, or of one standard's lines (the report's own), None
    when nothing has a figure or the run has no such case-scoped standard."""
    report = reader.report(reader.seq(run))
    labels = report.get("labels", {})
    label = lambda key: labels.get(key) or plain(key)  # noqa: E731
    if standard is None:
        drawn = draft.criteria_chart(report, groups_of(report), label)
    else:
        found = next((s for s in report["standards"] if s["id"] == standard), None)
        drawn = None if found is None else draft.lines_chart(report, found, groups_of(report), label)
    return None if drawn is None else charts.svg(drawn)


def run_page(reader: Reader, run: int, page: int) -> dict:
    """A run: its record, the headline per standard and provider, every criterion per provider
    with gaps, recommendations, consistency (when the report has it) and one page of its cases."""
    seq = reader.seq(run)
    report = reader.report(seq)
    groups = groups_of(report)
    labels = report.get("labels", {})
    label = lambda key: labels.get(key) or plain(key)  # noqa: E731
    bands, shown = rated.bands(report), rated.cells(report)
    targets = report["aggregates"]["targets"]
    confidence = report["aggregates"].get("confidence", 0.95)

    def figures(target_id: str) -> list[dict]:
        target = targets.get(target_id, {"groups": {}})
        return [{"group": g, "text": draft.figure(target["groups"].get(g), confidence),
                 "small": (target["groups"].get(g) or {}).get("small", False),
                 "band": rated.cell(bands, target_id, g), "rating": rated.cell(shown, target_id, g)}
                for g in groups]

    standards = []
    for standard in report["standards"]:
        entry = {"id": standard["id"], "title": standard["title"], "scope": standard["scope"], "criteria": []}
        if standard["scope"] == "case":
            entry["figures"] = figures(f"standard {standard['id']}")
            for criterion in standard["criteria"]:
                target = targets.get(criterion["id"], {})
                gaps = draft.gap_lines(target, label) if target else []  # the report's own wording
                lines = [{"id": line["id"], "figures": [draft.line_figure(line["groups"].get(g), confidence)
                                                        for g in groups]}
                         for line in report["aggregates"].get("lines", {}).values()
                         if line["criterion"] == criterion["id"]]
                entry["chart"] = draft.lines_chart(report, standard, groups, label)
                entry["criteria"].append({"id": criterion["id"], "title": criterion["title"],
                                          "figures": figures(criterion["id"]), "gaps": gaps, "lines": lines})
        standards.append(entry)
    organisations = {o["organisation"]: o for o in report.get("organisations", [])}
    criteria = [c["id"] for s in report["standards"] if s["scope"] == "case" for c in s["criteria"]]
    return {"seq": seq, "r": report, "groups": groups, "label": label, "standards": standards,
            "gaps_flagged": any(c["gaps"] for s in standards for c in s["criteria"]), "organisations": organisations,
            "criteria": criteria, "cases": Page.of(report["cases"], page),
            "verify": verify_status(reader.verification(wait=False), seq), "rating_method": rated.method(report),
            "chart": draft.criteria_chart(report, groups, label)}


def evidence_seen(node) -> list[dict]:
    """The inspector's answers and notes a result's traces rest on, once each, by item."""
    found: dict[str, dict] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            for entry in current.get("evidence", []) if isinstance(current.get("evidence"), list) else []:
                if isinstance(entry, dict) and "item" in entry:
                    found.setdefault(entry["item"], entry)
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return [found[item] for item in sorted(found, key=_item_order)]


def _item_order(item: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"[.]", item)]


def case_page(reader: Reader, run: int, reference: str) -> dict:
    """One case of a run: findings per criterion with their traces, enablers and barriers, the
    inspector's notes, and whatever people recorded on it that the result carries."""
    seq = reader.seq(run)
    result = reader.case(seq, reference)
    report = reader.report(seq)
    titles = {c["id"]: c["title"] for s in report["standards"] for c in s["criteria"]}
    history = [d for d in review.decisions_for_run(reader.store(), seq, history=True) if d.case == reference]
    latest = {d.criterion: d for d in history}
    return {"seq": seq, "r": report, "case": result, "titles": titles, "notes": evidence_seen(result["findings"]),
            "judgements": {row["criterion"]: row for row in result.get("judgements", [])},
            "history": history, "latest": latest,
            "verify": verify_status(reader.verification(wait=False), seq)}


def review_queue(reader: Reader, run: int) -> dict:
    """A run's review queue: what is open (engine–inspector disagreements without a decision, and
    challenges), every decision with its history, and the sign-offs."""
    seq = reader.seq(run)
    store = reader.store()
    report = reader.report(seq)
    return {"seq": seq, "r": report, "open": review.open_items(store, seq),
            "moderation": report.get("consistency", {}).get("moderation", []),
            "decisions": review.decisions_for_run(store, seq), "history": review.decisions_for_run(store, seq, True),
            "signoffs": review.signoffs(store, seq), "verify": verify_status(reader.verification(wait=False), seq)}


def queues(reader: Reader) -> list[dict]:
    """Every run's open items and sign-offs, newest run first: where reviewers have work."""
    store = reader.store()
    return [{"summary": row, "open": review.open_items(store, row.seq), "signoffs": review.signoffs(store, row.seq)}
            for row in reversed(store.runs())]
