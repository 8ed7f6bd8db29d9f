"""The whole-sample run: validate everything, evaluate every case (in parallel if asked) and each
provider's organisation evidence, aggregate, apply the sample rules, and assemble the report.

The rule set is compiled before any case is read; each case is then read, validated and judged in
one pass (its full result spooled to disk), so no file is read twice. Invalid input anywhere gives
diagnostics and no run: whatever was judged is discarded. Results do not depend on ``jobs``: cases
are judged independently and collected in case-reference order.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import functools
import hashlib
import multiprocessing
import os
import secrets
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from engine.aggregate import aggregate, agreement
from engine.aggregate import labels as group_labels
from engine.base import canonical
from engine.base.canonical import canonical_sha256
from engine.base.diagnostics import Diagnostic, InputError
from engine.check import cache, models, sample
from engine.compile import compile as compiler
from engine.compile import delta
from engine.compile import facts as fact_builder
from engine.evaluate import evaluate as evaluator
from engine.judge import judge, trace
from engine.report import draft
from engine.report import report as reports
from engine.report.model import CaseSpool, Report
from engine.run import pipeline
from engine.store import review, store


def tool_version() -> str:
    try:
        return metadata.version("qi-engine")
    except metadata.PackageNotFoundError:
        return "0+source"


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A validated sample and the compiled sections of its rule set: ready to run. When the cases
    were judged as they validated (see :func:`prepare`), ``judged`` holds their results."""

    sample: sample.Sample
    rules_path: Path
    cases: compiler.CompiledRuleSet
    organisation: compiler.CompiledRuleSet
    whole: compiler.CompiledRuleSet
    judged: JudgedCases | None = None


def prepare(sample_dir: str | os.PathLike[str], rules_file: str | os.PathLike[str] | None = None,
            jobs: int = 1, advance: Callable[[int], None] | None = None) -> Prepared:
    """Validate the sample and compile its rule set; raises InputError listing every problem.

    Each case file is read once: the rule set is compiled first, and every case that validates is
    judged there and then (in ``jobs`` processes), its full result going to a spool on disk. If any
    input is invalid the spool is discarded with the error, so nothing of a bad sample is ever
    reported — but no case is read and validated a second time to be judged."""
    sample_dir = Path(sample_dir)
    manifest = _manifest_or_none(sample_dir)
    rules_path, cases = _rules_for(sample_dir, manifest, rules_file, jobs)
    judged = JudgedCases(trace.rule_table(cases))  # progress is counted by sample.load, once per case file checked
    loaded_sample = sample.load(sample_dir, cases.loaded.framework_path, jobs=jobs, advance=advance,
                                judge=functools.partial(_judge_loaded, str(rules_path)), take=judged.take)
    return _prepared(loaded_sample, rules_path, cases, judged)


def prepare_pair(sample_dir: str | os.PathLike[str], old_rules: str | os.PathLike[str],
                 new_rules: str | os.PathLike[str], jobs: int = 1,
                 advance: Callable[[int], None] | None = None) -> tuple[Prepared, Prepared]:
    """The sample prepared under two rule sets, for a diff: each case file read and validated once
    and judged under both, without traces. Under the new rule set only the rules a change can move
    are evaluated again (:mod:`engine.compile.delta`); the rest is carried over from the case's
    evaluation under the old one. Raises InputError listing every problem of both rule sets and
    the sample."""
    sample_dir = Path(sample_dir)
    manifest = _manifest_or_none(sample_dir)
    problems: list[Diagnostic] = []
    found = []
    for rules_file in (old_rules, new_rules):
        try:
            found.append(_rules_for(sample_dir, manifest, rules_file, jobs, with_sample=False))
        except InputError as error:
            problems += [d for d in error.diagnostics if d not in problems]
    if len(found) < 2:
        _raise_with_sample_problems(sample_dir, jobs, problems)
    (old_path, old), (new_path, new) = found
    if old.loaded.framework_path != new.loaded.framework_path:
        _raise_with_sample_problems(sample_dir, jobs, [Diagnostic(
            new.loaded.document.path, 1, 1, "framework_mismatch", f"the rule sets were checked against different "
            f"framework files ({old.loaded.framework_path} and {new.loaded.framework_path})",
            "keep one copy of the framework file on the search path")])
    before, after = JudgedCases(), JudgedCases()

    def take(pair) -> None:
        before.take(pair[0])
        after.take(pair[1])

    loaded_sample = sample.load(sample_dir, old.loaded.framework_path, jobs=jobs, advance=advance,
                                judge=functools.partial(_judge_pair, str(old_path), str(new_path)), take=take)
    return _prepared(loaded_sample, old_path, old, before), _prepared(loaded_sample, new_path, new, after)


def _prepared(loaded_sample: sample.Sample, rules_path: Path, cases: compiler.CompiledRuleSet,
              judged: JudgedCases) -> Prepared:
    return Prepared(loaded_sample, rules_path, cases, compiler.compile_organisation(cases.loaded),
                    compiler.compile_sample(cases.loaded), judged)


def _rules_for(sample_dir: Path, manifest, rules_file, jobs: int,
               with_sample: bool = True) -> tuple[Path, compiler.CompiledRuleSet]:
    """The rule set to judge the sample by (``rules_file``, else the one the manifest names or
    that is in force), compiled and checked to be for the sample's framework. Raises InputError,
    with every problem of the sample too unless ``with_sample`` is false."""
    def refuse(problems: list[Diagnostic]):
        if with_sample:
            _raise_with_sample_problems(sample_dir, jobs, problems)
        raise InputError(problems)

    try:
        rules_path = Path(rules_file) if rules_file else (
            pipeline.rules_path(manifest.rules, manifest.period.end, (manifest.framework.id, manifest.framework.version))
            if manifest else None)
        cases = pipeline.compiled_rules(rules_path) if rules_path else None
    except InputError as error:
        refuse(list(error.diagnostics))
    if cases is None or manifest is None:
        refuse([])
    framework = cases.loaded.framework
    if (framework.id, framework.version) != (manifest.framework.id, manifest.framework.version):
        raise InputError([Diagnostic(cases.loaded.document.path, 1, 1, "framework_mismatch",
                                     f"the rule set is for framework {framework.id} {framework.version}, the "
                                     f"sample for {manifest.framework.id} {manifest.framework.version}",
                                     "choose a rule set for the sample's framework with --rules")])
    return rules_path, cases


def _manifest_or_none(sample_dir: Path):
    try:
        return sample.load_manifest(sample_dir / "sample.yaml")
    except (InputError, OSError):
        return None


def _raise_with_sample_problems(sample_dir: Path, jobs: int, problems: list[Diagnostic]):
    """The rule set cannot be used: report its problems together with every problem of the sample."""
    try:
        sample.load(sample_dir, jobs=jobs)
    except InputError as error:
        problems = list(problems) + list(error.diagnostics)
    raise InputError(problems)


# --- judging cases, in this process or in workers ---------------------------------------------------

#: What an observer of evaluations receives: the compiled section, the evaluation (with the
#: tracer's record), and the case or organisation (None for the sample) and aggregates (sample only).
Observer = Callable[..., None]

def _judge_loaded(rules_path: str, case):
    """Judge a case (loaded, or a handle) in whichever process has it: the rule set is compiled once
    per process (a forked worker inherits the parent's compiled copy)."""
    return judge_case(pipeline.compiled_rules(rules_path), case)


def _judge_pair(old_path: str, new_path: str, case):
    """A case judged under two rule sets, without traces: fully under the old, and under the new
    only what the change can move (the rest carried over from the old evaluation)."""
    old, new = pipeline.compiled_rules(old_path), pipeline.compiled_rules(new_path)
    change = new.cached(("delta from", old.loaded.sha256, id(old)), lambda: delta.between(old, new))
    loaded = case.load()
    framework = old.loaded.framework
    before = _baseline(old, loaded, fact_builder.case_attributes(loaded.model, framework, old.schema))
    attributes = fact_builder.case_attributes(loaded.model, framework, new.schema)
    again = evaluator.evaluate(change.evaluated, attributes).fired if change.evaluated is not None else ()
    after = evaluator.assembled(new, attributes, delta.fired(change, before.fired, again))
    return judged_untraced(old, loaded, before), judged_untraced(new, loaded, after)


def _baseline(compiled: compiler.CompiledRuleSet, loaded: sample.Loaded, attributes: dict) -> evaluator.Evaluation:
    """The case's evaluation under the old rule set of a diff: the rules it fires are a pure
    function of the rule set, the framework and the case file, so they are kept in the cache
    (:func:`cache.fired`) and a diff tried again against the same baseline does not evaluate it."""
    framework_path = compiled.loaded.framework_path
    if framework_path is None:
        return evaluator.evaluate(compiled, attributes)
    index = compiled.by_label()
    labels = cache.fired(compiled.loaded.sha256, framework_path, loaded.document.sha256)
    if labels is not None and all(label in index for label in labels):
        return evaluator.assembled(compiled, attributes, [index[label] for label in labels])
    evaluation = evaluator.evaluate(compiled, attributes)
    cache.store_fired(compiled.loaded.sha256, framework_path, loaded.document.sha256,
                      [compiled.rules[i].label for i in evaluation.fired])
    return evaluation


def judged_untraced(compiled: compiler.CompiledRuleSet, loaded: sample.Loaded, evaluation: evaluator.Evaluation):
    """What :func:`judge_case` returns, from an evaluation, without traces, the inspector's
    judgements or warnings: what a diff compares."""
    judgement = judge.judge(compiled, evaluation)
    label = lambda i: compiled.rules[i].label  # noqa: E731
    factor = lambda f: {"id": f.id, "text": f.text, "criterion": f.criterion,  # noqa: E731
                        "rules": [label(i) for i in f.rules]}
    result = {"case": loaded.model.case, "file": loaded.document.path, "sha256": loaded.document.sha256,
              "provider": loaded.model.provider,
              "findings": {c: {"value": f.value, "rules": [label(i) for i in f.rules]}
                           for c, f in judgement.findings.items()},
              "enablers": [factor(e) for e in judgement.enablers], "barriers": [factor(b) for b in judgement.barriers],
              "not_assessed": [c for c, f in judgement.findings.items() if f.value == models.NOT_ASSESSED]}
    record = dataclasses.replace(aggregate.record(loaded.model, result, compiled.loaded.framework),
                                 matched=compiler.cases_matched(compiled, evaluation.fact))
    return (result["case"], encode(result), {**result, "groups": record.groups, "matched": sorted(record.matched)},
            record, [])


def encode(result: dict) -> bytes:
    """A case result as its line of trace.jsonl (canonical JSON, so the line is what is hashed)."""
    return canonical.line(result)


def judge_case(compiled: compiler.CompiledRuleSet, case, observe: Observer | None = None):
    """One case (a handle, read now, or a loaded case): its result encoded as a line, its
    summary, what aggregation needs of it, and its warnings — small, cheap to send from a worker."""
    loaded = case.load()
    result, found, evaluation = pipeline.case_evaluated(compiled, loaded, observe)
    record = dataclasses.replace(aggregate.record(loaded.model, result, compiled.loaded.framework),
                                 matched=compiler.cases_matched(compiled, evaluation.fact))
    warnings = [d.as_dict() for d in found]
    # matched: the case conditions it meets that others read (provider_cases, a barrier's among), so
    # figures recomputed from report.json after review count the same relevant cases
    return (result["case"], encode(result), {**summary(result), "groups": record.groups,
                                             "matched": sorted(record.matched)}, record, warnings)


class JudgedCases:
    """Judged cases as they arrive, in any order: full results to the spool, the rest kept small."""

    def __init__(self, table: dict | None = None, advance: Callable[[int], None] | None = None) -> None:
        self.spool = CaseSpool(table)
        self._summaries: list[dict] = []
        self._records: list[aggregate.CaseRecord] = []
        self._warnings: list[dict] = []
        self._advance = advance

    def take(self, judged) -> None:
        reference, line, case_summary, record, case_warnings = judged
        self.spool.add(reference, line)
        self._summaries.append(case_summary)
        self._records.append(record)
        self._warnings.extend(case_warnings)
        if self._advance:
            self._advance(1)

    def collected(self) -> tuple[list[dict], list[aggregate.CaseRecord], list[dict]]:
        """Summaries, aggregation records and warnings, in case-reference order."""
        return (sorted(self._summaries, key=lambda s: s["case"]), sorted(self._records, key=lambda r: r.reference),
                self._warnings)


def summary(result: dict) -> dict:
    """A case's result without its traces: what report.json lists per case."""
    factor = lambda f: {k: f[k] for k in ("id", "text", "criterion", "rules")}  # noqa: E731
    return {"case": result["case"], "file": result["file"], "sha256": result["sha256"],
            "provider": result["provider"],
            "findings": {c: {"value": f["value"], "rules": f["rules"]} for c, f in result["findings"].items()},
            "enablers": [factor(e) for e in result["enablers"]], "barriers": [factor(b) for b in result["barriers"]],
            "not_assessed": result["not_assessed"],
            **({"judgements": result["judgements"]} if "judgements" in result else {})}


def framework_names(framework: models.Framework) -> dict[str, list[str]]:
    """What the framework calls its levels and the organisations it inspects (the provider
    field's label), as report views word them."""
    levels = framework.levels
    organisation = framework.vocabulary.context_field("provider")
    label = organisation.label if organisation is not None else "Provider"
    return {"standard": [levels.standard.name, levels.standard.plural],
            "criterion": [levels.criterion.name, levels.criterion.plural],
            "item": [levels.item.name, levels.item.plural],
            "organisation": [label, label if label.endswith("s") else label + "s"]}


def evaluate_cases(prepared: Prepared, jobs: int = 1, advance: Callable[[int], None] | None = None,
                   observe: Observer | None = None) -> JudgedCases:
    """Judge every case not judged yet (cases given loaded, as rule tests do), whatever ``jobs`` is
    collected in case-reference order. ``observe`` sees every evaluation (in this process only)."""
    if prepared.judged is not None and observe is None:
        return prepared.judged
    judged = JudgedCases(trace.rule_table(prepared.cases), advance)
    cases = sorted(prepared.sample.cases, key=lambda c: c.reference)
    if jobs <= 1 or len(cases) < 2 or observe is not None:
        for case in cases:
            judged.take(judge_case(prepared.cases, case, observe))
        return judged
    context = multiprocessing.get_context("fork")  # one durable_rules host per worker, made after the fork
    chunk = max(1, min(64, len(cases) // (jobs * 8)))
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        for result in pool.map(functools.partial(_judge_loaded, str(prepared.rules_path)), cases, chunksize=chunk):
            judged.take(result)
    return judged


def evaluate_organisations(prepared: Prepared, observe: Observer | None = None,
                           records: list[aggregate.CaseRecord] | None = None,
                           providers: dict[str, str] | None = None) -> list[dict]:
    """Each provider's organisation evidence judged on the organisation-scoped standards — after
    its cases, so that organisation rules can read the provider's own case findings
    (``provider_cases``). ``records`` are the judged cases and ``providers`` each case's provider;
    without them, conditions on the provider's cases do not hold and say the cases were not read."""
    compiled = prepared.organisation
    framework = compiled.loaded.framework
    results = []
    for loaded in sorted(prepared.sample.organisations, key=lambda o: o.model.organisation):
        subject = organisation_subject(loaded, records, providers)
        evaluation = evaluator.evaluate(compiled, fact_builder.organisation_attributes(subject.model, framework,
                                                                                     compiled.schema))
        judgement = judge.judge(compiled, evaluation)
        if observe is not None:
            observe(compiled, evaluation, subject)
        tracer = trace.Trace(compiled, evaluation, subject)
        result = {"organisation": loaded.model.organisation, "file": loaded.document.path,
                  "sha256": loaded.document.sha256,
                  **trace.conclusions(compiled, subject, evaluation, judgement, tracer)}
        checked = tracer.corroboration()
        if checked:
            result["corroboration"] = checked
        if loaded.model.causes:
            labels = {t.id: t.label for t in framework.vocabulary.causes}
            result["causes"] = [{"cause": cause, "label": labels.get(cause, cause), "note": found.note,
                                 "sources": list(found.sources)} for cause, found in loaded.model.causes.items()]
        if loaded.model.judgements:
            result["judgements"] = pipeline.judgement_rows(compiled, loaded.model, evaluation, judgement)
        results.append(result)
    return results


def organisation_subject(loaded: sample.Loaded, records: list[aggregate.CaseRecord] | None,
                         providers: dict[str, str] | None) -> sample.Loaded:
    """The organisation file with its provider's judged cases (in reference order), when known."""
    if records is None or providers is None:
        return loaded
    own = [r for r in records if providers.get(r.reference) == loaded.model.organisation]
    return sample.Loaded(loaded.document, fact_builder.WithCases(loaded.model, own))


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


def judge_sample(compiled: compiler.CompiledRuleSet, aggregates: dict, observe: Observer | None = None,
                 organisations: list[dict] | None = None) -> dict:
    """Apply the sample rules (the rule set's compiled sample section) to the aggregates and the
    organisations' findings: ratings, recommendations, enablers, barriers."""
    evaluation = judge.evaluate_sample(compiled, aggregate.sample_attributes(aggregates, compiled.loaded,
                                                                             organisations))
    judgement = judge.judge_sample(compiled, evaluation)
    if observe is not None:
        observe(compiled, evaluation, None, aggregates)
    tracer = trace.Trace(compiled, evaluation, aggregates=aggregates)
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
        "rating_scheme": judge.rating_scheme(compiled.ruleset.sample, judgement.ratings, aggregates["targets"]),
        "recommendations": [conclusion(c) for c in judgement.recommendations],
        "enablers": [conclusion(c) for c in judgement.enablers],
        "barriers": [conclusion(c) for c in judgement.barriers],
        "rules_fired": [label(i) for i in evaluation.fired],
    }


def publication(settings) -> dict:
    """The rule set's settings for publishing (``sample.quote_practice_examples`` and ``sample.page``),
    recorded in the report so that every view, and a report re-rendered from the store, follows them."""
    return {"quote_practice_examples": settings.quote_practice_examples,
            "page": {name: float(value) for name, value in settings.page.model_dump().items()}}


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


def ruleset_entry(compiled: compiler.CompiledRuleSet) -> dict:
    """How a report names the rule set it was judged by."""
    ruleset = compiled.ruleset
    entry = {"id": ruleset.id, "version": ruleset.version, "title": ruleset.title,
             "sha256": compiled.loaded.sha256, "file": compiled.loaded.document.path}
    return entry if ruleset.review is None else {**entry, "review": ruleset.review.model_dump()}


def conclude(prepared: Prepared, judged: JudgedCases, observe: Observer | None = None) -> dict:
    """What the judged cases add up to: the cases' summaries (in reference order), the aggregates,
    each provider's organisation findings and the sample rules' conclusions, with the cases'
    warnings: the part of a run that a diff compares."""
    case_results, records, case_warnings = judged.collected()
    aggregates = aggregate.build(records, prepared.cases.loaded)
    organisations = evaluate_organisations(prepared, observe, records, {c["case"]: c["provider"] for c in case_results})
    return {"cases": case_results, "aggregates": aggregates, "organisations": organisations,
            "sample_judgement": judge_sample(prepared.whole, aggregates, observe, organisations),
            "warnings": case_warnings}


#: The side of a diff a forked worker concludes (set just before the worker is forked).
_PENDING: tuple[Prepared, JudgedCases] | None = None


def _conclude_pending() -> dict:
    return conclude(*_PENDING)


def conclude_pair(old: Prepared, new: Prepared, jobs: int = 1) -> tuple[dict, dict]:
    """:func:`conclude` for both sides of a diff: with ``jobs`` over 1, the new side in a forked
    worker while this process concludes the old (the two are independent; aggregating each side
    was a diff's largest serial part)."""
    global _PENDING
    if jobs <= 1:
        return conclude(old, old.judged), conclude(new, new.judged)
    _PENDING = (new, new.judged)
    try:
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            later = pool.submit(_conclude_pending)
            before = conclude(old, old.judged)
            return before, later.result()
    finally:
        _PENDING = None


def run(prepared: Prepared, jobs: int = 1, advance: Callable[[int], None] | None = None,
        now: datetime.datetime | None = None, observe: Observer | None = None) -> Report:
    """The whole run; returns the report (the JSON contract in docs/report.md) with its spool.
    ``observe`` is shown every evaluation — each case, organisation and the sample — with its
    tracer's record (rule coverage reads them)."""
    framework = prepared.cases.loaded.framework
    ruleset = prepared.cases.ruleset
    judged = evaluate_cases(prepared, jobs, advance, observe)
    spool = judged.spool
    concluded = conclude(prepared, judged, observe)
    case_results, aggregates, organisations = concluded["cases"], concluded["aggregates"], concluded["organisations"]
    manifest = prepared.sample.manifest.model
    framework_document_sha = hashlib.sha256(prepared.sample.framework_path.read_bytes()).hexdigest()
    warnings = concluded["warnings"] + [w.as_dict() for w in prepared.sample.warnings]
    report = {
        "qi": {"version": tool_version()},
        "sample": {"id": manifest.id, "title": manifest.title, "area": manifest.area,
                   "period": {"start": manifest.period.start.isoformat(), "end": manifest.period.end.isoformat()},
                   "cases": len(case_results), "providers": framework.vocabulary.ids("providers")},
        "framework": {"id": framework.id, "version": framework.version, "title": framework.title,
                      "working_model": framework.introduction.working_model,
                      "names": framework_names(framework),
                      "report": framework.report.model_dump(),
                      **({"illustration": framework.illustration} if framework.illustration else {}),
                      "sha256": framework_document_sha, "file": str(prepared.sample.framework_path.name)},
        "ruleset": ruleset_entry(prepared.cases),
        "inputs": _inputs(prepared),
        "standards": [{"id": s.id, "title": s.title, "scope": s.scope, "dimension": s.dimension,
                       "criteria": [{"id": c.id, "title": c.title} for c in s.criteria]} for s in framework.standards],
        "labels": group_labels.labels(framework, aggregates["group_sizes"]),
        "aggregates": aggregates,
        "examples": draft.practice_examples(
            spool.records(), draft.example_answers(framework),
            slots=2 * len(framework.vocabulary.providers) * len(aggregates["targets"]),
            trace_of=functools.partial(trace.finding_trace, table=spool.table)),
        "publication": publication(ruleset.sample),
        "sample_judgement": concluded["sample_judgement"],
        "organisations": organisations,
        "cases": case_results,
        "consistency": agreement.consistency(case_results, organisations, second_markings(prepared, case_results),
                                             [c.id for c in framework.criteria()], framework.item_ids()),
        "traces": {"file": "trace.jsonl", "sha256": spool.sha256, "cases": spool.count,
                   "rules": trace.rule_table(prepared.cases)},
        "warnings": sorted(warnings, key=lambda d: (d["path"], d["line"], d["code"])),
    }
    digest = canonical_sha256(report)  # covers the traces through their sha256
    moment = (now or datetime.datetime.now(datetime.timezone.utc)).replace(microsecond=0)
    run_id = secrets.token_hex(8)  # unique per execution; identical inputs share content_sha256
    return Report({"run": {"id": run_id, "content_sha256": digest, "timestamp": moment.isoformat()}, **report},
                  spool)


def publish(result: Report, out: str | os.PathLike[str], audit: store.Store, redact_with: list[str] | None = None,
            key: bytes | None = None, jobs: int = 1) -> store.RunSummary:
    """Stage the report set, record the run (report.json, naming the head after it, is staged
    inside the store's transaction), then publish the reports. Any failure before the commit —
    a report's place taken by a folder, a full disk, a locked store — leaves no new report
    visible and no run recorded. Raises InputError or OSError. ``jobs`` over 1 writes report.docx
    in a worker beside the other reports."""
    staged = reports.stage(result, out, redact_with, jobs)
    try:
        summary = audit.record(result.content, zip(result.spool.references, result.spool.lines()), key,
                               check=lambda: review.refuse_broken_chain(audit, key, "the run was not recorded"),
                               before_commit=lambda s: (staged.stage_json({"store": store.store_field(s.seq, s.hash, s.link)}),
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
