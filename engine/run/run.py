"""The whole-sample run: validate everything, evaluate every case (in parallel if asked) and each
provider's organisation evidence, aggregate, apply the sample rules, and assemble the report.

Nothing is evaluated until every input has validated and every rule set section has compiled:
invalid input gives diagnostics and no partial run. Results do not depend on ``jobs``: cases are
evaluated independently and collected in case-reference order.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import hashlib
import json
import multiprocessing
import os
import secrets
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from engine.aggregate import aggregate, agreement
from engine.base.canonical import canonical_sha256
from engine.base.diagnostics import Diagnostic, InputError
from engine.report import draft
from engine.check import sample
from engine.compile import compile as compiler
from engine.compile import facts as fact_builder
from engine.evaluate import evaluate as evaluator
from engine.judge import judge, trace
from engine.report import report as reports
from engine.run import pipeline
from engine.store import store


def tool_version() -> str:
    try:
        return metadata.version("qi-engine")
    except metadata.PackageNotFoundError:
        return "0+source"


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A validated sample and the compiled sections of its rule set: ready to run."""

    sample: sample.Sample
    rules_path: Path
    cases: compiler.CompiledRuleSet
    organisation: compiler.CompiledRuleSet
    whole: compiler.CompiledRuleSet


def prepare(sample_dir: str | os.PathLike[str], rules_file: str | os.PathLike[str] | None = None,
            jobs: int = 1, advance: Callable[[int], None] | None = None) -> Prepared:
    """Validate the sample and compile its rule set (``advance(n)`` as case files are checked).
    Raises InputError listing every problem."""
    loaded_sample = sample.load(sample_dir, jobs=jobs, advance=advance)
    manifest = loaded_sample.manifest.model
    rules_path = Path(rules_file) if rules_file else pipeline.rules_path(manifest.rules, manifest.period.end)
    cases = pipeline.compiled_rules(rules_path)
    framework = cases.loaded.framework
    if (framework.id, framework.version) != (loaded_sample.framework.id, loaded_sample.framework.version):
        raise InputError([Diagnostic(cases.loaded.document.path, 1, 1, "framework_mismatch",
                                     f"the rule set is for framework {framework.id} {framework.version}, the "
                                     f"sample for {loaded_sample.framework.id} {loaded_sample.framework.version}",
                                     "choose a rule set for the sample's framework with --rules")])
    return Prepared(loaded_sample, rules_path, cases, compiler.compile_organisation(cases.loaded),
                    compiler.compile_sample(cases.loaded))


# --- evaluating cases, in this process or in workers ------------------------------------------------

_worker_rules: compiler.CompiledRuleSet | None = None


def _start_worker(rules_path: str) -> None:
    global _worker_rules
    _worker_rules = pipeline.compiled_rules(rules_path)


def _evaluate_in_worker(case):
    assert _worker_rules is not None
    return judge_case(_worker_rules, case)


def encode(result: dict) -> bytes:
    """A case result as its line of trace.jsonl."""
    return (json.dumps(result, ensure_ascii=False, sort_keys=True) + "\n").encode()


def judge_case(compiled: compiler.CompiledRuleSet, case):
    """One case (a handle, read again now, or a loaded case): its result encoded as a line, its
    summary, what aggregation needs of it, and its warnings — small, cheap to send from a worker."""
    loaded = case.load()
    result = pipeline.case_result(compiled, loaded)
    record = aggregate.record(loaded.model, result, compiled.loaded.framework)
    warnings = [d.as_dict() for d in pipeline.not_assessed_warnings(result, loaded)]
    return result["case"], encode(result), summary(result), record, warnings


class CaseSpool:
    """Every case's full result, one JSON line each, kept on disk — an anonymous temporary file only
    its owner can read — rather than in memory, so a run of any size keeps memory flat."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(mode="w+b")
        self._digest = hashlib.sha256()
        self.references: list[str] = []

    @property
    def count(self) -> int:
        return len(self.references)

    def add(self, reference: str, line: bytes) -> None:
        """One case's result, already encoded by :func:`encode`."""
        self._file.write(line)
        self._digest.update(line)
        self.references.append(reference)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def lines(self):
        """The raw lines, in case-reference order (one reader at a time)."""
        self._file.flush()
        self._file.seek(0)
        for line in self._file:  # not "yield from": closing this generator must not close the file
            yield line

    def results(self):
        for line in self.lines():
            yield json.loads(line)


class Report(dict):
    """The report (a plain dict, the JSON contract) and the spool of full case results behind it."""

    spool: CaseSpool


def summary(result: dict) -> dict:
    """A case's result without its traces: what report.json lists per case."""
    factor = lambda f: {k: f[k] for k in ("id", "text", "criterion", "rules")}  # noqa: E731
    return {"case": result["case"], "file": result["file"], "sha256": result["sha256"],
            "provider": result["provider"],
            "findings": {c: {"value": f["value"], "rules": f["rules"]} for c, f in result["findings"].items()},
            "enablers": [factor(e) for e in result["enablers"]], "barriers": [factor(b) for b in result["barriers"]],
            "not_assessed": result["not_assessed"],
            **({"judgements": result["judgements"]} if "judgements" in result else {})}


def evaluate_cases(prepared: Prepared, spool: CaseSpool, jobs: int = 1,
                   advance: Callable[[int], None] | None = None):
    """Evaluate every case, in case-reference order whatever ``jobs`` is: full results go to the
    spool; returns their summaries, aggregation records and warnings."""
    cases = sorted(prepared.sample.cases, key=lambda c: c.reference)
    summaries: list[dict] = []
    records: list[aggregate.CaseRecord] = []
    warnings: list[dict] = []

    def take(judged) -> None:
        reference, line, case_summary, record, case_warnings = judged
        spool.add(reference, line)
        summaries.append(case_summary)
        records.append(record)
        warnings.extend(case_warnings)
        if advance:
            advance(1)

    if jobs <= 1 or len(cases) < 2:
        for case in cases:
            take(judge_case(prepared.cases, case))
        return summaries, records, warnings
    context = multiprocessing.get_context("fork")  # one durable_rules host per worker, made after the fork
    chunk = max(1, min(64, len(cases) // (jobs * 8)))
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                                                initargs=(str(prepared.rules_path),)) as pool:
        for judged in pool.map(_evaluate_in_worker, cases, chunksize=chunk):
            take(judged)
    return summaries, records, warnings


def evaluate_organisations(prepared: Prepared) -> list[dict]:
    """Each provider's organisation evidence judged on the organisation-scoped standards."""
    compiled = prepared.organisation
    framework = compiled.loaded.framework
    results = []
    for loaded in sorted(prepared.sample.organisations, key=lambda o: o.model.organisation):
        evaluation = evaluator.evaluate(compiled, fact_builder.organisation_attributes(loaded.model, framework,
                                                                                     compiled.schema))
        judgement = judge.judge(compiled, evaluation)
        result = {"organisation": loaded.model.organisation, "file": loaded.document.path,
                  "sha256": loaded.document.sha256, **trace.conclusions(compiled, loaded, evaluation, judgement)}
        if loaded.model.judgements:
            result["judgements"] = pipeline.judgement_rows(compiled, loaded.model, evaluation, judgement)
        results.append(result)
    return results


def second_markings(prepared: Prepared, case_results: list[dict]) -> list[dict]:
    """Each second marking beside the first marking of its case and the engine's findings on the
    first marking (the one judged)."""
    first = {c.reference: c for c in prepared.sample.cases}
    engine = {c["case"]: {k: f["value"] for k, f in c["findings"].items()} for c in case_results}
    markings = []
    for loaded in prepared.sample.moderation:
        original = first[loaded.model.case].load().model
        answers = lambda model: {i: e.answer for i, e in model.evidence.items()}  # noqa: E731
        judged = lambda model: {c: j.finding for c, j in model.judgements.items()}  # noqa: E731
        markings.append({"case": loaded.model.case, "answers": answers(loaded.model),
                         "judgements": judged(loaded.model), "first_answers": answers(original),
                         "first_judgements": judged(original), "engine": engine[loaded.model.case]})
    return markings


def judge_sample(prepared: Prepared, aggregates: dict) -> dict:
    """Apply the sample rules to the aggregates: ratings, recommendations, enablers, barriers."""
    compiled = prepared.whole
    evaluation = evaluator.evaluate(compiled, aggregate.sample_attributes(aggregates, compiled.loaded))
    judgement = judge.judge_sample(compiled, evaluation)
    tracer = trace.SampleTracer(compiled, evaluation, aggregates)
    label = lambda i: compiled.rules[i].label  # noqa: E731

    def conclusion(c: judge.SampleConclusion) -> dict:
        entry = {"id": c.id, "text": c.text, **c.about, "rules": [label(i) for i in c.rules],
                 "trace": tracer.conclusion(c)}
        if c.kind == "recommendation":
            entry["to"] = list(c.to)
        return entry

    return {
        "ratings": [{"target": r.target, "group": r.group, "band": r.band, "rules": [label(i) for i in r.rules],
                     "trace": tracer.rating(r)} for r in judgement.ratings],
        "recommendations": [conclusion(c) for c in judgement.recommendations],
        "enablers": [conclusion(c) for c in judgement.enablers],
        "barriers": [conclusion(c) for c in judgement.barriers],
        "rules_fired": [label(i) for i in evaluation.fired],
    }


def _inputs(prepared: Prepared) -> list[dict]:
    manifest = prepared.sample.manifest.document
    entries = [{"path": manifest.path, "sha256": manifest.sha256, "role": "manifest"}]
    entries += [{"path": c.display, "sha256": c.sha256, "role": "case"} if isinstance(c, sample.CaseHandle)
                else {"path": c.document.path, "sha256": c.document.sha256, "role": "case"}
                for c in prepared.sample.cases]
    entries += [{"path": o.document.path, "sha256": o.document.sha256, "role": "organisation"}
                for o in prepared.sample.organisations]
    entries += [{"path": m.document.path, "sha256": m.document.sha256, "role": "moderation"}
                for m in prepared.sample.moderation]
    return sorted(entries, key=lambda e: e["path"])


def run(prepared: Prepared, jobs: int = 1, advance: Callable[[int], None] | None = None,
        now: datetime.datetime | None = None) -> Report:
    """The whole run; returns the report (the JSON contract in docs/report.md) with its spool."""
    framework = prepared.cases.loaded.framework
    ruleset = prepared.cases.ruleset
    spool = CaseSpool()
    case_results, records, case_warnings = evaluate_cases(prepared, spool, jobs, advance)
    aggregates = aggregate.build(records, prepared.cases.loaded)
    manifest = prepared.sample.manifest.model
    framework_document_sha = hashlib.sha256(prepared.sample.framework_path.read_bytes()).hexdigest()
    warnings = case_warnings + [w.as_dict() for w in prepared.sample.warnings]
    organisations = evaluate_organisations(prepared)
    report = {
        "qi": {"version": tool_version()},
        "sample": {"id": manifest.id, "title": manifest.title, "area": manifest.area,
                   "period": {"start": manifest.period.start.isoformat(), "end": manifest.period.end.isoformat()},
                   "cases": len(case_results), "providers": framework.vocabulary.ids("providers")},
        "framework": {"id": framework.id, "version": framework.version, "title": framework.title,
                      "working_model": framework.introduction.working_model,
                      "sha256": framework_document_sha, "file": str(prepared.sample.framework_path.name)},
        "ruleset": {"id": ruleset.id, "version": ruleset.version, "title": ruleset.title,
                    "sha256": prepared.cases.loaded.sha256, "file": prepared.cases.loaded.document.path},
        "inputs": _inputs(prepared),
        "standards": [{"id": s.id, "title": s.title, "scope": s.scope, "dimension": s.dimension,
                       "criteria": [{"id": c.id, "title": c.title} for c in s.criteria]} for s in framework.standards],
        "labels": draft.labels(framework, aggregates["group_sizes"]),
        "aggregates": aggregates,
        "examples": draft.practice_examples(
            spool.results(), slots=2 * len(framework.vocabulary.providers) * len(aggregates["targets"])),
        "sample_judgement": judge_sample(prepared, aggregates),
        "organisations": organisations,
        "cases": case_results,
        "consistency": agreement.consistency(case_results, organisations, second_markings(prepared, case_results),
                                             [c.id for c in framework.criteria()], framework.item_ids()),
        "traces": {"file": "trace.jsonl", "sha256": spool.sha256, "cases": spool.count},
        "warnings": sorted(warnings, key=lambda d: (d["path"], d["line"], d["code"])),
    }
    digest = canonical_sha256(report)  # covers the traces through their sha256
    moment = (now or datetime.datetime.now(datetime.timezone.utc)).replace(microsecond=0)
    run_id = secrets.token_hex(8)  # unique per execution; identical inputs share content_sha256
    result = Report({"run": {"id": run_id, "content_sha256": digest, "timestamp": moment.isoformat()}, **report})
    result.spool = spool
    return result


def publish(result: Report, out: str | os.PathLike[str], audit: store.Store, redact_with: list[str] | None = None,
            key: bytes | None = None) -> store.RunSummary:
    """Stage the report set, record the run (report.json, naming the head after it, is staged
    inside the store's transaction), then publish the reports. Any failure before the commit —
    a report's place taken by a folder, a full disk, a locked store — leaves no new report
    visible and no run recorded. Raises InputError or OSError."""
    staged = reports.stage(result, out, redact_with)
    try:
        summary = audit.record(result, zip(result.spool.references, result.spool.lines()), key,
                               before_commit=lambda s: (staged.stage_json({"store": store.store_field(s.seq, s.hash)}),
                                                        staged.check_targets()))
    except BaseException:
        staged.discard()
        raise
    try:
        staged.publish()
    except OSError as error:
        raise InputError([Diagnostic(str(out), 1, 1, "publish_failed",
                                     f"run {summary.seq} was recorded, but its reports could not be put in place: "
                                     f"{error.strerror or error}",
                                     f"the previous reports are unchanged; qi runs show {summary.seq} has the run")]) \
            from None
    return summary
