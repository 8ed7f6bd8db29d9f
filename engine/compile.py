"""Compile stage: a validated rule set becomes durable_rules rulesets, run in phases.

The stages, in order:

1. **lower** each rule's condition to the In/All/AnyOf tree (:mod:`engine.conditions`);
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
import graphlib
import hashlib
import json

from engine import conditions, facts, rules
from engine.diagnostics import Diagnostic, InputError

CHUNK_PATTERNS = 40
CATCH_ALL = "qi_fact_handled"


@dataclasses.dataclass(frozen=True)
class CompiledRule:
    index: int
    rule: rules.Rule
    line: int
    condition: conditions.Node
    phase: int
    derives: tuple[str, ...]
    alternatives: tuple[conditions.Node, ...]


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One durable_rules ruleset: its name, its definition (without actions) and which rule each
    durable rule belongs to."""

    name: str
    definition: dict
    rule_of: dict[str, int]


@dataclasses.dataclass(frozen=True)
class CompiledRuleSet:
    loaded: rules.LoadedRuleSet
    schema: facts.Schema
    rules: tuple[CompiledRule, ...]
    phases: tuple[tuple[Chunk, ...], ...]

    @property
    def ruleset(self) -> rules.RuleSet:
        return self.loaded.rules

    def definitions(self) -> list[dict]:
        """Every chunk's durable_rules definition, in phase order: the golden-tested output."""
        return [{"phase": number, "name": chunk.name, "rules": chunk.definition}
                for number, chunks in enumerate(self.phases) for chunk in chunks]


def compile_rules(loaded: rules.LoadedRuleSet) -> CompiledRuleSet:
    """Compile a loaded rule set. Raises InputError (with positions) if it cannot run."""
    ruleset = loaded.rules
    declared = [f.id for f in ruleset.facts]
    schema = facts.Schema.for_framework(loaded.framework, declared)
    problems: list[Diagnostic] = []
    lowered = [conditions.lower(rule.when, schema) for rule in ruleset.rules]
    phases = _stratify(loaded, problems)
    compiled: list[CompiledRule] = []
    for index, rule in enumerate(ruleset.rules):
        try:
            alternatives = tuple(conditions.alternatives(lowered[index]))
        except conditions.TooComplex as error:
            problems.append(loaded.document.diagnostic(
                ("rules", index, "when"), "rule_too_complex", f"rule {rule.id!r}: {error}",
                "derive a fact from part of the condition in another rule, and read it with fact:"))
            alternatives = ()
        derives = tuple(c.fact for c in rule.then if isinstance(c, rules.FactConclusion))
        compiled.append(CompiledRule(index, rule, loaded.rule_line(index), lowered[index],
                                     phases.get(index, 0), derives, alternatives))
    if problems:
        raise InputError(problems)
    count = max((r.phase for r in compiled), default=0) + 1
    chunks = tuple(_chunks([r for r in compiled if r.phase == phase]) for phase in range(count))
    return CompiledRuleSet(loaded, schema, tuple(compiled), chunks)


def _stratify(loaded: rules.LoadedRuleSet, problems: list[Diagnostic]) -> dict[int, int]:
    """Phase of each rule: 0 if it reads no derived fact, else one more than its derivers'."""
    ruleset = loaded.rules
    derivers: dict[str, list[int]] = {}
    for index, rule in enumerate(ruleset.rules):
        for conclusion in rule.then:
            if isinstance(conclusion, rules.FactConclusion):
                derivers.setdefault(conclusion.fact, []).append(index)
    depends = {index: sorted({d for _, name in rules.facts_read(rule.when) for d in derivers.get(name, [])})
               for index, rule in enumerate(ruleset.rules)}
    try:
        order = list(graphlib.TopologicalSorter(depends).static_order())
    except graphlib.CycleError as error:
        cycle = error.args[1]
        names = " -> ".join(ruleset.rules[i].id for i in cycle)
        first = cycle[0]
        problems.append(loaded.document.diagnostic(
            ("rules", first, "when"), "fact_cycle", f"derived facts depend on each other in a cycle: {names}",
            "a rule cannot read, directly or through other rules, a fact it derives"))
        return {}
    phase: dict[int, int] = {}
    for index in order:
        phase[index] = 1 + max((phase[d] for d in depends[index]), default=-1)
    return phase


def _chunks(phase_rules: list[CompiledRule]) -> tuple[Chunk, ...]:
    patterns = [(f"r{rule.index}a{number}", rule.index, alternative)
                for rule in phase_rules for number, alternative in enumerate(rule.alternatives)]
    chunks = []
    for start in range(0, len(patterns), CHUNK_PATTERNS):
        part = patterns[start:start + CHUNK_PATTERNS]
        definition = {name: {"all": [{"m": conditions.to_durable(alternative)}]} for name, _, alternative in part}
        definition[CATCH_ALL] = {"all": [{"m": {"$and": [{"kind": facts.FACT_KIND}]}}]}
        digest = hashlib.sha256(json.dumps(definition, sort_keys=True, default=str).encode()).hexdigest()[:24]
        chunks.append(Chunk(f"qi-{digest}", definition, {name: index for name, index, _ in part}))
    return tuple(chunks)
