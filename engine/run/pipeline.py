"""The per-case pipeline end to end: rule set → compile; case → facts → evaluate → judge → trace.

A thin composition of the stages for callers (the CLI, tests, later the sample run) that want a
case's result without wiring the stages themselves.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import os
from pathlib import Path
from typing import NamedTuple

from pydantic import TypeAdapter

from engine.aggregate import agreement
from engine.base.diagnostics import Diagnostic, InputError, did_you_mean
from engine.base import resources
from engine.base.resources import data_dir
from engine.check import framework as frameworks
from engine.check import rules, sample
from engine.check.rules.conditions import Condition
from engine.compile import compile as compiler
from engine.compile import conditions, facts
from engine.evaluate import evaluate as evaluator
from engine.judge import judge, trace, whatif


def bundled_rules() -> dict[str, Path]:
    """The bundled rule set files by rule set id (read from each file)."""
    found = {}
    for path in sorted(data_dir("rules").glob("*.yaml")):
        found[rules.load(path).rules.id] = path
    return found


def rules_path(named: str | None = None, on: datetime.date | None = None,
               framework: tuple[str, str] | None = None) -> Path:
    """The bundled rule set with id ``named``; else the one for ``framework`` (id, version) in force
    on ``on`` (a sample's last day); else the only one bundled. Raises InputError when none or more
    than one qualifies."""
    known = bundled_rules()
    if named is not None:
        if named not in known:
            raise InputError([Diagnostic("--rules", 1, 1, "unknown_ruleset", f"rule set {named!r} is not bundled",
                                         did_you_mean(named, list(known), "bundled rule sets"))])
        return known[named]
    return in_force(list(known.values()), on, framework)


def in_force(paths: list[Path], on: datetime.date | None, framework: tuple[str, str] | None = None) -> Path:
    """The one rule set among ``paths`` for ``framework`` (any, if None) in force on ``on`` (any, if
    ``on`` is None); options (a variant such as banding) are never chosen this way, only by name."""
    chosen = []
    for path in paths:
        ruleset = rules.load(path).rules
        if ruleset.option or (framework is not None and (ruleset.framework.id, ruleset.framework.version) != framework):
            continue
        window = ruleset.in_force
        if on is None or window is None or (window.from_ <= on and (window.to is None or on <= window.to)):
            chosen.append(path)
    where = str(data_dir("rules")) if not paths else str(paths[0].parent)
    when = (f"on {on.isoformat()}" if on else "at all") + (f" for {framework[0]} {framework[1]}" if framework else "")
    if not chosen:
        raise InputError([Diagnostic(where, 1, 1, "no_ruleset_in_force", f"no rule set is in force {when}",
                                     "choose one with --rules FILE, or name it in sample.yaml (rules: ID)")])
    if len(chosen) > 1:
        names = ", ".join(f"{rules.load(p).rules.id} ({p.name})" for p in chosen)
        raise InputError([Diagnostic(where, 1, 1, "ambiguous_ruleset", f"{len(chosen)} rule sets are in force {when}: "
                                     f"{names}", "choose one with --rules FILE, or name it in sample.yaml (rules: ID)")])
    return chosen[0]


@functools.lru_cache(maxsize=8)
def _compiled(path: str, mtime_ns: int, size: int, looked: tuple) -> compiler.CompiledRuleSet:
    return compiler.compile_rules(rules.load(path))


def compiled_rules(path: str | os.PathLike[str]) -> compiler.CompiledRuleSet:
    """Load, validate and compile a rule set file (cached per file content and framework search
    path, and only while the framework file it was compiled against is unchanged where it was
    found). Raises InputError."""
    try:
        stat = os.stat(path)
    except OSError:
        return compiler.compile_rules(rules.load(path))  # reports unreadable_file
    key = (str(path), stat.st_mtime_ns, stat.st_size, tuple(map(str, frameworks.search_path())))
    compiled = _compiled(*key)
    if not _framework_unchanged(compiled):
        _compiled.cache_clear()
        compiled = _compiled(*key)
    return compiled


def _framework_unchanged(compiled: compiler.CompiledRuleSet) -> bool:
    """Whether the framework file a compiled rule set was checked against is still there, unchanged."""
    found = compiled.loaded.framework_path
    if found is None:
        return True
    try:
        return frameworks.load(found) is compiled.loaded.framework
    except InputError:
        return False  # moved or removed since


def load_case(path: str | os.PathLike[str], compiled: compiler.CompiledRuleSet) -> sample.Loaded:
    """Load and validate a case file against the rule set's framework (through the validated-case
    cache when the framework's file is known). Raises InputError."""
    if compiled.loaded.framework_path is None:
        return sample.check_file(path, expect="case", framework=compiled.loaded.framework)
    return sample.load_case(path, resources.display(path), compiled.loaded.framework_path)


def stored_rules(ruleset: dict, where: str | os.PathLike[str]) -> compiler.CompiledRuleSet:
    """The rule set a stored run names (its ``ruleset`` entry), read again from its file, which must
    still be the rule set the run recorded (the same sha256, bases included). Raises InputError."""
    path = ruleset["file"]
    try:
        compiled = compiled_rules(resources.locate(path))
    except InputError as error:
        raise InputError([Diagnostic(str(where), 1, 1, "input_unavailable", f"the run's rule set {path} cannot be "
                                     "read, and the final figures are computed by its sample rules",
                                     "keep the rule set a run used where it was, or give it back")]
                         + list(error.diagnostics)) from None
    if compiled.loaded.sha256 != ruleset["sha256"]:
        raise InputError([Diagnostic(path, 1, 1, "input_changed", f"the rule set changed since the run (sha256 "
                                     f"{compiled.loaded.sha256[:12]}, the run recorded {ruleset['sha256'][:12]})",
                                     "restore the rule set the run used to compute its final figures")])
    return compiled


def stored_case(report: dict, result: dict) -> tuple[compiler.CompiledRuleSet, sample.Loaded]:
    """The rule set and case file a stored run judged, read again from their paths: both must still
    hash to what the run recorded. Raises InputError when either is missing or has changed."""
    problems = []
    ruleset = report["ruleset"]
    for path, expected, what in ((ruleset["file"], ruleset["sha256"], "rule set"),
                                 (result["file"], result["sha256"], "case file")):
        try:
            actual = hashlib.sha256(resources.locate(path).read_bytes()).hexdigest()
        except OSError as error:
            problems.append(Diagnostic(path, 1, 1, "input_unavailable", f"the run's {what} cannot be read: "
                                       f"{error.strerror or error}", "run from the folder the run was made in"))
            continue
        if actual != expected:
            problems.append(Diagnostic(path, 1, 1, "input_changed", f"the {what} changed since the run "
                                       f"(sha256 {actual[:12]}, the run recorded {expected[:12]})",
                                       "explain the file as it is now, without --run"))
    if problems:
        raise InputError(problems)
    compiled = compiled_rules(resources.locate(ruleset["file"]))
    return compiled, load_case(resources.locate(result["file"]), compiled)


def evaluate_case(compiled: compiler.CompiledRuleSet, case: sample.Loaded):
    """Evaluate one validated case on durable_rules; returns (evaluation, judgement)."""
    attributes = facts.case_attributes(case.model, compiled.loaded.framework, compiled.schema)
    evaluation = evaluator.evaluate(compiled, attributes)
    return evaluation, judge.judge(compiled, evaluation)


def case_result(compiled: compiler.CompiledRuleSet, case: sample.Loaded, observe=None) -> dict:
    """Evaluate, judge and trace one case: the dict ``qi evaluate --format json`` prints. A case
    carrying the inspector's judgements gets them beside the engine's findings (``judgements``).
    ``observe(compiled, evaluation, case)``, if given, is shown the evaluation and its record."""
    return case_outcome(compiled, case, observe)[0]


def case_outcome(compiled: compiler.CompiledRuleSet, case: sample.Loaded,
                 observe=None) -> tuple[dict, list[Diagnostic]]:
    """The case's result and its warnings: criteria not assessed (naming the expected items left
    unanswered) and answers that disagree with what the case context expects."""
    line, found, _ = case_evaluated(compiled, case, observe)
    return trace.expand(line, trace.rule_table(compiled)), found


def case_evaluated(compiled: compiler.CompiledRuleSet, case: sample.Loaded,
                   observe=None) -> tuple[dict, list[Diagnostic], evaluator.Evaluation]:
    """:func:`case_outcome`, the result as the case's line (:func:`trace.case_line`: what a run
    keeps), and the evaluation it came from (a sample run reads its final fact)."""
    evaluation, judgement = evaluate_case(compiled, case)
    if observe is not None:
        observe(compiled, evaluation, case)
    result = trace.case_line(compiled, case, evaluation, judgement)
    if case.model.judgements:
        result["judgements"] = judgement_rows(compiled, case.model, evaluation, judgement)
    expected = expectations(compiled, evaluation.fact)
    found = not_assessed_warnings(result, case, expected) + applicability_warnings(case, expected)
    return result, found + rule_warnings(compiled, evaluation, case), evaluation


def rule_warnings(compiled: compiler.CompiledRuleSet, evaluation, case: sample.Loaded) -> list[Diagnostic]:
    """The ``warning`` of every rule that fired on the case, at the first item it cites that the
    inspector answered (else at the case)."""
    found = []
    for index in evaluation.fired:
        rule = compiled.rules[index].rule
        if getattr(rule, "warning", None):
            answered = next((item for item in rule.cites if item in case.model.evidence), None)
            at = ("evidence", answered, "answer") if answered else ("case",)
            found.append(case.document.diagnostic(at, "rule_warning", f"{rule.warning} (rule {rule.id})",
                                                  "record it in the case file, or check the answer", severity="warning"))
    return found


def judgement_rows(compiled: compiler.CompiledRuleSet, model, evaluation, judgement) -> list[dict]:
    """Engine and inspector side by side per criterion the inspector judged, disagreements first;
    each disagreement with ``what_if``: the smallest answer changes that would make the engine's
    finding the inspector's (an empty list when no change of answers would)."""
    order = [c.id for c in compiled.loaded.framework.criteria()]
    rows = agreement.compare({c: f.value for c, f in judgement.findings.items()},
                             {c: j.model_dump() for c, j in model.judgements.items()}, order)
    conditions_of = None
    for row in rows:
        if row["agree"]:
            continue
        conditions_of = conditions_of or whatif.FindingConditions(compiled)
        found = whatif.what_if(compiled, evaluation.fact, row["criterion"], row["engine"], (row["inspector"],),
                               conditions_of=conditions_of)
        row["rules"] = [compiled.rules[i].label for i in judgement.findings[row["criterion"]].rules]
        row["what_if"] = {"alternatives": found.as_list(), "unreachable": bool(found.unreachable),
                          "beyond": bool(found.beyond), "max_changes": found.max_changes}
    return rows


class Expectation(NamedTuple):
    """What the case context says of one line a criterion declaration counts."""

    item: str
    expected: bool   # core, or its expected_when holds for this case
    core: bool       # counted in every case
    protected: bool  # short of met is decisive in this case: a protection line where protection is the
    #                  priority, or a decisive_when line whose condition holds
    key: bool = False  # not met is decisive in this case: a key line, or a key_when line whose condition holds


def expectations(compiled: compiler.CompiledRuleSet, fact: dict) -> dict[str, list[Expectation]]:
    """Per declared case criterion, what the case context says of each line it counts, read from
    the declarations (their conditions lowered and tested on the case's fact)."""
    found: dict[str, list[Expectation]] = {}
    for declared, when, protection_when, key_when, decisive_when in _declared_conditions(compiled):
        priority = protection_when is not None and conditions.holds(protection_when, fact)
        found[declared.criterion] = [
            Expectation(item, item in declared.core or conditions.holds(when[item], fact), item in declared.core,
                        (priority and item in declared.protection)
                        or (item in decisive_when and conditions.holds(decisive_when[item], fact)),
                        item in declared.key or (item in key_when and conditions.holds(key_when[item], fact)))
            for item in declared.core + list(declared.expected_when)]
    return found


def _declared_conditions(compiled: compiler.CompiledRuleSet) -> list[tuple]:
    """Each case criterion declaration with its expected_when and protection_when conditions
    parsed and lowered, once per compiled rule set."""
    def make() -> list[tuple]:
        parse = TypeAdapter(Condition).validate_python
        context = {"framework": compiled.loaded.framework}
        lowered = lambda raw: conditions.lower(parse(raw, context=context), compiled.schema)  # noqa: E731
        return [(declared, {item: lowered(raw) for item, raw in declared.expected_when.items()},
                 None if declared.protection_when is None else lowered(declared.protection_when),
                 {item: lowered(raw) for item, raw in declared.key_when.items()},
                 {item: lowered(raw) for item, raw in declared.decisive_when.items()})
                for declared in compiled.ruleset.criteria]

    return compiled.cached(("declared conditions",), make)


def not_assessed_warnings(result: dict, case: sample.Loaded,
                          expected: dict[str, list[Expectation]] | None = None) -> list[Diagnostic]:
    """A warning for each case-scoped criterion no rule concluded on, naming the expected items
    the inspector left unanswered."""
    found = []
    for criterion in result["not_assessed"]:
        missing = [line.item for line in (expected or {}).get(criterion, [])
                   if line.expected and line.item not in case.model.evidence]
        named = f": expected {', '.join(missing)} not answered" if missing else ""
        found.append(case.document.diagnostic(("case",), "not_assessed",
                                              f"no rule concluded a finding on criterion {criterion}{named}",
                                              "record evidence on its items, or add a rule for it",
                                              severity="warning"))
    return found


def applicability_warnings(case: sample.Loaded, expected: dict[str, list[Expectation]]) -> list[Diagnostic]:
    """Answers that disagree with the case context, at the answer's position: not_applicable on
    a line the context expects (on a protection line where protection is the priority, the
    criterion then stays not assessed), or an answer on a line the context does not call for (it
    still counts: an explicit answer is never dropped). A core line answered not_applicable is
    the inspector's call and is not warned, unless it is such a protection line."""
    found = []
    for criterion, lines in expected.items():
        for line in lines:
            entry = case.model.evidence.get(line.item)
            if entry is None:
                continue
            at = ("evidence", line.item, "answer")
            if line.expected and line.protected and entry.answer == "not_applicable":
                found.append(case.document.diagnostic(
                    at, "expected_not_applicable",
                    f"{line.item} is answered not_applicable, but it is decisive in this case (a protection line "
                    f"where protection is the priority, or a line the case context makes decisive): criterion "
                    f"{criterion} cannot be sufficient without it",
                    "answer the line, or check the case's context fields", severity="warning"))
            elif line.expected and not line.core and entry.answer == "not_applicable":
                found.append(case.document.diagnostic(
                    at, "expected_not_applicable", f"{line.item} is answered not_applicable but the case context "
                    f"shows the condition it is about: criterion {criterion} cannot be sufficient without it",
                    "answer the line, or check the case's context fields", severity="warning"))
            elif not line.expected and entry.answer != "not_applicable":
                found.append(case.document.diagnostic(
                    at, "answered_not_expected",
                    f"{line.item} is answered {entry.answer} but the case context does not call for it (it still "
                    "counts)", "if the item applies, record the context that makes it apply",
                    severity="warning"))
    return found
