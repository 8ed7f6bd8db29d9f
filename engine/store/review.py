"""Review: reviewers' decisions on a run's findings, and sign-off, in the audit store.

People decide; the engine checks. A reviewer records, per finding of a stored run, a decision:

* ``agree`` — the engine's finding stands;
* ``challenge`` — it is questioned and stays open until a later decision settles it;
* ``override`` — the reviewer's ``finding`` replaces the engine's (both are kept and shown).

Challenges and overrides need a reason. Decisions are append-only: a later decision on the same
finding supersedes an earlier one, and the history stays. A run is signed off only when nothing is
open: no engine–inspector disagreement without a decision, and no challenge as the latest
decision on a finding.

Every decision and sign-off is a link of the store's one chain (engine/store/store.py):
``hash = sha256(previous link's hash + the run's hash + the canonical record)`` — HMAC-SHA256 under
the store's key when the store is keyed — where the record holds its id and link number, so a
changed, reordered, inserted or deleted record (or a changed run beneath it) breaks the chain, which
:func:`verify` (run by ``qi runs verify``) recomputes. Writing one into a keyed store needs the key.
As with any hash chain, removing the newest records is visible only against a head kept elsewhere
(``qi runs head``: the newest link of any kind).

Reasons and reviewer names are refused if they hold a control, separator or bidi character, as
case files are; views escape them too.

The public API (used by the CLI and by web forms): :func:`record_decision`,
:func:`decisions_for_run`, :func:`open_items`, :func:`signoff`, :func:`review_state`,
:func:`final_report`, :func:`verify`. Every function takes an open :class:`engine.store.store.Store`
and a run's ``seq`` (from ``Store.find``).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import hmac

from engine.base import text as texts
from engine.base.canonical import canonical
from engine.base.canonical import line as json_line
from engine.base.diagnostics import Diagnostic, InputError, did_you_mean
from engine.report import wording
from engine.report.model import Report
from engine.store import accounts
from engine.store.store import ACCOUNTS, GENESIS, Problem, Store

DECISIONS = ("agree", "challenge", "override")
FINDINGS = ("sufficient", "insufficient", "not_applicable", "not_assessed")
#: Prefix of an organisation's reference in decisions (``organisation:EAST``), as in the report.
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
    #: The role the reviewer's account held, and how they were known (accounts.ACCOUNT or
    #: accounts.OS_USER); None for a decision made before stores had accounts.
    role: str | None = None
    identity: str | None = None


@dataclasses.dataclass(frozen=True)
class SignOff:
    id: int
    seq: int
    reviewer: str
    at: str
    hash: str
    #: The sha256 of the final report signed (see :func:`final_report_sha256`); None for a sign-off
    #: made before sign-offs named it.
    report_sha256: str | None = None
    role: str | None = None
    identity: str | None = None


class OpenItems(InputError):
    """Sign-off refused: findings are still open. ``items`` lists them (``case``, ``criterion``,
    ``why``)."""

    def __init__(self, diagnostics: list[Diagnostic], items: list[dict]) -> None:
        super().__init__(diagnostics)
        self.items = items


def _now(now: datetime.datetime | None) -> str:
    return (now or datetime.datetime.now(datetime.timezone.utc)).replace(microsecond=0).isoformat()


def _problem(store: Store, code: str, message: str, hint: str) -> InputError:
    return InputError([Diagnostic(store.where, 1, 1, code, message, hint)])


def _findings(store: Store, seq: int) -> dict[str, dict[str, str]]:
    """Every finding of the run: reference (case, or organisation:PROVIDER) -> criterion -> value."""
    report = store.report(seq)
    found = {c["case"]: {k: f["value"] for k, f in c["findings"].items()} for c in report["cases"]}
    found.update({ORGANISATION + o["organisation"]: {k: f["value"] for k, f in o["findings"].items()}
                  for o in report.get("organisations", [])})
    return found


def _run_hash(store: Store, seq: int) -> str:
    return store.connection.execute("SELECT hash FROM runs WHERE seq = ?", (seq,)).fetchone()[0]


def _digest(previous: str, run_hash: str, record: dict, key: bytes | None = None) -> str:
    message = previous.encode() + run_hash.encode() + canonical(record)
    return hmac.new(key, message, hashlib.sha256).hexdigest() if key else hashlib.sha256(message).hexdigest()


def _decision_record(seq, case, criterion, decision, finding, reason, reviewer, at, id=None, link=None,
                     role=None, identity=None) -> dict:
    record = {"kind": "decision", "seq": seq, "case": case, "criterion": criterion, "decision": decision,
              "finding": finding, "reason": reason, "reviewer": reviewer, "at": at}
    return record if link is None else {**record, "id": id, "link": link, **_by(role, identity)}


def _signoff_record(seq, reviewer, at, id=None, link=None, report_sha256=None, role=None, identity=None) -> dict:
    record = {"kind": "signoff", "seq": seq, "reviewer": reviewer, "at": at}
    return record if link is None else {**record, "id": id, "link": link, "report_sha256": report_sha256,
                                        **_by(role, identity)}


def _by_columns(store: Store) -> str:
    """The columns saying how a record's maker was known, as a store older than accounts reads them."""
    return "role, identity" if ACCOUNTS in store.applied else "NULL, NULL"


def _by(role, identity) -> dict:
    """How the maker was known, hashed with the record (records made before accounts have neither)."""
    return {} if identity is None else {"role": role, "identity": identity}


def _unsafe(store: Store, values: dict[str, str | None]) -> list[Diagnostic]:
    """A reason or name holding a character that can rewrite a terminal or reorder text; a name
    on more than one line (it could pass for a line of output)."""
    found = []
    for what, value in values.items():
        match = texts.UNSAFE.search(value or "") or (texts.NEWLINES.search(value or "") if "name" in what else None)
        if match:
            found.append(Diagnostic(store.where, 1, 1, "control_character",
                                    f"the {what} holds control character U+{ord(match.group()):04X}",
                                    "write it as plain text; control, separator and bidi characters can rewrite "
                                    "what a terminal or page shows"))
    return found


def _unnamed(store: Store, by: accounts.Actor) -> list[Diagnostic]:
    if by.name.strip() and by.name == by.name.strip():
        return []
    return [Diagnostic(store.where, 1, 1, "missing_reviewer", "who records this is not named (or the name "
                       "has spaces around it)", "log in with an account, or give --as NAME")]


def chain_problems(store: Store, key: bytes | None = None) -> list[Problem]:
    """What is wrong with the chain a record would be appended to, or a report read from: schema
    objects qi did not create, the links, and every decision and sign-off (its hash, under the key
    when the store is keyed and the key is given). Cheap: runs are not rehashed."""
    found = store.chain_problems()
    try:  # records an earlier qi made without the key are reported by verify, but do not stop new work
        found += [p for p in verify(store, key) if p.diagnostic.code not in ("key_required", "unkeyed_record")]
    except InputError as error:
        found += [Problem(None, d) for d in error.diagnostics]
    return found


def refuse_broken_chain(store: Store, key: bytes | None, doing: str) -> None:
    """Raise InputError (``chain_broken``, then the problems) when the chain does not check out:
    nothing is written onto, or published from, a chain with a forged or damaged record."""
    found = chain_problems(store, key)
    if found:
        raise InputError([Diagnostic(store.where, 1, 1, "chain_broken",
                                     f"the store's chain does not check out, so {doing}",
                                     "qi runs verify lists what is wrong; restore the store from a backup")]
                         + [p.diagnostic for p in found[:9]])


def _append(store: Store, db, table: str, seq: int, columns: dict, record_of, key: bytes | None):
    """Write one review record as the next link of the chain, and read it back: returns the row as
    stored (id, link, previous hash, hash). Raises InputError when the store's key does not fit,
    the chain it would join does not check out, or the row does not read back as written."""
    store.check_key(key)
    refuse_broken_chain(store, key, "nothing was recorded")
    row_id = store.next_id(table)
    link, previous = store.next_link()
    record = record_of(row_id, link)
    digest = _digest(previous, _run_hash(store, seq), record, key)
    names = ["id", "seq", *columns, "link", "previous_hash", "hash"]
    values = [row_id, seq, *columns.values(), link, previous, digest]
    db.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", values)
    store.backend.note_numbered(db, table, row_id)
    stored = db.execute(f"SELECT {', '.join(names)} FROM {table} WHERE id = ?", (row_id,)).fetchone()
    if stored is None or list(stored) != values:
        raise store.not_as_written(f"the {'decision' if table == 'decisions' else 'sign-off'}")
    return row_id, digest


def record_decision(store: Store, seq: int, case: str, criterion: str, decision: str, by: accounts.Actor,
                    reason: str | None = None, finding: str | None = None,
                    now: datetime.datetime | None = None, key: bytes | None = None) -> Decision:
    """Record ``by``'s decision on one finding of run ``seq``; returns it. ``by`` is an account the
    caller authenticated (:func:`engine.store.accounts.authenticate`), or the operating-system user
    of a store without accounts; its role must allow deciding (checked inside the write).

    ``case`` is a case reference, or ``organisation:PROVIDER`` for an organisation's finding.
    ``reason`` is required for ``challenge`` and ``override``; ``finding`` is required for
    ``override`` (and refused otherwise). Raises InputError (codes ``unknown_case``,
    ``unknown_criterion``, ``invalid_decision``, ``missing_reason``, ``missing_finding``,
    ``unexpected_finding``, ``control_character``, ``not_permitted``, ``account_required``,
    ``account_changed``, ``store_key``, ``foreign_schema``, ``store_tampered``) with nothing recorded. ``key`` is the store's key, needed
    exactly when the store is keyed."""
    findings = _findings(store, seq)
    problems = []
    where = store.where
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
    if decision == "override" and finding not in FINDINGS[:3]:
        problems.append(Diagnostic(where, 1, 1, "missing_finding", "an override needs the finding that replaces "
                                   "the engine's", "give --finding " + " | ".join(FINDINGS[:3])))
    if decision != "override" and finding is not None:
        problems.append(Diagnostic(where, 1, 1, "unexpected_finding", f"a finding is given only with an override, "
                                   f"not with {decision!r}", "use --decision override, or drop --finding"))
    problems += _unnamed(store, by) + _unsafe(store, {"reason": reason, "reviewer's name": by.name})
    if problems:
        raise InputError(problems)
    at, reviewer = _now(now), by.name
    columns = {"case_ref": case, "criterion": criterion, "decision": decision, "finding": finding, "reason": reason,
               "reviewer": reviewer, "created_at": at, "role": by.role, "identity": by.via}
    with store._write() as db:
        accounts.authorise(store, by, "decide")
        row_id, digest = _append(store, db, "decisions", seq, columns, lambda i, link: _decision_record(
            seq, case, criterion, decision, finding, reason, reviewer, at, i, link, by.role, by.via), key)
    return Decision(row_id, seq, case, criterion, decision, finding, reason, reviewer, at, digest, by.role, by.via)


def decisions_for_run(store: Store, seq: int, history: bool = False) -> list[Decision]:
    """The run's decisions: the latest on each finding (later supersedes earlier), or with
    ``history`` every decision ever recorded, oldest first."""
    by = _by_columns(store)
    rows = store.connection.execute(
        "SELECT id, seq, case_ref, criterion, decision, finding, reason, reviewer, created_at, hash, " + by +
        " FROM decisions WHERE seq = ? ORDER BY id", (seq,)).fetchall()
    every = [Decision(*row) for row in rows]
    for d in every:
        if _decision_problems(d.seq, d.case, d.criterion, d.decision, d.finding, d.reason, d.reviewer, d.at) or \
                not isinstance(d.hash, str):
            raise _problem(store, "store_damaged", f"decision {d.id} of run {seq} holds values qi never writes",
                           "qi runs verify lists what is wrong; restore the store from a backup")
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
                          "why": f"challenged by {wording.maker(dataclasses.asdict(decision))}: no later decision"})
    return sorted(items, key=lambda i: (i["case"], i["criterion"]))


def signoffs(store: Store, seq: int) -> list[SignOff]:
    report_sha256 = "report_sha256" if store.linked else "NULL"
    by = _by_columns(store)
    rows = store.connection.execute(f"SELECT id, seq, reviewer, created_at, hash, {report_sha256}, {by} FROM signoffs"
                                    " WHERE seq = ? ORDER BY id", (seq,)).fetchall()
    found = [SignOff(*row) for row in rows]
    for signed in found:
        if _text_problems({"reviewer's name": signed.reviewer, "time": signed.at}) or not isinstance(signed.hash, str):
            raise _problem(store, "store_damaged", f"sign-off {signed.id} of run {seq} holds values qi never writes",
                           "qi runs verify lists what is wrong; restore the store from a backup")
    return found


def signoff(store: Store, seq: int, by: accounts.Actor, now: datetime.datetime | None = None,
            key: bytes | None = None, signs=None) -> SignOff:
    """Record ``by``'s sign-off of run ``seq``, naming the sha256 of the final report it signs:
    ``signs()``, called inside the write (engine.run.final.signoff gives the final report with its
    figures recomputed); by default the stored report with its review state. Raises
    :class:`OpenItems` (code ``open_items``, one diagnostic per open finding) while anything is
    open, and InputError ``not_independent`` when the run's rule set asks for an independent
    sign-off and ``by``'s own decision stands on a finding; recording nothing. ``by`` and ``key`` as for
    :func:`record_decision`."""
    problems = _unnamed(store, by) + _unsafe(store, {"reviewer's name": by.name})
    if problems:
        raise InputError(problems)
    at, reviewer = _now(now), by.name
    with store._write() as db:  # checked inside the write, so no decision can slip in between
        accounts.authorise(store, by, "signoff")
        _refuse_not_independent(store, seq, by)
        items = open_items(store, seq)
        if items:
            raise OpenItems([Diagnostic(store.where, 1, 1, "open_items",
                                        f"run {seq}: {i['case']} {i['criterion']} is open ({i['why']})",
                                        "record a decision with qi review, then sign off") for i in items], items)
        signed = signs() if signs is not None else final_report_sha256(final_report(store, seq).content)
        columns = {"reviewer": reviewer, "created_at": at, "report_sha256": signed, "role": by.role,
                   "identity": by.via}
        row_id, digest = _append(store, db, "signoffs", seq, columns, lambda i, link: _signoff_record(
            seq, reviewer, at, i, link, signed, by.role, by.via), key)
    return SignOff(row_id, seq, reviewer, at, digest, signed, by.role, by.via)


def independent_signoff(store: Store, seq: int) -> bool:
    """Whether the run's rule set asks that nobody signs off a run in which a finding stands as
    they alone decided it (``review: {independent_signoff: true}``, recorded in the run's report)."""
    policy = store.report(seq)["ruleset"].get("review")
    return isinstance(policy, dict) and policy.get("independent_signoff") is True


def _refuse_not_independent(store: Store, seq: int, by: accounts.Actor) -> None:
    """Under an independent sign-off, refuse an account whose decision is the one that stands (the
    latest) on any finding of the run: what they decided alone — whoever decided before them — is
    not signed off by them. An operating-system user of a store without accounts is one person
    working alone: the policy cannot apply, and the sign-off says how its maker was known."""
    if by.via != accounts.ACCOUNT or not independent_signoff(store, seq):
        return
    alone = sorted((d.case, d.criterion) for d in decisions_for_run(store, seq) if d.reviewer == by.name)
    if alone:
        shown = ", ".join(f"{texts.printable(case)} {texts.printable(criterion)}" for case, criterion in alone[:5])
        raise InputError([Diagnostic(store.where, 1, 1, "not_independent",
                                     f"run {seq}'s rule set asks for an independent sign-off, and {by.name}'s own "
                                     f"decision stands on {len(alone)} finding{'s' * (len(alone) != 1)} ({shown}"
                                     f"{', …' if len(alone) > 5 else ''})",
                                     "another reviewer decides those findings after them, or another QA lead "
                                     "signs off")])


def final_report_sha256(content: dict) -> str:
    """The sha256 a sign-off records of the final report: the canonical JSON of the report as
    ``qi report`` renders it from the store, without what signing itself changes (the sign-offs
    and the store's head)."""
    signed = {key: value for key, value in content.items() if key != "store"}
    if isinstance(signed.get("review"), dict):
        signed["review"] = {k: v for k, v in signed["review"].items() if k not in ("signoffs", "signed")}
    return hashlib.sha256(canonical(signed)).hexdigest()


def review_state(store: Store, seq: int) -> dict:
    """The ``review`` key of a report re-rendered from the store (documented in docs/report.md)."""
    findings = _findings(store, seq)

    def entry(d: Decision) -> dict:
        engine = findings.get(d.case, {}).get(d.criterion)
        if engine is None:
            raise _problem(store, "unknown_finding", f"decision {d.id} is on {texts.printable(d.case)} "
                           f"{texts.printable(d.criterion)}, which run {seq} does not have",
                           "the store was changed: qi runs verify lists what is wrong")
        return {"case": d.case, "criterion": d.criterion, "decision": d.decision, "finding": d.finding,
                "engine": engine, "final": d.finding if d.decision == "override" else engine,
                "reason": d.reason, "reviewer": d.reviewer, "role": d.role, "identity": d.identity, "at": d.at,
                "seq": d.id}

    return {"decisions": [entry(d) for d in decisions_for_run(store, seq)],
            "history": [entry(d) for d in decisions_for_run(store, seq, history=True)],
            "open": open_items(store, seq),
            "signoffs": [{"reviewer": s.reviewer, "role": s.role, "identity": s.identity, "at": s.at,
                          "report_sha256": s.report_sha256}
                         for s in signoffs(store, seq)]}


class StoredSpool:
    def __init__(self, store: Store, seq: int, final: dict[tuple[str, str], dict]) -> None:
        self._store, self._seq, self._final = store, seq, final
        self.count = store.connection.execute("SELECT count(*) FROM case_results WHERE seq = ?", (seq,)).fetchone()[0]

    def results(self):
        for (case_ref,) in self._store.connection.execute(
                "SELECT case_ref FROM case_results WHERE seq = ? ORDER BY " + self._store.backend.stored_order,
                (self._seq,)).fetchall():
            result = self._store.case_result(self._seq, case_ref)
            _mark(result["case"], result["findings"], self._final)
            yield result

    def lines(self):
        """Each case's line as stored, its decided findings marked (canonical JSON)."""
        for (case_ref,) in self._store.connection.execute(
                "SELECT case_ref FROM case_results WHERE seq = ? ORDER BY " + self._store.backend.stored_order,
                (self._seq,)).fetchall():
            line = self._store.case_line(self._seq, case_ref)
            _mark(line["case"], line["findings"], self._final)
            yield json_line(line)


def _mark(reference: str, findings: dict, final: dict) -> None:
    """Each decided finding as decided: ``final`` and ``review`` beside it, and where the decision
    changed it, ``value`` is the final finding and ``engine`` the engine's — so every view of a
    reviewed run states what people decided."""
    for criterion, finding in findings.items():
        decided = final.get((reference, criterion))
        if decided is not None:
            finding["final"] = decided["final"]
            finding["review"] = {k: decided[k] for k in ("decision", "finding", "reason", "reviewer", "at")}
            if decided["final"] != finding["value"]:
                finding["engine"], finding["value"] = finding["value"], decided["final"]


def final_report(store: Store, seq: int) -> Report:
    """The stored report with the review state: each finding with a decision carries ``final``
    (the override where one exists, else the engine's value) and ``review``; an overridden one
    has the override as ``value`` and the engine's finding as ``engine``. The report gains
    ``review``."""
    report = store.report(seq)
    state = review_state(store, seq)
    final = {(d["case"], d["criterion"]): d for d in state["decisions"]}
    for case in report["cases"]:
        _mark(case["case"], case["findings"], final)
    for organisation in report.get("organisations", []):
        _mark(ORGANISATION + organisation["organisation"], organisation["findings"], final)
    report["review"] = state
    return Report(report, StoredSpool(store, seq, final))  # the report model, its cases read from the store


def verify(store: Store, key: bytes | None = None) -> list[Problem]:
    """Check every decision and sign-off: its hash (under the store's key when keyed), that it
    names a finding its run has, and that its values are ones qi writes. Their place in the chain
    is checked by ``Store.verify``; records made before links existed are checked against the
    chain they were made in. The problems, in the order recorded."""
    db, linked = store.connection, store.linked
    keyed = store.keyed()
    runs = {seq: run_hash for seq, run_hash in db.execute("SELECT seq, hash FROM runs")}
    link, report_sha256 = ("link", "report_sha256") if linked else ("NULL", "NULL")
    by = _by_columns(store)
    records = []
    for row in db.execute(f"SELECT id, seq, case_ref, criterion, decision, finding, reason, reviewer, created_at,"
                          f" previous_hash, hash, {link}, {by} FROM decisions ORDER BY id"):
        name = f"decision {row[0]} (run {row[1]}, {texts.printable(str(row[2]))} {texts.printable(str(row[3]))})"
        records.append((name, row[1], row[11], row[9], row[10],
                        _decision_record(*row[1:9], row[0], row[11], row[12], row[13]),
                        _decision_problems(*row[1:9]) + _by_problems(row[11], row[12], row[13])))
    for row in db.execute(f"SELECT id, seq, reviewer, created_at, previous_hash, hash, {link}, {report_sha256}, {by}"
                          " FROM signoffs ORDER BY id"):
        name = f"sign-off {row[0]} (run {row[1]}, {texts.printable(str(row[2]))})"
        records.append((name, row[1], row[6], row[4], row[5],
                        _signoff_record(*row[1:4], row[0], row[6], row[7], row[8], row[9]),
                        _signoff_problems(row[2], row[6], row[7]) + _by_problems(row[6], row[8], row[9])))
    problems: list[Problem] = []

    def problem(seq, code: str, message: str, hint: str = "") -> None:
        problems.append(Problem(seq, Diagnostic(store.where, 1, 1, code, message, hint)))

    if keyed and key is None and any(r[2] is not None for r in records):
        problem(None, "key_required", "decisions and sign-offs of a keyed store can be checked only with its key",
                "give the key with --key-file or $QI_STORE_KEY_FILE")
    legacy_hashes = {r[4] for r in records if r[2] is None} | {GENESIS}
    followers: dict[str, int] = {}
    findings: dict[int, dict] = {}
    for name, seq, record_link, previous, stored, record, invalid in records:
        if seq not in runs:
            continue  # reported by Store.verify (orphan_rows)
        if not (isinstance(previous, str) and isinstance(stored, str)):
            problem(seq, "invalid_record", f"{name}: its hashes are not text", "qi never writes such a record")
            continue
        for message in invalid:
            problem(seq, "invalid_record", f"{name}: {message}", "qi never writes such a record: it was inserted "
                    "or edited in the database")
        if record["kind"] == "decision":
            if seq not in findings:
                try:
                    findings[seq] = _findings(store, seq)
                except InputError:  # a damaged report: Store.verify reports it
                    findings[seq] = None
            if findings[seq] is not None and record["criterion"] not in findings[seq].get(record["case"], {}):
                problem(seq, "unknown_finding", f"{name}: run {seq} has no such finding",
                        "a decision was inserted in the database on a finding the run does not have")
        if record_link is None:  # made before links: the review records' own chain, plain sha256
            if keyed:
                problem(seq, "unkeyed_record", f"{name}: it was recorded without the key (by an earlier qi), so "
                        "it cannot be told from one inserted by someone without the key",
                        "check it against the reviewers' own records")
            if _digest(previous, runs[seq], record) != stored:
                problem(seq, "review_mismatch", f"{name}: its stored content no longer matches its hash")
            if previous not in legacy_hashes:
                problem(seq, "review_mismatch", f"{name}: the record before it is missing")
            followers[previous] = followers.get(previous, 0) + 1
        elif not keyed or key is not None:
            if _digest(previous, runs[seq], record, key if keyed else None) != stored:
                problem(seq, "review_mismatch", f"{name}: its stored content no longer matches its hash",
                        "it was changed, or written without the store's key" if keyed else
                        "it was changed after it was recorded")
    for previous, count in followers.items():
        if count > 1:
            problem(None, "review_mismatch", f"review chain: {count} records follow the same record")
    accounted = None  # once a record was made by an account, the store had accounts for good
    for name, seq, record_link, _, _, record, _ in sorted((r for r in records if isinstance(r[2], int)),
                                                          key=lambda r: r[2]):  # a link not a number: see links
        if record.get("identity") == accounts.ACCOUNT and accounted is None:
            accounted = name
        elif record.get("identity") == accounts.OS_USER and accounted is not None:
            problem(seq, "accounts_removed", f"{name} was recorded by an operating-system user, after {accounted} "
                    "was recorded by an account", "qi never removes accounts: the accounts were deleted in the "
                    "database, and what was recorded since is nobody's")
    return problems


def _decision_problems(seq, case, criterion, decision, finding, reason, reviewer, at) -> list[str]:
    """What is wrong with a stored decision's values (qi writes none of these)."""
    found = [f"its {what} is not text" for what, value in (("case", case), ("criterion", criterion),
                                                          ("decision", decision), ("time", at))
             if not isinstance(value, str)]
    if found:
        return found
    if decision not in DECISIONS:
        found.append(f"{texts.printable(str(decision))!r} is not a decision")
    elif decision == "override" and finding not in FINDINGS[:3]:
        found.append("an override without a finding that can replace the engine's")
    elif decision != "override" and finding is not None:
        found.append(f"a finding on a {decision}")
    if decision in ("challenge", "override") and not (reason or "").strip():
        found.append(f"a {decision} without a reason")
    found += _text_problems({"reviewer's name": reviewer, "reason": reason})
    return found


def _by_problems(link, role, identity) -> list[str]:
    """How a record's maker was known, as qi writes it: an account with one of the roles, or an
    operating-system user with none (records made before accounts, or before links, have neither)."""
    if identity is None:
        return [] if role is None else ["a role without saying how its maker was known"]
    if link is None:
        return ["it says how its maker was known, but has no link"]
    if identity == accounts.ACCOUNT:
        return [] if role in accounts.ROLES else [f"its maker's role {texts.printable(str(role))!r} is not a role"]
    if identity == accounts.OS_USER:
        return [] if role is None else ["an operating-system user with a role"]
    return [f"{texts.printable(str(identity))!r} is not a way its maker could be known"]


def _signoff_problems(reviewer, link, report_sha256) -> list[str]:
    found = _text_problems({"reviewer's name": reviewer})
    if link is not None and not (isinstance(report_sha256, str) and len(report_sha256) == 64):
        found.append("it names no final report")
    return found


def _text_problems(values: dict) -> list[str]:
    found = []
    for what, value in values.items():
        if value is not None and not isinstance(value, str):
            found.append(f"the {what} is not text")
        elif what == "reviewer's name" and not (value or "").strip():
            found.append("no reviewer is named")
        elif value and (texts.UNSAFE.search(value) or ("name" in what and texts.NEWLINES.search(value))):
            found.append(f"the {what} holds a control character")
    return found
