"""Review: reviewers' decisions on a run's findings, and sign-off, in the audit store.

People decide; the engine checks. A reviewer records, per finding of a stored run, a decision:

* ``agree`` — the engine's finding stands;
* ``challenge`` — it is questioned and stays open until a later decision settles it;
* ``override`` — the reviewer's ``finding`` replaces the engine's (both are kept and shown).

Challenges and overrides need a reason. Decisions are append-only: a later decision on the same
finding supersedes an earlier one, and the history stays. A run is signed off only when nothing is
open: no engine–inspector disagreement without a decision, and no challenge as the latest
decision on a finding.

Every decision and sign-off is hash-chained: ``hash = sha256(previous review record's hash + the
run's hash + the canonical record)``, so a changed or deleted record (or a changed run beneath it)
breaks the chain, which :func:`verify` (run by ``qi runs verify``) recomputes. As with any hash
chain, removing the newest records is visible only against a head recorded elsewhere.

The public API (used by the CLI and by web forms): :func:`record_decision`,
:func:`decisions_for_run`, :func:`open_items`, :func:`signoff`, :func:`review_state`,
:func:`final_report`, :func:`verify`. Every function takes an open :class:`engine.store.store.Store`
and a run's ``seq`` (from ``Store.find``).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json

from engine.base.canonical import canonical
from engine.base.diagnostics import Diagnostic, InputError, did_you_mean
from engine.report.model import Report
from engine.store.store import GENESIS, Store

DECISIONS = ("agree", "challenge", "override")
FINDINGS = ("sufficient", "insufficient", "not_applicable", "not_assessed")
#: Prefix of an organisation's reference in decisions (``organisation:NPS``), as in the report.
ORGANISATION = "organisation:"

@dataclasses.dataclass(frozen=True)
class Decision:
    """One reviewer's decision on one finding of a run."""

    id: int
    seq: int
    case: str
    criterion: str
    decision: str
    finding: str | None
    reason: str | None
    reviewer: str
    at: str
    hash: str


@dataclasses.dataclass(frozen=True)
class SignOff:
    id: int
    seq: int
    reviewer: str
    at: str
    hash: str


class OpenItems(InputError):
    """Sign-off refused: findings are still open. ``items`` lists them (``case``, ``criterion``,
    ``why``)."""

    def __init__(self, diagnostics: list[Diagnostic], items: list[dict]) -> None:
        super().__init__(diagnostics)
        self.items = items


def _now(now: datetime.datetime | None) -> str:
    return (now or datetime.datetime.now(datetime.timezone.utc)).replace(microsecond=0).isoformat()


def _problem(store: Store, code: str, message: str, hint: str) -> InputError:
    return InputError([Diagnostic(str(store.path), 1, 1, code, message, hint)])


def _findings(store: Store, seq: int) -> dict[str, dict[str, str]]:
    """Every finding of the run: reference (case, or organisation:PROVIDER) -> criterion -> value."""
    report = store.report(seq)
    found = {c["case"]: {k: f["value"] for k, f in c["findings"].items()} for c in report["cases"]}
    found.update({ORGANISATION + o["organisation"]: {k: f["value"] for k, f in o["findings"].items()}
                  for o in report.get("organisations", [])})
    return found


def _run_hash(store: Store, seq: int) -> str:
    return store.connection.execute("SELECT hash FROM runs WHERE seq = ?", (seq,)).fetchone()[0]


def _head(db) -> str:
    """The hash of the newest review record (decision or sign-off), or the genesis hash."""
    rows = db.execute("SELECT hash, created_at, kind, id FROM (SELECT hash, created_at, 'd' AS kind, id FROM decisions"
                      " UNION ALL SELECT hash, created_at, 's', id FROM signoffs)").fetchall()
    chained = {row[0] for row in db.execute("SELECT previous_hash FROM decisions UNION SELECT previous_hash FROM signoffs")}
    tips = [row for row in rows if row[0] not in chained]
    return max(tips, key=lambda r: (r[1], r[2], r[3]))[0] if tips else GENESIS


def _digest(previous: str, run_hash: str, record: dict) -> str:
    return hashlib.sha256(previous.encode() + run_hash.encode() + canonical(record)).hexdigest()


def _decision_record(seq, case, criterion, decision, finding, reason, reviewer, at) -> dict:
    return {"kind": "decision", "seq": seq, "case": case, "criterion": criterion, "decision": decision,
            "finding": finding, "reason": reason, "reviewer": reviewer, "at": at}


def _signoff_record(seq, reviewer, at) -> dict:
    return {"kind": "signoff", "seq": seq, "reviewer": reviewer, "at": at}


def record_decision(store: Store, seq: int, case: str, criterion: str, decision: str, reviewer: str,
                    reason: str | None = None, finding: str | None = None,
                    now: datetime.datetime | None = None) -> Decision:
    """Record a reviewer's decision on one finding of run ``seq``; returns it.

    ``case`` is a case reference, or ``organisation:PROVIDER`` for an organisation's finding.
    ``reason`` is required for ``challenge`` and ``override``; ``finding`` is required for
    ``override`` (and refused otherwise). Raises InputError (codes ``unknown_case``,
    ``unknown_criterion``, ``invalid_decision``, ``missing_reason``, ``missing_finding``,
    ``unexpected_finding``, ``missing_reviewer``) with nothing recorded."""
    findings = _findings(store, seq)
    problems = []
    where = str(store.path)
    reason = (reason or "").strip() or None
    if case not in findings:
        problems.append(Diagnostic(where, 1, 1, "unknown_case", f"run {seq} has no case {case!r}",
                                   did_you_mean(case, sorted(findings), "cases")))
    elif criterion not in findings[case]:
        problems.append(Diagnostic(where, 1, 1, "unknown_criterion", f"case {case} has no finding on {criterion!r}",
                                   did_you_mean(criterion, list(findings[case]), "criteria")))
    if decision not in DECISIONS:
        problems.append(Diagnostic(where, 1, 1, "invalid_decision", f"{decision!r} is not a decision",
                                   did_you_mean(decision, list(DECISIONS))))
    if decision in ("challenge", "override") and reason is None:
        problems.append(Diagnostic(where, 1, 1, "missing_reason", f"{'an' if decision == 'override' else 'a'} {decision} needs a reason",
                                   "say why, with --reason"))
    if decision == "override" and finding not in FINDINGS:
        problems.append(Diagnostic(where, 1, 1, "missing_finding", "an override needs the finding that replaces "
                                   "the engine's", "give --finding " + " | ".join(FINDINGS[:3])))
    if decision != "override" and finding is not None:
        problems.append(Diagnostic(where, 1, 1, "unexpected_finding", f"a finding is given only with an override, "
                                   f"not with {decision!r}", "use --decision override, or drop --finding"))
    if not reviewer.strip():
        problems.append(Diagnostic(where, 1, 1, "missing_reviewer", "the reviewer is not named",
                                   "give --reviewer NAME"))
    if problems:
        raise InputError(problems)
    at = _now(now)
    record = _decision_record(seq, case, criterion, decision, finding, reason, reviewer.strip(), at)
    with store._write() as db:
        previous = _head(db)
        digest = _digest(previous, _run_hash(store, seq), record)
        cursor = db.execute("INSERT INTO decisions (seq, case_ref, criterion, decision, finding, reason, reviewer,"
                            " created_at, previous_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (seq, case, criterion, decision, finding, reason, reviewer.strip(), at, previous, digest))
    return Decision(cursor.lastrowid, seq, case, criterion, decision, finding, reason, reviewer.strip(), at, digest)


def decisions_for_run(store: Store, seq: int, history: bool = False) -> list[Decision]:
    """The run's decisions: the latest on each finding (later supersedes earlier), or with
    ``history`` every decision ever recorded, oldest first."""
    rows = store.connection.execute(
        "SELECT id, seq, case_ref, criterion, decision, finding, reason, reviewer, created_at, hash FROM decisions"
        " WHERE seq = ? ORDER BY id", (seq,)).fetchall()
    every = [Decision(*row) for row in rows]
    if history:
        return every
    latest: dict[tuple[str, str], Decision] = {}
    for decision in every:
        latest[(decision.case, decision.criterion)] = decision
    return sorted(latest.values(), key=lambda d: (d.case, d.criterion))


def open_items(store: Store, seq: int) -> list[dict]:
    """What stops sign-off: each engine–inspector disagreement with no decision, and each finding
    whose latest decision is a challenge. Each ``{case, criterion, why}``."""
    latest = {(d.case, d.criterion): d for d in decisions_for_run(store, seq)}
    items = []
    for row in store.report(seq).get("consistency", {}).get("moderation", []):
        if (row["case"], row["criterion"]) not in latest:
            items.append({"case": row["case"], "criterion": row["criterion"],
                          "why": f"engine {row['engine']}, inspector {row['inspector']}: no decision"})
    for (case, criterion), decision in latest.items():
        if decision.decision == "challenge":
            items.append({"case": case, "criterion": criterion,
                          "why": f"challenged by {decision.reviewer}: no later decision"})
    return sorted(items, key=lambda i: (i["case"], i["criterion"]))


def signoffs(store: Store, seq: int) -> list[SignOff]:
    rows = store.connection.execute("SELECT id, seq, reviewer, created_at, hash FROM signoffs WHERE seq = ?"
                                    " ORDER BY id", (seq,)).fetchall()
    return [SignOff(*row) for row in rows]


def signoff(store: Store, seq: int, reviewer: str, now: datetime.datetime | None = None) -> SignOff:
    """Record a reviewer's sign-off of run ``seq``. Raises :class:`OpenItems` (code ``open_items``,
    one diagnostic per open finding) while anything is open, recording nothing."""
    if not reviewer.strip():
        raise _problem(store, "missing_reviewer", "the reviewer is not named", "give --reviewer NAME")
    at = _now(now)
    record = _signoff_record(seq, reviewer.strip(), at)
    with store._write() as db:  # checked inside the write, so no decision can slip in between
        items = open_items(store, seq)
        if items:
            raise OpenItems([Diagnostic(str(store.path), 1, 1, "open_items",
                                        f"run {seq}: {i['case']} {i['criterion']} is open ({i['why']})",
                                        "record a decision with qi review, then sign off") for i in items], items)
        previous = _head(db)
        digest = _digest(previous, _run_hash(store, seq), record)
        cursor = db.execute("INSERT INTO signoffs (seq, reviewer, created_at, previous_hash, hash)"
                            " VALUES (?, ?, ?, ?, ?)", (seq, reviewer.strip(), at, previous, digest))
    return SignOff(cursor.lastrowid, seq, reviewer.strip(), at, digest)


def review_state(store: Store, seq: int) -> dict:
    """The ``review`` key of a report re-rendered from the store (documented in docs/report.md)."""
    findings = _findings(store, seq)

    def entry(d: Decision) -> dict:
        engine = findings[d.case][d.criterion]
        return {"case": d.case, "criterion": d.criterion, "decision": d.decision, "finding": d.finding,
                "engine": engine, "final": d.finding if d.decision == "override" else engine,
                "reason": d.reason, "reviewer": d.reviewer, "at": d.at, "seq": d.id}

    return {"decisions": [entry(d) for d in decisions_for_run(store, seq)],
            "history": [entry(d) for d in decisions_for_run(store, seq, history=True)],
            "open": open_items(store, seq),
            "signoffs": [{"reviewer": s.reviewer, "at": s.at} for s in signoffs(store, seq)]}


class StoredSpool:
    def __init__(self, store: Store, seq: int, final: dict[tuple[str, str], dict]) -> None:
        self._store, self._seq, self._final = store, seq, final
        self.count = store.connection.execute("SELECT count(*) FROM case_results WHERE seq = ?", (seq,)).fetchone()[0]

    def results(self):
        for (case_ref,) in self._store.connection.execute(
                "SELECT case_ref FROM case_results WHERE seq = ? ORDER BY rowid", (self._seq,)).fetchall():
            result = self._store.case_result(self._seq, case_ref)
            _mark(result["case"], result["findings"], self._final)
            yield result

    def lines(self):
        return ((json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n").encode() for r in self.results())


def _mark(reference: str, findings: dict, final: dict) -> None:
    for criterion, finding in findings.items():
        decided = final.get((reference, criterion))
        if decided is not None:
            finding["final"] = decided["final"]
            finding["review"] = {k: decided[k] for k in ("decision", "finding", "reason", "reviewer", "at")}


def final_report(store: Store, seq: int) -> Report:
    """The stored report with the review state: each finding with a decision carries ``final``
    (the override where one exists, else the engine's value) and ``review``, beside the engine's
    ``value``; the report gains ``review``."""
    report = store.report(seq)
    state = review_state(store, seq)
    final = {(d["case"], d["criterion"]): d for d in state["decisions"]}
    for case in report["cases"]:
        _mark(case["case"], case["findings"], final)
    for organisation in report.get("organisations", []):
        _mark(ORGANISATION + organisation["organisation"], organisation["findings"], final)
    report["review"] = state
    return Report(report, StoredSpool(store, seq, final))  # the report model, its cases read from the store


def verify(store: Store) -> list[str]:
    """Recompute every decision's and sign-off's hash and the chain between them; the problems,
    in the order recorded."""
    db = store.connection
    runs = {seq: run_hash for seq, run_hash in db.execute("SELECT seq, hash FROM runs")}
    records = []
    for row in db.execute("SELECT id, seq, case_ref, criterion, decision, finding, reason, reviewer, created_at,"
                          " previous_hash, hash FROM decisions"):
        records.append((f"decision {row[0]} (run {row[1]}, {row[2]} {row[3]})", row[1],
                        _decision_record(*row[1:9]), row[9], row[10]))
    for row in db.execute("SELECT id, seq, reviewer, created_at, previous_hash, hash FROM signoffs"):
        records.append((f"sign-off {row[0]} (run {row[1]}, {row[2]})", row[1], _signoff_record(*row[1:4]),
                        row[4], row[5]))
    problems = []
    hashes = {r[4] for r in records} | {GENESIS}
    followers: dict[str, int] = {}
    for name, seq, record, previous, stored in records:
        if seq not in runs:
            problems.append(f"{name}: its run is missing")
            continue
        if _digest(previous, runs[seq], record) != stored:
            problems.append(f"{name}: its stored content no longer matches its hash")
        if previous not in hashes:
            problems.append(f"{name}: the record before it is missing")
        followers[previous] = followers.get(previous, 0) + 1
    problems += [f"review chain: {count} records follow the same record" for previous, count in followers.items()
                 if count > 1]
    return problems
