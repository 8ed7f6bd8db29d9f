"""Final figures: a stored run's report as its reviewers decided it.

People decide; qi records. After review, what is published is built from the *final* findings — a
reviewer's override where there is one, else the engine's finding — not from the engine's alone:
every aggregate, gap, rating, recommendation, sample-level enabler and barrier, and practice
example is computed again from the final findings, by the same aggregation and the same sample
rules the run used (its rule set, read again and checked against the sha256 the run recorded).

The engine's own figures stay in the report under ``engine``, and ``review.changes`` says what
review moved: each figure whose counts changed, with the decisions that changed it, and each
rating or recommendation gained or lost. A finding a reviewer overrode is not quoted as a practice
example (the engine's reasoning behind it supports the engine's value, not the final one).

A sign-off records the sha256 of this final report (:func:`signoff`); the report re-rendered later
says whether it is still the report that was signed.
"""

from __future__ import annotations

from engine.aggregate import aggregate
from engine.aggregate import labels as group_labels
from engine.base.diagnostics import Diagnostic, InputError
from engine.compile import compile as compiler
from engine.report import draft
from engine.report.model import Report
from engine.run import pipeline, run
from engine.store import accounts, review
from engine.store.store import Store

#: The parts of a report computed from findings, recomputed from the final ones.
FIGURES = ("aggregates", "labels", "sample_judgement", "examples")


#: What a store qi did not write can make reading it raise: each is a damaged store, never a crash.
DAMAGE = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def final_report(store: Store, seq: int, key: bytes | None = None, strict: bool = True) -> Report:
    """The stored run with its review state and, where a decision changed a finding, every figure
    computed from the final findings (the engine's kept under ``engine``).

    ``strict`` (publishing, signing, exporting): raises InputError when the store's chain does not
    check out (decisions and sign-offs under ``key`` when the store is keyed), or when figures must
    be recomputed and the run's rule set cannot be read or has changed. Not ``strict`` (viewing:
    ``qi runs show``, the workspace): the report is still given, saying in ``review.warnings``
    what could not be checked or computed, with the engine's figures where final ones cannot be."""
    try:
        return _final_report(store, seq, key, strict)
    except DAMAGE as error:
        raise InputError([Diagnostic(store.where, 1, 1, "store_damaged",
                                     f"run {seq} cannot be read as qi wrote it ({type(error).__name__}: {error})",
                                     "qi runs verify lists what changed; restore the store from a backup")]) from None


def _final_report(store: Store, seq: int, key: bytes | None, strict: bool) -> Report:
    warnings = []
    if strict:
        review.refuse_broken_chain(store, key, "no final report is made from it")
    else:
        warnings += [f"{p.diagnostic.code}: {p.diagnostic.message}" for p in review.chain_problems(store, key)]
    if key is None and store.keyed():
        warnings.append("the store is keyed and no key was given: decisions and sign-offs were checked for their "
                        "order and values, not against the key")
    reviewed = review.final_report(store, seq)
    content = reviewed.content
    changed = _changed_findings(content)
    content["review"]["changes"] = {"findings": changed, "figures": [], "ratings": [], "recommendations": []}
    content["review"]["warnings"] = warnings
    if any(not c["case"].startswith(review.ORGANISATION) for c in changed):  # organisations' own findings pool into no figure
        try:
            final = _figures(content, reviewed, pipeline.stored_rules(content["ruleset"], store.where))
        except InputError as error:
            if strict:
                raise
            warnings.append("these are the engine's figures: the figures from the final findings cannot be computed ("
                            + "; ".join(d.message for d in error.diagnostics[:2]) + ")")
        else:
            engine = {key: content[key] for key in FIGURES}
            content.update(final)
            content["engine"] = engine
            standard_of = {c["id"]: standard["id"] for standard in content["standards"] for c in standard["criteria"]}
            content["review"]["changes"].update(_moved(engine, final, changed, standard_of, content["cases"]))
    signed = content["review"]["signoffs"]
    if signed:
        latest, now = signed[-1], review.final_report_sha256(content)
        content["review"]["signed"] = {"reviewer": latest["reviewer"], "role": latest.get("role"),
                                       "identity": latest.get("identity"), "at": latest["at"],
                                       "report_sha256": latest["report_sha256"], "final_report_sha256": now,
                                       "unchanged": latest["report_sha256"] == now}
    return Report(content, reviewed.spool)


def signoff(store: Store, seq: int, by: accounts.Actor, key: bytes | None = None, now=None) -> review.SignOff:
    """Sign run ``seq`` off, naming the sha256 of its final report (computed inside the sign-off's
    transaction, so no decision slips in between)."""
    return review.signoff(store, seq, by, now=now, key=key,
                          signs=lambda: review.final_report_sha256(final_report(store, seq, key).content))


def _changed_findings(content: dict) -> list[dict]:
    """Each finding whose final value differs from the engine's, with the decision behind it."""
    return [{"case": d["case"], "criterion": d["criterion"], "engine": d["engine"], "final": d["final"],
             "decision": d["seq"], "reviewer": d["reviewer"], "role": d.get("role"), "identity": d.get("identity")}
            for d in content["review"]["decisions"] if d["final"] != d["engine"]]


def _figures(content: dict, reviewed: Report, compiled: compiler.CompiledRuleSet) -> dict:
    loaded = compiled.loaded
    framework = loaded.framework
    records = []
    for case in content["cases"]:
        if "groups" not in case:
            raise InputError([Diagnostic(content["ruleset"]["file"], 1, 1, "run_too_old",
                                         f"run {content['store']['seq']} was recorded before runs kept each case's "
                                         "groups, so its figures cannot be computed from the final findings",
                                         "run the sample again, and review the new run")])
        factors = {("barrier", b["id"]) for b in case["barriers"]} | {("enabler", e["id"]) for e in case["enablers"]}
        records.append(aggregate.CaseRecord(case["case"], case["groups"],
                                            {c: f["value"] for c, f in case["findings"].items()}, frozenset(factors),
                                            frozenset(case.get("matched", []))))
    aggregates = aggregate.build(records, loaded)
    # the inspectors' answers are not what a review decides: line figures stay the engine run's
    aggregates["lines"] = content.get("aggregates", {}).get("lines", aggregates["lines"])
    aggregates["sources"] = content.get("aggregates", {}).get("sources", aggregates["sources"])
    slots = 2 * len(framework.vocabulary.providers) * len(aggregates["targets"])
    return {"aggregates": aggregates, "labels": group_labels.labels(framework, aggregates["group_sizes"]),
            "sample_judgement": run.judge_sample(compiler.compile_sample(loaded), aggregates,
                                                 organisations=content.get("organisations", [])),
            "examples": draft.practice_examples(_as_decided(reviewed.spool.results()), draft.example_answers(framework),
                                                slots=slots)}


def _as_decided(results):
    """Case results without the findings a reviewer overrode (they are not quoted as examples)."""
    for result in results:
        kept = {c: f for c, f in result["findings"].items() if "engine" not in f}
        yield {**result, "findings": kept}


def _moved(engine: dict, final: dict, changed: list[dict], standard_of: dict[str, str], cases: list[dict]) -> dict:
    """What review changed: figures whose counts moved (with the decisions behind them: those on
    cases in the group), and ratings and recommendations gained or lost. ``standard_of`` maps each
    criterion to its standard."""
    member_of = {c["case"]: {"all"} | {f"{g}:{v}" for g, v in c.get("groups", {}).items()} for c in cases}
    by_criterion: dict[str, list[dict]] = {}
    for change in changed:
        by_criterion.setdefault(change["criterion"], []).append(change)
    figures = []
    for target_id, before in engine["aggregates"]["targets"].items():
        after = final["aggregates"]["targets"].get(target_id, {})
        for group, figure in before["groups"].items():
            moved = after.get("groups", {}).get(group)
            if moved is None or moved["counts"] == figure["counts"]:
                continue
            within = before.get("standard") if before.get("kind") == "standard" else None
            behind = [c for criterion, cs in by_criterion.items() for c in cs
                      if (criterion == before.get("id", target_id) or (within and standard_of.get(criterion) == within))
                      and group in member_of.get(c["case"], ())]
            figures.append({"target": target_id, "group": group,
                            "engine": {"sufficient": figure["counts"]["sufficient"], "applicable": figure["applicable"],
                                       "percent": figure["percent"]},
                            "final": {"sufficient": moved["counts"]["sufficient"], "applicable": moved["applicable"],
                                      "percent": moved["percent"]},
                            "decisions": sorted({c["decision"] for c in behind})})

    def keyed(entries, key):
        return {key(e): e for e in entries}

    rating = lambda r: (r["target"], r["group"], r["band"])  # noqa: E731
    before_ratings = keyed(engine["sample_judgement"]["ratings"], rating)
    after_ratings = keyed(final["sample_judgement"]["ratings"], rating)
    recommendation = lambda r: (r["id"], tuple(r.get("to", ())))  # noqa: E731
    before_recs = keyed(engine["sample_judgement"]["recommendations"], recommendation)
    after_recs = keyed(final["sample_judgement"]["recommendations"], recommendation)
    return {
        "figures": figures,
        "ratings": [{"target": t, "group": g, "band": b, "change": "gained" if k in after_ratings else "lost"}
                    for k in sorted(set(before_ratings) ^ set(after_ratings)) for (t, g, b) in [k]],
        "recommendations": [{"id": k[0], "to": list(k[1]), "text": (after_recs.get(k) or before_recs[k])["text"],
                             "change": "gained" if k in after_recs else "lost"}
                            for k in sorted(set(before_recs) ^ set(after_recs))],
    }
