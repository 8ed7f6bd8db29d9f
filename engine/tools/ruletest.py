"""Rule tests as data, and coverage measured from their traces.

A rule test file (``rules/tests/*.yaml``) names the rule set it tests and lists tests, each a
``note``, a small case (only the context and evidence that matter; the rest is defaulted) or a
small sample, and what is expected::

    rules: ../hmip-qi-adult-2.0.yaml
    tests:
      - note: concerns for children and harm to children not assessed
        case:
          flags: [child_safeguarding]
          evidence: {3.4.a: no, 3.4.b: "yes"}
        expect:
          findings: {"3.4": insufficient}
          barriers: [children-harm-unassessed]

Coverage is another reader of the same traces: which rules fired in some test, which conditions
were seen both holding and failing, which framework items the tests gave answers on.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from engine.base.diagnostics import Diagnostic, InputError
from engine.base.diagnostics import sort as sort_diagnostics
from engine.check import framework as frameworks
from engine.check import models, sample, validate
from engine.check.sample import Loaded
from engine.compile import compile as compiler
from engine.compile import facts
from engine.judge import trace
from engine.load import source
from engine.run import pipeline, run


class Expectation(models.Strict):
    """What a test expects. Lists must be present; ``not_*`` lists must be absent."""

    findings: dict[str, str] = Field(default_factory=dict, description="Criterion -> expected finding.")
    enablers: list[str] = Field(default_factory=list)
    barriers: list[str] = Field(default_factory=list)
    not_enablers: list[str] = Field(default_factory=list)
    not_barriers: list[str] = Field(default_factory=list)
    ratings: dict[str, str] = Field(default_factory=dict,
                                    description="Sample tests: \"3.4\", \"3.4/EAST\", \"standard 3\" -> band, or "
                                                "unrated (no band concluded).")
    recommendations: list[str] = Field(default_factory=list, description="Sample tests: recommendation ids.")
    not_recommendations: list[str] = Field(default_factory=list)
    recommended_to: dict[str, list[str]] = Field(
        default_factory=dict, description="Sample tests: recommendation id -> every body it is addressed to, exactly.")
    organisations: dict[str, dict[str, str]] = Field(default_factory=dict,
                                                     description="Sample tests: provider -> criterion -> finding.")
    organisation_barriers: dict[str, list[str]] = Field(
        default_factory=dict, description="Sample tests: provider -> barriers its organisation evidence shows.")
    organisation_enablers: dict[str, list[str]] = Field(
        default_factory=dict, description="Sample tests: provider -> enablers its organisation evidence shows.")
    not_organisation_barriers: dict[str, list[str]] = Field(
        default_factory=dict, description="Sample tests: provider -> barriers its organisation evidence must not show.")
    not_organisation_enablers: dict[str, list[str]] = Field(
        default_factory=dict, description="Sample tests: provider -> enablers its organisation evidence must not show.")


class SampleSpec(models.Strict):
    cases: Annotated[list[dict], Field(min_length=1)] = Field(
        description="Small cases; a case with `count: N` stands for N identical cases.")
    organisations: list[dict] = Field(default_factory=list)


class RuleTest(models.Strict):
    note: str = Field(min_length=1, description="What the test shows, in words.")
    case: dict | None = Field(default=None, description="A case: only the fields that matter.")
    sample: SampleSpec | None = Field(default=None, description="A small sample, for sample-level rules.")
    expect: Expectation


class RuleTestFile(models.Strict):
    """A file of rule tests."""

    rules: str = Field(description="The rule set under test, relative to this file.")
    tests: Annotated[list[RuleTest], Field(min_length=1)]




@dataclasses.dataclass
class Outcome:
    path: str
    note: str
    line: int
    failures: list[str]
    fired: list[str]
    #: every rule id that fired anywhere in the test (case, organisation and sample rules)
    touched: frozenset = frozenset()

    @property
    def passed(self) -> bool:
        return not self.failures

    def render(self) -> str:
        return (f"{self.path}:{self.line}: test '{self.note}': " + "; ".join(self.failures)
                + f" — rules fired: {', '.join(self.fired) or 'none'}")


@dataclasses.dataclass
class Coverage:
    """Rules fired, conditions seen both ways and items exercised, over every test run."""

    rules: dict[tuple[str, str], bool] = dataclasses.field(default_factory=dict)     # (file:line, id) -> fired
    conditions: dict[tuple, set] = dataclasses.field(default_factory=dict)  # (at, text, rule path) -> outcomes
    items_answered: set[str] = dataclasses.field(default_factory=set)
    items: list[str] = dataclasses.field(default_factory=list)
    #: rules some test checks (removing the rule fails a test); None until mutants have run
    checked: set[str] | None = None

    def register(self, compiled: compiler.CompiledRuleSet) -> None:
        """Count every rule of a section, so rules no test reaches show as never fired."""
        for rule in compiled.rules:
            self.rules.setdefault((compiled.loaded.document.at(rule.loc), rule.rule.id), False)

    def observe(self, compiled: compiler.CompiledRuleSet, evaluation, subject=None, aggregates=None) -> None:
        """Read one recorded evaluation (a case, an organisation or the sample): the rules its
        record says fired, and every rule's conditions as its trace shows them (their outlines:
        places, texts and outcomes)."""
        for node in trace.Trace(compiled, evaluation, subject, aggregates).outlines():
            self.add_rule(node)
        if subject is not None:
            self.items_answered |= set(subject.model.evidence)

    def add_rule(self, node: dict) -> None:
        key = (node["at"], node["rule"])
        self.rules[key] = self.rules.get(key, False) or node["fired"]
        self._condition(node["condition"], (node["rule"],))

    def _condition(self, node: dict, path: tuple) -> None:
        """One condition of a rule, named by its rule and place in the rule (rules expanded from
        one criterion declaration share its position, and "this does not hold" reads alike)."""
        self.conditions.setdefault((node["at"], node["text"], path), set()).add(node["holds"])
        for index, child in enumerate(node.get("children", [])):
            self._condition(child, path + (index,))

    @property
    def rule_percent(self) -> float:
        return 100 * sum(self.rules.values()) / len(self.rules) if self.rules else 100.0

    @property
    def condition_percent(self) -> float:
        both = sum(1 for seen in self.conditions.values() if len(seen) == 2)
        return 100 * both / len(self.conditions) if self.conditions else 100.0

    @property
    def checked_percent(self) -> float | None:
        """Rules whose removal fails some test, as a percentage of all rules (None before --mutants)."""
        if self.checked is None:
            return None
        ids = {rule_id for _, rule_id in self.rules}
        return 100 * len(ids & self.checked) / len(ids) if ids else 100.0

    def table(self) -> str:
        fired = sum(self.rules.values())
        both = sum(1 for seen in self.conditions.values() if len(seen) == 2)
        exercised = [i for i in self.items if i in self.items_answered]
        ids = {rule_id for _, rule_id in self.rules}
        if self.checked is None:
            checked_line = "rules checked:       run with --mutants (a rule is checked when removing it fails a test)"
        else:
            done = len(ids & self.checked)
            checked_line = (f"rules checked:      {100 * done / len(ids) if ids else 100:5.1f}%  ({done} of {len(ids)} "
                            "rules whose removal fails some test)")
        lines = [f"rule coverage:      {self.rule_percent:5.1f}%  ({fired} of {len(self.rules)} rules fired in some test)",
                 checked_line,
                 f"condition coverage: {self.condition_percent:5.1f}%  ({both} of {len(self.conditions)} conditions "
                 f"seen both holding and failing)",
                 f"items exercised:    {len(exercised)} of {len(self.items)} framework items answered in tests"]
        never = sorted((key for key, was_fired in self.rules.items() if not was_fired),
                       key=lambda key: (key[0].rpartition(":")[0], int(key[0].rpartition(":")[2])))
        if never:
            lines.append("rules that never fired:")
            lines += [f"  {at}  {rule_id}" for at, rule_id in never]
        return "\n".join(lines) + "\n"


def load(path: str | os.PathLike[str]) -> tuple[source.Document, RuleTestFile]:
    document = source.load(path)
    return document, validate.to_model(document, RuleTestFile)


def discover(paths: list[str | os.PathLike[str]]) -> list[Path]:
    """Test files among ``paths`` (folders are searched for ``*.yaml``)."""
    found: list[Path] = []
    for path in map(Path, paths):
        found += sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
    return found


@dataclasses.dataclass(frozen=True)
class Sections:
    """The three compiled sections of one rule set, as the tests run them."""

    cases: compiler.CompiledRuleSet
    organisation: compiler.CompiledRuleSet
    whole: compiler.CompiledRuleSet

    @classmethod
    def of(cls, loaded) -> Sections:
        return cls(compiler.compile_rules(loaded), compiler.compile_organisation(loaded),
                   compiler.compile_sample(loaded))


def run_file(path: str | os.PathLike[str], coverage: Coverage | None = None) -> list[Outcome]:
    """Run every test in a file. Raises InputError if the file or its rule set is invalid."""
    document, tests, rules_path = _prepare(path)
    compiled = pipeline.compiled_rules(rules_path)
    sections = Sections(compiled, compiler.compile_organisation(compiled.loaded),
                        compiler.compile_sample(compiled.loaded))
    if coverage is not None:
        coverage.items = coverage.items or compiled.loaded.framework.item_ids()
        for section in (sections.cases, sections.organisation, sections.whole):
            coverage.register(section)
    return run_tests(document, tests, rules_path, sections, coverage)


def _prepare(path) -> tuple[source.Document, RuleTestFile, Path]:
    document, tests = load(path)
    return document, tests, (Path(path).parent / tests.rules).resolve()


def run_tests(document, tests: RuleTestFile, rules_path: Path, sections: Sections,
              coverage: Coverage | None = None, only: set[int] | None = None) -> list[Outcome]:
    """Run the tests of one file (those numbered in ``only``, if given) on compiled sections."""
    outcomes, problems = [], []
    for index, test in enumerate(tests.tests):
        if only is not None and index not in only:
            continue
        at = ("tests", index)
        try:
            if test.case is not None:
                outcomes.append(_run_case(document, sections.cases, test, at, coverage))
            elif test.sample is not None:
                outcomes.append(_run_sample(document, rules_path, sections, test, at, coverage))
            else:
                problems.append(document.diagnostic(at, "missing_field", "a test needs a case or a sample",
                                                    "add case: or sample:"))
        except InputError as error:
            problems += error.diagnostics
    if problems:
        raise InputError(problems)
    return outcomes


#: The period a rule test's sample covers, and the cases' dates default to.
TEST_PERIOD = (datetime.date(2016, 1, 1), datetime.date(2016, 3, 31))


def _case_data(spec: dict, framework: models.Framework, number: int) -> dict:
    """A full case file from a test's partial case: every required field the test leaves out takes
    a default from the framework (the first term of its vocabulary), a date in the test period."""
    data = {"case": f"T-{number}", "provider": framework.vocabulary.ids("providers")[0]}
    given = {k: v for k, v in spec.items() if k != "count"}
    return _expand_evidence({**data, **_defaults(framework, framework.vocabulary.case_file, given)})


def _defaults(framework: models.Framework, fields: list[models.CaseField], given: dict) -> dict:
    data = dict(given)
    for field in fields:
        if field.id in given and not (field.type == "mapping" and isinstance(given[field.id], dict)):
            continue
        if field.type == "mapping" and (field.required or field.id in given):
            data[field.id] = _defaults(framework, field.fields, given.get(field.id) or {})
        elif field.required and field.type == "term":
            data[field.id] = framework.vocabulary.ids(field.terms)[0]
        elif field.required and field.type == "date":
            data[field.id] = TEST_PERIOD[0] + datetime.timedelta(days=3)
        elif field.required and field.type == "number":
            data[field.id] = 0
    return data


def _expand_evidence(data: dict) -> dict:
    """``3.4.a: no`` is shorthand for ``3.4.a: {answer: no}``."""
    evidence = data.get("evidence")
    if isinstance(evidence, dict):
        data = {**data, "evidence": {item: {"answer": value} if isinstance(value, str) else value
                                     for item, value in evidence.items()}}
    return data


def _view(document: source.Document, at: tuple, data: Any) -> source.Document:
    """The part of the test document at ``at`` as a document of its own (positions kept)."""
    marks = {loc[len(at):]: mark for loc, mark in document.marks.items() if loc[:len(at)] == at}
    return source.Document(document.path, data, marks, document.sha256)


def _loaded_case(document, spec: dict, at: tuple, framework, number: int) -> Loaded:
    data = _case_data(spec, framework, number)
    model = validate.to_model(document, "case", framework, data=data, at=at)
    return Loaded(_view(document, at, data), model)


def _run_case(document, compiled, test: RuleTest, at: tuple, coverage: Coverage | None) -> Outcome:
    framework = compiled.loaded.framework
    case = _loaded_case(document, test.case, at + ("case",), framework, 1)
    evaluation, judgement = pipeline.evaluate_case(compiled, case)
    result = trace.case_result(compiled, case, evaluation, judgement)
    if coverage is not None:
        coverage.observe(compiled, evaluation, case)
    expect = test.expect
    failures = _compare_findings(expect.findings, {c: f["value"] for c, f in result["findings"].items()})
    failures += _compare_ids("enabler", expect.enablers, expect.not_enablers, [e["id"] for e in result["enablers"]])
    failures += _compare_ids("barrier", expect.barriers, expect.not_barriers, [b["id"] for b in result["barriers"]])
    return Outcome(document.path, test.note, document.where(at)[0], failures, result["rules_fired"],
                   frozenset(compiled.rules[i].rule.id for i in evaluation.fired))


def _run_sample(document, rules_path: Path, sections: Sections, test: RuleTest, at: tuple,
                coverage: Coverage | None) -> Outcome:
    compiled = sections.cases
    framework = compiled.loaded.framework
    cases, number = [], 0
    for index, spec in enumerate(test.sample.cases):
        for _ in range(int(spec.get("count", 1))):
            number += 1
            cases.append(_loaded_case(document, spec, at + ("sample", "cases", index), framework, number))
    organisations = [Loaded(_view(document, at + ("sample", "organisations", i), _expand_evidence(spec)),
                            validate.to_model(document, "organisation", framework, data=_expand_evidence(spec),
                                              at=at + ("sample", "organisations", i)))
                     for i, spec in enumerate(test.sample.organisations)]
    manifest = models.SampleManifest(id="rule-test", title=test.note, area="rule test",
                                     period=models.Period(start=TEST_PERIOD[0], end=TEST_PERIOD[1]),
                                     framework=models.FrameworkRef(id=framework.id, version=framework.version))
    framework_path = compiled.loaded.framework_path or frameworks.bundled()[(framework.id, framework.version)]
    loaded_sample = sample.Sample(document.location.parent, Loaded(document, manifest), framework, framework_path,
                                  cases, organisations, [])
    prepared = run.Prepared(loaded_sample, rules_path, compiled, sections.organisation, sections.whole)
    touched: set[str] = set()

    def observe(section: compiler.CompiledRuleSet, evaluation, *args, **kwargs) -> None:
        """Each evaluation the run records: the rules it fired (and coverage, if measured)."""
        touched.update(section.rules[i].rule.id for i in evaluation.fired)
        if coverage is not None:
            coverage.observe(section, evaluation, *args, **kwargs)

    report = run.run(prepared, observe=observe)
    judged = report["sample_judgement"]
    expect = test.expect
    ratings = {(r["target"] if r["group"] == "all" else f"{r['target']}/{r['group']}"): r["band"]
               for r in judged["ratings"]}
    targets = {c.id for c in framework.criteria_of("case")} | {f"standard {st.id}" for st in framework.standards}
    targets.add(facts.OVERALL)
    providers = set(framework.vocabulary.ids("providers"))
    unknown = [key for key in expect.ratings if key.partition("/")[0] not in targets
               or (key.partition("/")[2] and key.partition("/")[2] not in providers)]
    failures = [f"{key!r} names no rated target (a case-scoped criterion, \"standard ID\" or \"overall\", with "
                "/PROVIDER for one provider)" for key in unknown]
    failures += [f"expected {target} rated {band}, got {ratings.get(target, 'unrated')}"
                 for target, band in expect.ratings.items() if target not in unknown
                 and ratings.get(target, "unrated") != band]
    failures += _compare_ids("recommendation", expect.recommendations, expect.not_recommendations,
                             [r["id"] for r in judged["recommendations"]])
    for recommendation_id, wanted in expect.recommended_to.items():
        addressed = sorted({to for r in judged["recommendations"] if r["id"] == recommendation_id for to in r["to"]})
        if addressed != sorted(set(wanted)):
            failures.append(f"expected recommendation {recommendation_id} addressed to "
                            f"{', '.join(sorted(set(wanted))) or 'nobody'}, got {', '.join(addressed) or 'nobody'}")
    failures += _compare_ids("enabler", expect.enablers, expect.not_enablers, [e["id"] for e in judged["enablers"]])
    failures += _compare_ids("barrier", expect.barriers, expect.not_barriers, [b["id"] for b in judged["barriers"]])
    organisations_found = {o["organisation"]: {c: f["value"] for c, f in o["findings"].items()}
                           for o in report["organisations"]}
    for provider, findings in expect.organisations.items():
        failures += [f"{provider}: {failure}" for failure in
                     _compare_findings(findings, organisations_found.get(provider, {}))]
    by_provider = {o["organisation"]: o for o in report["organisations"]}
    for kind, wanted, unwanted in (("barrier", expect.organisation_barriers, expect.not_organisation_barriers),
                                   ("enabler", expect.organisation_enablers, expect.not_organisation_enablers)):
        for provider in dict.fromkeys([*wanted, *unwanted]):
            present = [f["id"] for f in by_provider.get(provider, {}).get(kind + "s", [])]
            failures += [f"{provider}: {failure}"
                         for failure in _compare_ids(kind, wanted.get(provider, []), unwanted.get(provider, []), present)]
    return Outcome(document.path, test.note, document.where(at)[0], failures, judged["rules_fired"],
                   frozenset(touched))


def _compare_findings(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    return [f"expected {criterion} {value}, got {actual.get(criterion, 'no finding')}"
            for criterion, value in expected.items() if actual.get(criterion) != value]


def _compare_ids(kind: str, present: list[str], absent: list[str], actual: list[str]) -> list[str]:
    failures = [f"expected {kind} {name}, not concluded" for name in present if name not in actual]
    failures += [f"expected no {kind} {name}, but it was concluded" for name in absent if name in actual]
    return failures


def run_all(paths: list[str | os.PathLike[str]], coverage: Coverage | None = None
            ) -> tuple[list[Outcome], list[Diagnostic]]:
    """Run every test file; returns the outcomes and the diagnostics of files that could not run."""
    outcomes, problems = [], []
    for path in discover(paths):
        try:
            outcomes += run_file(path, coverage)
        except InputError as error:
            problems += error.diagnostics
    return outcomes, problems



# --- mutation testing -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mutant:
    """A rule set with one rule removed (``remove``) or one of its top-level conditions negated
    (``negate``), and the tests that detect it: a test that passes on the rule set and fails on
    the mutant. A mutant no test detects is a rule (or condition) no test checks."""

    kind: str
    section: str
    rule: str
    condition: str
    killed_by: tuple[str, ...]

    @property
    def survived(self) -> bool:
        return not self.killed_by

    def as_dict(self) -> dict:
        return {"kind": self.kind, "section": self.section, "rule": self.rule, "condition": self.condition,
                "survived": self.survived, "killed_by": list(self.killed_by)}

    def render(self) -> str:
        what = f"rule {self.rule} removed" if self.kind == "remove" else f"rule {self.rule}: not ({self.condition})"
        return f"survived: {what} ({self.section})"


def _without(loaded, section: str, index: int):
    kept = [r for i, r in enumerate(getattr(loaded.rules, section)) if i != index]
    return dataclasses.replace(loaded, rules=loaded.rules.model_copy(update={section: kept}))


def _negations(rule) -> list[tuple[str, Any]]:
    """The rule with each top-level condition negated in turn (the whole condition if it is one)."""
    from engine.check.rules.conditions import logic
    parts = list(rule.when.all) if isinstance(rule.when, logic.AllCondition) else [rule.when]
    variants = []
    for index, part in enumerate(parts):
        negated = logic.NotCondition.model_construct(not_=part)
        when = (logic.AllCondition.model_construct(all=[*parts[:index], negated, *parts[index + 1:]])
                if len(parts) > 1 else negated)
        variants.append((part.describe(), rule.model_copy(update={"when": when})))
    return variants


def _with_rule(loaded, section: str, index: int, rule):
    changed = list(getattr(loaded.rules, section))
    changed[index] = rule
    return dataclasses.replace(loaded, rules=loaded.rules.model_copy(update={section: changed}))


def _factors(loaded) -> set:
    """The enablers and barriers the case rules can conclude (what the sample rules read)."""
    from engine.check import rules as language
    return {(type(c).__name__, (getattr(c, "enabler", None) or getattr(c, "barrier", None)).model_dump_json())
            for r in loaded.rules.rules for c in r.then
            if isinstance(c, (language.EnablerConclusion, language.BarrierConclusion))}


def _sections_for(base: Sections, mutated, section: str) -> Sections:
    """The mutant's sections: the mutated one compiled afresh, and the sample rules with it (they
    read the barriers and enablers the case rules conclude)."""
    if section == "rules":
        return dataclasses.replace(base, cases=compiler.compile_rules(mutated), whole=compiler.compile_sample(mutated)
                                   if _factors(mutated) != _factors(base.cases.loaded) else base.whole)
    if section == "organisation_rules":
        return dataclasses.replace(base, organisation=compiler.compile_organisation(mutated))
    return dataclasses.replace(base, whole=compiler.compile_sample(mutated))


@dataclasses.dataclass
class _Mutating:
    """What every mutant of one rule set is judged against: its tests, their outcomes on the rule
    set as written, and its compiled sections."""

    group: list
    baseline: list
    base: Sections
    loaded: Any


#: The rule sets being mutated, by path: set before worker processes fork, so they inherit it.
_MUTATING: dict[str, _Mutating] = {}


def _variants(loaded, section: str, index: int, negate: bool) -> list[tuple[str, str, Any, str | None]]:
    rule = getattr(loaded.rules, section)[index]
    variants = [("remove", "", _without(loaded, section, index), rule.id)]
    if negate and section != "sample_rules":
        variants += [("negate", text, _with_rule(loaded, section, index, changed), None)
                     for text, changed in _negations(rule)]
    return variants


def _detect(state: _Mutating, sections: Sections, select) -> tuple[str, ...]:
    killed = []
    for (doc, tests, path), before in zip(state.group, state.baseline):
        chosen = sorted(i for i, outcome in before.items() if outcome.passed and select(tests.tests[i], outcome))
        if not chosen:
            continue
        try:
            after = run_tests(doc, tests, path, sections, only=set(chosen))
        except Exception as error:  # noqa: BLE001 — a mutant that cannot even run is detected
            return (f"{doc.path}: the mutant cannot run ({type(error).__name__})",)
        killed += [f"{o.path}:{o.line}" for o in after if not o.passed]
    return tuple(killed)


def _mutant(spec: tuple[str, str, int, int, bool]) -> Mutant:
    """One mutant — rule set, section, rule index, variant — judged against the tests (in a worker
    process or this one)."""
    rules_path, section, index, which, negate = spec
    state = _MUTATING[rules_path]
    rule = getattr(state.loaded.rules, section)[index]
    kind, text, mutated, only_fired = _variants(state.loaded, section, index, negate)[which]
    try:
        sections = _sections_for(state.base, mutated, section)
    except InputError:
        return Mutant(kind, section, rule.id, text, ("validation",))
    if only_fired is not None:
        killed = _detect(state, sections, lambda test, outcome: rule.id in outcome.touched)
    else:
        killed = _detect(state, sections, lambda test, outcome: test.case is not None or rule.id in outcome.touched)
    return Mutant(kind, section, rule.id, text, killed)


def mutants(paths: list[str | os.PathLike[str]], negate: bool = True, checked: Coverage | None = None,
            jobs: int = 1, advance=None) -> list[Mutant]:
    """Every mutant of the rule sets the test files name, each with the tests that detect it, in
    ``jobs`` processes (the same list, in the same order, whatever ``jobs`` is); ``advance`` is
    told how many mutants there are (``advance(0, total=N)``), then called once per mutant judged.

    Removing a rule changes only the tests in which it fired, so only those are run again. A
    negated condition is run against every case test and every sample test in which its rule
    fired (a negation that would first fire inside a sample test alone is reported as surviving:
    the report errs towards listing too many). Sample rules are only removed, not negated. A rule
    set that extends another mutates only its own file's rules; the base's are mutated with the
    tests written for the base."""
    files = [_prepare(path) for path in discover(paths)]
    specs = []
    for rules_path in sorted({f[2] for f in files}):
        group = [f for f in files if f[2] == rules_path]
        compiled = pipeline.compiled_rules(rules_path)
        loaded = compiled.loaded
        base = Sections(compiled, compiler.compile_organisation(loaded), compiler.compile_sample(loaded))
        baseline = [dict(enumerate(run_tests(doc, tests, path, base))) for doc, tests, path in group]
        _MUTATING[str(rules_path)] = _Mutating(group, baseline, base, loaded)
        for section in ("rules", "organisation_rules", "sample_rules"):
            for index, _rule in enumerate(getattr(loaded.rules, section)):
                if loaded.document.file_of((section, index)) != loaded.document.path:
                    continue  # inherited through extends: mutated with its own file's tests
                specs += [(str(rules_path), section, index, which, negate)
                          for which in range(len(_variants(loaded, section, index, negate)))]
    if advance is not None:
        advance(0, total=len(specs))
    try:
        found = _each(specs, jobs, advance)
    finally:
        _MUTATING.clear()
    if checked is not None:
        checked.checked = {m.rule for m in found if m.kind == "remove" and not m.survived}
    return found


def _each(specs: list, jobs: int, advance) -> list[Mutant]:
    """:func:`_mutant` of every spec, in order, in ``jobs`` forked processes (each with its own
    durable_rules host, made after the fork)."""
    if jobs <= 1 or len(specs) < 2:
        found = []
        for spec in specs:
            found.append(_mutant(spec))
            if advance is not None:
                advance(1)
        return found
    import concurrent.futures
    import multiprocessing

    found = []
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        for mutant in pool.map(_mutant, specs, chunksize=max(1, min(8, len(specs) // (jobs * 8)))):
            found.append(mutant)
            if advance is not None:
                advance(1)
    return found


@dataclasses.dataclass
class Results:
    """One `qi rules test`: the outcomes, file problems, coverage and (optionally) mutants, with
    what the command says and whether it fails."""

    outcomes: list[Outcome]
    problems: list[Diagnostic]
    coverage: Coverage
    fail_under: float | None = None
    made: list[Mutant] | None = None

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed]

    @property
    def survivors(self) -> list[Mutant]:
        return [m for m in self.made or [] if m.survived]

    @property
    def below(self) -> bool:
        return self.fail_under is not None and self.coverage.rule_percent < self.fail_under

    @property
    def failing(self) -> bool:
        """A failed test, a file problem, coverage below the bar, no test at all, or a rule whose
        removal no test detects."""
        return bool(self.failed or self.problems or self.below or not self.outcomes
                    or any(m.kind == "remove" for m in self.survivors))

    def as_dict(self) -> dict:
        """What ``--format json`` prints."""
        measured = self.coverage
        return {"passed": len(self.outcomes) - len(self.failed), "failed": len(self.failed),
                "tests": [{"path": o.path, "line": o.line, "note": o.note, "passed": o.passed,
                           "failures": o.failures, "rules_fired": o.fired} for o in self.outcomes],
                "diagnostics": [d.as_dict() for d in sort_diagnostics(self.problems)],
                "coverage": {"rules": round(measured.rule_percent, 1),
                             "rules_checked": (None if measured.checked_percent is None
                                               else round(measured.checked_percent, 1)),
                             "conditions": round(measured.condition_percent, 1)},
                **({"mutants": [m.as_dict() for m in self.made]} if self.made is not None else {})}

    def text(self, show_coverage: bool) -> tuple[list[str], list[str]]:
        """What the text output prints: lines for stdout, lines for stderr."""
        out = [m.render() for m in self.survivors]
        if self.made is not None:
            removals = sum(1 for m in self.made if m.kind == "remove")
            out.append(f"mutants: {len(self.made)} ({removals} rule removals), {len(self.survivors)} survived "
                       f"({sum(1 for m in self.survivors if m.kind == 'remove')} rule removals)")
        err = [d.render() for d in sort_diagnostics(self.problems)]
        out += [o.render() for o in self.failed]
        if show_coverage or self.fail_under is not None:
            out.append(self.coverage.table().rstrip("\n"))
        out.append(f"{len(self.outcomes) - len(self.failed)} passed, {len(self.failed)} failed")
        if self.below:
            err.append(f"rule coverage {self.coverage.rule_percent:.1f}% is below {self.fail_under:g}%")
        return out, err


def check(paths: list[str | os.PathLike[str]], fail_under: float | None = None, with_mutants: bool = False,
          jobs: int = 1, advance=None) -> Results:
    """Run the rule tests under ``paths`` with coverage, and (``with_mutants``, when every file is
    valid) the mutants that show which rules no test pins down, in ``jobs`` processes."""
    measured = Coverage()
    outcomes, problems = run_all(paths, measured)
    made = (mutants(paths, checked=measured, jobs=jobs, advance=advance) if with_mutants and not problems
            else ([] if with_mutants else None))
    return Results(outcomes, problems, measured, fail_under, made)
