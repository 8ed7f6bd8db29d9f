"""Evaluate stage: run a compiled rule set on one case, on durable_rules' Rete engine.

One durable_rules host per process, with no timer threads (qi asserts synchronously). Each case
is evaluated phase by phase: the phase's fact (case attributes plus the facts derived so far) is
asserted into each of the phase's chunks, each in its own session that is deleted straight away,
so at most one session is ever alive — memory stays flat and session-id hash collisions cannot
happen. Actions only record which rule fired; an exception in one is collected and re-raised,
because durable_rules would otherwise swallow it.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import os

import durable.engine

from engine.check import rules
from engine.compile import conditions, facts
from engine.compile.compile import CATCH_ALL, Chunk, CompiledRuleSet, resolve


class EngineError(RuntimeError):
    """durable_rules failed, or a rule action raised: the case has no trustworthy result."""


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What the engine concluded for one case: which rules fired, and on what fact."""

    fired: tuple[int, ...]
    fact: dict
    derived_by: dict[str, tuple[int, ...]]


class _SyncHost(durable.engine.Host):
    """A host that starts no dispatch threads: every assert runs its actions before returning."""

    def _run(self) -> None:
        pass


class _Recorder:
    def __init__(self) -> None:
        self.fired: set[int] = set()
        self.errors: list[BaseException] = []


_host: _SyncHost | None = None
_host_pid: int | None = None
_registered: set[str] = set()
_recorder = _Recorder()
_sessions = itertools.count(1)


def _get_host() -> _SyncHost:
    """The process's host, made afresh in a forked or spawned worker."""
    global _host, _host_pid, _registered
    if _host is None or _host_pid != os.getpid():
        _host, _host_pid, _registered = _SyncHost(), os.getpid(), set()
    return _host


def _record(rule_index: int | None) -> None:
    """What every action does: note that its rule fired (the catch-all has no rule)."""
    if rule_index is not None:
        _recorder.fired.add(rule_index)


def _action(rule_index: int | None):
    def run(closure) -> None:
        try:
            _record(rule_index)
        except BaseException as error:  # durable_rules would swallow it: keep it for the caller
            _recorder.errors.append(error)
    return run


def register(chunk: Chunk) -> str:
    """Register a chunk on this process's host once; its name is a hash of its definition."""
    host = _get_host()
    if chunk.name not in _registered:
        definition = copy.deepcopy(chunk.definition)  # durable_rules deletes 'run' from what it is given
        for name, rule in definition.items():
            rule["run"] = _action(None if name == CATCH_ALL else chunk.rule_of[name])
        try:
            host.register_rulesets({chunk.name: definition})
        except Exception as error:
            raise EngineError(f"durable_rules rejected ruleset {chunk.name}: {error}") from error
        _registered.add(chunk.name)
    return chunk.name


def assert_into(chunk: Chunk, fact: dict) -> set[int]:
    """Assert one fact into a fresh session of a chunk; returns the rules that fired."""
    host = _get_host()
    name = register(chunk)
    session = str(next(_sessions))
    _recorder.fired, _recorder.errors = set(), []
    projected = {attribute: fact[attribute] for attribute in chunk.reads}
    failure: EngineError | None = None
    try:
        try:
            host.assert_fact(name, {**projected, "kind": facts.FACT_KIND, "sid": session, "id": "case"})
        except Exception as error:
            failure = EngineError(f"durable_rules failed in {name}: {error}")
    finally:
        try:
            host.delete_state(name, session)
        except Exception as error:  # after a failed assert there may be nothing to delete
            failure = failure or EngineError(f"durable_rules could not delete a session in {name}: {error}")
    if failure is not None:
        raise failure
    if _recorder.errors:
        raise EngineError(f"a rule action failed in {name}: {_recorder.errors[0]!r}") from _recorder.errors[0]
    return set(_recorder.fired)


def evaluate(compiled: CompiledRuleSet, attributes: dict) -> Evaluation:
    """Run every phase of the compiled rule set on a case's attributes, on durable_rules."""
    return _run_phases(compiled, attributes, lambda chunk, fact: assert_into(chunk, fact), True)


def evaluate_in_python(compiled: CompiledRuleSet, attributes: dict) -> Evaluation:
    """The same evaluation with the Python evaluator: the reference durable_rules must agree with."""
    def fire(rules_in_phase, fact):
        return {r.index for r in rules_in_phase if conditions.holds(r.condition, fact)}
    return _run_phases(compiled, attributes, fire, False)


def _run_phases(compiled: CompiledRuleSet, attributes: dict, fire, on_durable: bool) -> Evaluation:
    fired: set[int] = set()
    for phase, chunks in enumerate(compiled.phases):
        fact = {**attributes, "kind": facts.FACT_KIND, **derived_attributes(compiled, fired)}
        if on_durable:
            fired |= set().union(*(fire(chunk, fact) for chunk in chunks)) if chunks else set()
        else:
            fired |= fire([r for r in compiled.rules if r.phase == phase], fact)
    derived_by = {f.id: tuple(sorted(i for i in fired if f.id in compiled.rules[i].derives))
                  for f in compiled.ruleset.facts}
    fact = {**attributes, "kind": facts.FACT_KIND, **derived_attributes(compiled, fired)}
    return Evaluation(tuple(sorted(fired)), fact, derived_by)


def derived_attributes(compiled: CompiledRuleSet, fired: set[int]) -> dict:
    """The attributes rules derive, given the rules fired so far: each declared fact (true once
    any rule derived it) and, for sample rules, each rating (see :func:`rating_of`)."""
    values = {facts.fact_attribute(f.id): False for f in compiled.ruleset.facts}
    bands: dict[str, list[tuple[int, str]]] = {}
    for index in sorted(fired):
        rule = compiled.rules[index]
        for conclusion in rule.rule.then:
            if isinstance(conclusion, rules.FactConclusion):
                values[facts.fact_attribute(conclusion.fact)] = True
            elif isinstance(conclusion, rules.RatingConclusion):
                criterion, standard, group = resolve(conclusion.rating, rule.bindings)
                attribute = facts.rating_attribute(facts.target_key(criterion, standard), group)
                bands.setdefault(attribute, []).append((rule.rule.priority, conclusion.rating.band))
    if compiled.section == "sample_rules":
        order = compiled.ruleset.sample.bands
        for attribute in compiled.schema.domains:
            if attribute.startswith("rating__"):
                values[attribute] = rating_of(bands.get(attribute, []), order)
    return values


def rating_of(concluded: list[tuple[int, str]], order: list[str]) -> str:
    """The rating policy: the highest priority counts, then the worst band (bands are listed best
    first); unrated when no rule rated the target."""
    if not concluded:
        return facts.UNRATED
    top = max(priority for priority, _ in concluded)
    return max((band for priority, band in concluded if priority == top), key=order.index)
