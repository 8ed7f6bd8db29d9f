"""Compile stage: a validated rule set becomes durable_rules rulesets, run in phases.

The stages, in order:

1. **lower** each rule's condition to the In/All/AnyOf tree (:mod:`engine.compile.conditions`);
2. **stratify**: a rule that reads a derived fact runs in a later phase than every rule that can
   derive it. durable_rules has no truth maintenance (a negated pattern fires on partial evidence
   and a queued firing is not cancelled), so each phase's fact carries every fact derived before
   it and nothing derived later; cycles are errors;
3. **split** each condition into alternatives within durable_rules' limits (at most 15 nested
   groups per expression, else error 113);
4. **chunk** each phase's alternatives into rulesets of at most :data:`CHUNK_PATTERNS` patterns:
   one fact satisfying more than 64 sibling conditions fails with error 303;
5. **emit** each chunk as a plain-dict ruleset with a catch-all rule, so that every fact is
   handled (else MessageNotHandledException) and every session matched something (else
   ``delete_state`` segfaults). Chunk names are content hashes, so identical definitions are
   registered once per process.
"""

from __future__ import annotations

import dataclasses
import functools
import graphlib
import itertools

from engine.base.canonical import canonical_sha256
from engine.base.diagnostics import Diagnostic, InputError
from engine.check import rules
from engine.check.rules import form, terms
from engine.check.rules.conditions import answers
from engine.compile import conditions, facts

CHUNK_PATTERNS = 40
CHUNK_ATTRIBUTES = 200
CATCH_ALL = "qi_fact_handled"


@dataclasses.dataclass(frozen=True)
class CompiledRule:
    """One rule (or one ``for_each`` instance of a sample rule), ready to run."""

    index: int
    rule: rules.Rule | rules.SampleRule
    loc: tuple
    line: int
    bindings: dict
    condition: conditions.Node
    phase: int
    writes: tuple[str, ...]
    alternatives: tuple[conditions.Node, ...]

    @functools.cached_property
    def derives(self) -> tuple[str, ...]:
        """The derived facts the rule concludes."""
        return tuple(c.fact for c in self.rule.then if isinstance(c, rules.FactConclusion))

    @property
    def label(self) -> str:
        """The rule id, with its instance for sample rules, e.g. ``band-good[criterion=3.4]``."""
        if not self.bindings:
            return self.rule.id
        return self.rule.id + "[" + ",".join(f"{k}={v}" for k, v in sorted(self.bindings.items())) + "]"


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One durable_rules ruleset: its name, its definition (without actions) and which rule each
    durable rule belongs to."""

    name: str
    definition: dict
    rule_of: dict[str, int]
    reads: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class CompiledRuleSet:
    loaded: rules.LoadedRuleSet
    section: str
    schema: facts.Schema
    rules: tuple[CompiledRule, ...]
    phases: tuple[tuple[Chunk, ...], ...]
    _lowered: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)
    #: Case rules only: the case conditions organisation rules read of the provider's cases
    #: (``provider_cases: where``), each once, as (key, lowered on this schema); every case is
    #: tested against them as it is judged (see :func:`cases_matched`).
    cases_read: tuple[tuple[str, conditions.Node], ...] = ()

    @property
    def ruleset(self) -> rules.RuleSet:
        return self.loaded.rules

    def static(self, condition, loc: tuple) -> tuple:
        """What a trace says of a condition whatever the case: (kind, text, file:line, items read),
        cached, since every case's trace repeats it."""
        key = ("static", id(condition), loc)
        if key not in self._lowered:
            self._lowered[key] = (condition.key, condition.describe(), self.loaded.document.at(loc),
                                  condition.item_ids())
        return self._lowered[key]

    def cached(self, key: tuple, make):
        """A value derived from this rule set alone, made once: traces keep what does not depend on
        the case here."""
        if key not in self._lowered:
            self._lowered[key] = make()
        return self._lowered[key]

    def by_label(self) -> dict[str, int]:
        """Each rule's index by its label (made once)."""
        return self.cached(("rule index by label",), lambda: {r.label: r.index for r in self.rules})

    def lower(self, condition, bindings: dict | None = None) -> conditions.Node:
        """The lowered tree of any condition of this rule set (cached: traces ask for every node)."""
        key = (id(condition), tuple(sorted((bindings or {}).items())))
        if key not in self._lowered:
            if self.section == "sample_rules":
                standards = {s.id: [c.id for c in s.criteria] for s in self.loaded.framework.standards_of("case")}
                self._lowered[key] = conditions.lower_sample(
                    condition, self.schema, bindings or {}, self.ruleset.sample.min_group_size, standards,
                    self.ruleset.sample.gap_points, self.loaded.framework.vocabulary.ids("providers"))
            else:
                self._lowered[key] = conditions.lower(condition, self.schema)
        return self._lowered[key]

    def definitions(self) -> list[dict]:
        """Every chunk's durable_rules definition, in phase order: the golden-tested output."""
        return [{"phase": number, "name": chunk.name, "rules": chunk.definition}
                for number, chunks in enumerate(self.phases) for chunk in chunks]


def compile_rules(loaded: rules.LoadedRuleSet) -> CompiledRuleSet:
    """Compile the case rules of a loaded rule set. Raises InputError (with positions) if they
    cannot run."""
    declared = [f.id for f in loaded.rules.facts]
    read = case_conditions(loaded)
    schema = facts.Schema.for_framework(loaded.framework, declared).counting(
        counts_read([rule.when for rule in loaded.rules.rules] + [condition for _, condition in read]))
    instances = [(index, {}, conditions.lower(rule.when, schema)) for index, rule in enumerate(loaded.rules.rules)]
    lowered = tuple((key, conditions.lower(condition, schema)) for key, condition in read)  # adds their attributes
    return dataclasses.replace(_compile(loaded, "rules", schema, instances), cases_read=lowered)


def case_conditions(loaded: rules.LoadedRuleSet) -> list[tuple[str, rules.Form]]:
    """The case conditions read of each judged case beyond its own rules, each once, by key: those
    the organisation rules read of their provider's cases, and the ``among`` of case enablers and
    barriers (the cases their shares are of)."""
    found: dict[str, rules.Form] = {}
    for rule in loaded.rules.organisation_rules:
        for _, scope, inner in form.nested(rule.when):
            if scope == form.CASE:
                found.setdefault(form.condition_key(inner), inner)
    for among in rules.factor_populations(loaded.rules).values():
        if among is not None:
            found.setdefault(form.condition_key(among.where), among.where)
    return sorted(found.items(), key=lambda pair: pair[0])


def cases_matched(compiled: CompiledRuleSet, fact: dict) -> frozenset[str]:
    """The keys of the case conditions (:func:`case_conditions`) that hold on a case's final fact."""
    return frozenset(key for key, node in compiled.cases_read if conditions.holds(node, fact))


def compile_organisation(loaded: rules.LoadedRuleSet) -> CompiledRuleSet:
    """Compile the rules over organisation evidence (the organisation-scoped standards)."""
    declared = [f.id for f in loaded.rules.facts]
    schema = facts.organisation_schema(loaded.framework, declared).counting(
        counts_read([rule.when for rule in loaded.rules.organisation_rules]))
    instances = [(index, {}, conditions.lower(rule.when, schema))
                 for index, rule in enumerate(loaded.rules.organisation_rules)]
    return _compile(loaded, "organisation_rules", schema, instances)


def counts_read(whens) -> list[tuple]:
    """The (items, answers) pairs that ``at_least`` conditions count, in a list of conditions."""
    return [(tuple(c.at_least.items), tuple(c.at_least.in_)) for when in whens
            for _, c in rules.walk(when) if isinstance(c, answers.AtLeastCondition)]


def sample_schema(loaded: rules.LoadedRuleSet) -> facts.Schema:
    """The finite-domain attributes of the sample fact: ratings and derived facts."""
    framework = loaded.framework
    groups = [facts.ALL, *framework.vocabulary.ids("providers")]
    targets = [facts.target_key(c.id, None) for c in framework.criteria_of("case")]
    targets += [facts.target_key(None, s.id) for s in framework.standards_of("case")]
    targets += [facts.target_key(None, s.id) for s in framework.standards_of("organisation")]
    targets += [facts.OVERALL]
    bands = (*loaded.rules.sample.bands, facts.UNRATED)
    domains = {facts.rating_attribute(t, g): bands for t in targets for g in groups}
    domains.update({facts.fact_attribute(f.id): (True, False) for f in loaded.rules.facts})
    return facts.Schema(domains)


def instances(loaded: rules.LoadedRuleSet):
    """Every (sample rule index, bindings) pair: the cartesian product of each rule's for_each."""
    framework = loaded.framework
    values = {
        "criterion": [c.id for c in framework.criteria_of("case")],
        "standard": [s.id for s in framework.standards_of("case")],
        "organisation_standard": [s.id for s in framework.standards_of("organisation")],
        "provider": list(framework.vocabulary.ids("providers")),
    }
    bound_as = {"organisation_standard": "standard"}
    for index, rule in enumerate(loaded.rules.sample_rules):
        for combination in itertools.product(*(values[name] for name in rule.for_each)):
            yield index, {bound_as.get(name, name): value for name, value in zip(rule.for_each, combination)}


def compile_sample(loaded: rules.LoadedRuleSet) -> CompiledRuleSet:
    """Compile the sample rules, one instance per ``for_each`` binding."""
    schema = sample_schema(loaded)
    framework = loaded.framework
    standards = {s.id: [c.id for c in s.criteria] for s in framework.standards}
    minimum = loaded.rules.sample.min_group_size
    made = [(index, bindings, conditions.lower_sample(loaded.rules.sample_rules[index].when, schema, bindings,
                                                     minimum, standards, loaded.rules.sample.gap_points,
                                                     framework.vocabulary.ids("providers")))
            for index, bindings in instances(loaded)]
    return _compile(loaded, "sample_rules", schema, made)


def resolve(body, bindings: dict) -> tuple[str | None, str | None, str]:
    """The (criterion, standard, group) a conclusion is about, with the instance's bindings."""
    return (*terms.target_of(body, bindings), terms.group_of(body, bindings) or facts.ALL)


def writes_of(rule, bindings: dict) -> tuple[str, ...]:
    """The derived attributes a rule's conclusions set: facts, and (sample rules) ratings."""
    written = []
    for conclusion in rule.then:
        if isinstance(conclusion, rules.FactConclusion):
            written.append(facts.fact_attribute(conclusion.fact))
        elif isinstance(conclusion, rules.RatingConclusion):
            criterion, standard, group = resolve(conclusion.rating, bindings)
            written.append(facts.rating_attribute(facts.target_key(criterion, standard), group))
            if criterion is None and standard is not None:  # a standard's band is part of its group's score
                written.append(facts.score_attribute(group))
    return tuple(written)


def _compile(loaded: rules.LoadedRuleSet, section: str, schema: facts.Schema, made: list) -> CompiledRuleSet:
    section_rules = getattr(loaded.rules, section)
    problems: list[Diagnostic] = []
    writes = [writes_of(section_rules[index], bindings) for index, bindings, _ in made]
    phases = _stratify(loaded, section, made, writes, problems)
    compiled: list[CompiledRule] = []
    for number, (index, bindings, lowered) in enumerate(made):
        rule = section_rules[index]
        try:
            alternatives = tuple(conditions.alternatives(lowered))
            if any(len(conditions.attributes(a)) > CHUNK_ATTRIBUTES for a in alternatives):
                raise conditions.TooComplex(f"the condition reads more than {CHUNK_ATTRIBUTES} attributes at once")
        except conditions.TooComplex as error:
            problems.append(loaded.document.diagnostic(
                (section, index, "when"), "rule_too_complex", f"rule {rule.id!r}: {error}",
                "derive a fact from part of the condition in another rule, and read it with fact:"))
            alternatives = ()
        line = loaded.document.where((section, index))[0]
        compiled.append(CompiledRule(number, rule, (section, index), line, bindings, lowered,
                                     phases.get(number, 0), writes[number], alternatives))
    if problems:
        raise InputError(sorted(set(problems)))
    count = max((r.phase for r in compiled), default=0) + 1
    chunks = tuple(_chunks([r for r in compiled if r.phase == phase]) for phase in range(count))
    return CompiledRuleSet(loaded, section, schema, tuple(compiled), chunks)


def _stratify(loaded: rules.LoadedRuleSet, section: str, made: list, writes: list,
              problems: list[Diagnostic]) -> dict[int, int]:
    """Phase of each rule: 0 if it reads nothing derived, else one more than the rules it reads from."""
    writers: dict[str, list[int]] = {}
    for number, written in enumerate(writes):
        for attribute in written:
            writers.setdefault(attribute, []).append(number)
    depends = {number: sorted({w for a in conditions.attributes(lowered) for w in writers.get(a, [])})
               for number, (_, _, lowered) in enumerate(made)}
    try:
        order = list(graphlib.TopologicalSorter(depends).static_order())
    except graphlib.CycleError as error:
        cycle = error.args[1]
        section_rules = getattr(loaded.rules, section)
        names = " -> ".join(section_rules[made[n][0]].id for n in cycle)
        problems.append(loaded.document.diagnostic(
            (section, made[cycle[0]][0], "when"), "fact_cycle",
            f"derived facts depend on each other in a cycle: {names}",
            "a rule cannot read, directly or through other rules, a fact it derives"))
        return {}
    phase: dict[int, int] = {}
    for number in order:
        phase[number] = 1 + max((phase[d] for d in depends[number]), default=-1)
    return phase


def _chunks(phase_rules: list[CompiledRule]) -> tuple[Chunk, ...]:
    """Group a phase's alternatives into rulesets of at most CHUNK_PATTERNS patterns reading at most
    CHUNK_ATTRIBUTES attributes: each chunk is asserted only the attributes it reads, because
    durable_rules rejects a fact of more than about 250 properties (error 302)."""
    patterns = [(f"r{rule.index}a{number}", rule.index, alternative)
                for rule in phase_rules for number, alternative in enumerate(rule.alternatives)]
    groups: list[list] = []
    reads: list[set] = []
    for pattern in patterns:
        needed = set(conditions.attributes(pattern[2]))
        if not groups or len(groups[-1]) >= CHUNK_PATTERNS or len(reads[-1] | needed) > CHUNK_ATTRIBUTES:
            groups.append([])
            reads.append(set())
        groups[-1].append(pattern)
        reads[-1] |= needed
    chunks = []
    for part, read in zip(groups, reads):
        definition = {name: {"all": [{"m": conditions.to_durable(alternative)}]} for name, _, alternative in part}
        definition[CATCH_ALL] = {"all": [{"m": {"$and": [{"kind": facts.FACT_KIND}]}}]}
        digest = canonical_sha256(definition)[:24]
        chunks.append(Chunk(f"qi-{digest}", definition, {name: index for name, index, _ in part},
                            tuple(sorted(read))))
    return tuple(chunks)


def restricted(compiled: CompiledRuleSet, indices) -> CompiledRuleSet:
    """The compiled rule set with only the rules ``indices`` in its phases (every rule keeps its
    index and phase, so what fires is named as in the whole set): evaluated, it fires exactly what
    the whole set would of those rules, provided every rule deriving a fact they read is among them."""
    kept = set(indices)
    phases = tuple(_chunks([r for r in compiled.rules if r.phase == number and r.index in kept])
                   for number in range(len(compiled.phases)))
    return dataclasses.replace(compiled, phases=phases, _lowered={})
