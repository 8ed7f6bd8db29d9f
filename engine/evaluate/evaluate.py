"""Evaluate stage: run a compiled rule set on one case, on durable_rules' Rete engine.

An :class:`Engine` owns one durable_rules host — with no timer threads, since qi asserts
synchronously — and the rulesets registered on it. durable_rules allows one host per process in
practice (hosts are never freed), so :meth:`Engine.for_process` gives each process its own,
made afresh in a forked or spawned worker.

Each case is evaluated phase by phase: the phase's fact (case attributes plus the facts derived so
far) is asserted into each of the phase's chunks, each in its own session that is deleted straight
away, so at most one session is ever alive — memory stays flat and session-id hash collisions
cannot happen. A :class:`~engine.evaluate.tracer.Tracer` is fed as evaluation runs: each phase as
it starts and ends, each rule from its action as it fires. An exception in an action is collected
and re-raised, because durable_rules would otherwise swallow it; the tracer's record stays
well-formed whatever fails.

Sample rules read ratings concluded by other sample rules; the policy that turns several concluded
bands into one rating belongs to the judge stage, and is passed in (``rate``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Callable

import durable.engine
import orjson

from engine.check import rules
from engine.compile import conditions, facts
from engine.compile.compile import CATCH_ALL, Chunk, CompiledRuleSet, resolve
from engine.evaluate.tracer import Record, Tracer

#: The rating policy: (priority, band) pairs concluded on one target, and the bands best first ->
#: the rating. Given by the judge stage.
RatingPolicy = Callable[[list[tuple[int, str]], list[str]], str]


class EngineError(RuntimeError):
    """durable_rules failed, or a rule action raised: the case has no trustworthy result."""


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What the engine concluded for one case: which rules fired, on what fact, and the record of
    how (phase by phase)."""

    fired: tuple[int, ...]
    fact: dict
    derived_by: dict[str, tuple[int, ...]]
    record: Record


class _Marshal:
    """The JSON durable_rules' Python wrapper writes every fact and reads every action's state
    with (``durable.engine.json``): orjson's, which gives the same JSON several times faster —
    the wrapper's marshalling was the larger part of evaluating a case. What orjson cannot write
    (a non-string key) falls back to the standard module."""

    JSONDecodeError = json.JSONDecodeError

    @staticmethod
    def loads(text):
        return orjson.loads(text)

    @staticmethod
    def dumps(data, ensure_ascii: bool = False, **options) -> str:
        if not options and not ensure_ascii:
            try:
                return orjson.dumps(data).decode("utf-8")
            except TypeError:
                pass
        return json.dumps(data, ensure_ascii=ensure_ascii, **options)


durable.engine.json = _Marshal


class _SyncHost(durable.engine.Host):
    """A host that starts no dispatch threads: every assert runs its actions before returning."""

    def _run(self) -> None:
        pass


class _Assertion:
    """The assert under way: where its actions report (the tracer) and what they raised."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.fired: set[int] = set()
        self.errors: list[BaseException] = []


class Engine:
    """durable_rules for one process: the host, what is registered on it, the assert under way."""

    _per_process: dict[int, Engine] = {}

    def __init__(self) -> None:
        self.host = _SyncHost()
        self._registered: set[str] = set()
        self._session = 0
        self._under_way: _Assertion | None = None

    @classmethod
    def for_process(cls) -> Engine:
        """This process's engine (a forked worker makes its own: a host does not survive a fork)."""
        pid = os.getpid()
        engine = cls._per_process.get(pid)
        if engine is None:
            cls._per_process.clear()
            engine = cls._per_process[pid] = cls()
        return engine

    def _action(self, rule_index: int | None):
        def run(closure) -> None:
            under_way = self._under_way
            if under_way is None or rule_index is None:  # the catch-all concludes nothing
                return
            try:
                under_way.fired.add(rule_index)
                under_way.tracer.rule_fired(rule_index)
            except BaseException as error:  # durable_rules would swallow it: keep it for the caller
                under_way.errors.append(error)
        return run

    def register(self, chunk: Chunk) -> str:
        """Register a chunk once; its name is a hash of its definition."""
        if chunk.name not in self._registered:
            definition = copy.deepcopy(chunk.definition)  # durable_rules deletes 'run' from what it is given
            for name, rule in definition.items():
                rule["run"] = self._action(None if name == CATCH_ALL else chunk.rule_of[name])
            try:
                self.host.register_rulesets({chunk.name: definition})
            except Exception as error:
                raise EngineError(f"durable_rules rejected ruleset {chunk.name}: {error}") from error
            self._registered.add(chunk.name)
        return chunk.name

    def assert_into(self, chunk: Chunk, fact: dict, tracer: Tracer) -> set[int]:
        """Assert one fact into a fresh session of a chunk; returns the rules that fired."""
        name = self.register(chunk)
        self._session += 1
        session = str(self._session)
        under_way = self._under_way = _Assertion(tracer)
        missing = [attribute for attribute in chunk.reads if attribute not in fact]
        if missing:
            raise EngineError(f"the case's attributes lack {', '.join(sorted(missing)[:5])}, which {name} reads "
                              "(build them with facts.case_attributes and the compiled rule set's schema)")
        asserted = {attribute: fact[attribute] for attribute in chunk.reads}
        asserted.update(kind=facts.FACT_KIND, sid=session, id="case")
        failure: EngineError | None = None
        try:
            try:
                self.host.assert_fact(name, asserted)
            except Exception as error:
                failure = EngineError(f"durable_rules failed in {name}: {error}")
        finally:
            self._under_way = None
            try:
                self.host.delete_state(name, session)
            except Exception as error:  # after a failed assert there may be nothing to delete
                failure = failure or EngineError(f"durable_rules could not delete a session in {name}: {error}")
        if failure is not None:
            raise failure
        if under_way.errors:
            first = under_way.errors[0]
            raise EngineError(f"a rule action failed in {name}: {first!r}") from first
        return under_way.fired

    def evaluate(self, compiled: CompiledRuleSet, attributes: dict, tracer: Tracer | None = None,
                 rate: RatingPolicy | None = None) -> Evaluation:
        """Run every phase of the compiled rule set on a case's attributes, feeding ``tracer``."""
        return _run_phases(compiled, attributes, tracer or Tracer(), rate,
                           lambda phase, fact, tracer: set().union(*(self.assert_into(chunk, fact, tracer)
                                                                    for chunk in compiled.phases[phase])))


def evaluate(compiled: CompiledRuleSet, attributes: dict, tracer: Tracer | None = None,
             rate: RatingPolicy | None = None) -> Evaluation:
    """:meth:`Engine.evaluate` on this process's engine."""
    return Engine.for_process().evaluate(compiled, attributes, tracer, rate)


def evaluate_in_python(compiled: CompiledRuleSet, attributes: dict, rate: RatingPolicy | None = None) -> Evaluation:
    """The same evaluation with the Python evaluator: the reference durable_rules must agree with."""
    def fire(phase, fact, tracer):
        fired = {r.index for r in compiled.rules if r.phase == phase and conditions.holds(r.condition, fact)}
        for index in sorted(fired):
            tracer.rule_fired(index)
        return fired
    return _run_phases(compiled, attributes, Tracer(), rate, fire)


def _run_phases(compiled: CompiledRuleSet, attributes: dict, tracer: Tracer, rate: RatingPolicy | None,
                fire) -> Evaluation:
    if compiled.section == "sample_rules" and rate is None:
        raise ValueError("sample rules read ratings: give the rating policy (rate=)")
    attributes = facts.with_counts(attributes, compiled.schema)
    fired: set[int] = set()
    tracer.start(compiled.section)
    try:
        for phase in range(len(compiled.phases)):
            derived = derived_attributes(compiled, fired, rate)
            tracer.phase_started(phase, derived)
            fired |= fire(phase, {**attributes, "kind": facts.FACT_KIND, **derived}, tracer)
            tracer.phase_ended()
    except BaseException as error:
        tracer.failed(error)
        raise
    finally:
        tracer.finished()
    return _evaluation(compiled, attributes, fired, tracer.record(), rate)


def assembled(compiled: CompiledRuleSet, attributes: dict, fired) -> Evaluation:
    """The evaluation of a case whose fired rules are known without running them (carried over
    from another rule set's evaluation, see :mod:`engine.compile.delta`): its final fact and what
    derived each fact. It has no phase record, so it is never traced."""
    tracer = Tracer()
    tracer.start(compiled.section)
    tracer.finished()
    return _evaluation(compiled, facts.with_counts(attributes, compiled.schema), set(fired), tracer.record())


def _evaluation(compiled: CompiledRuleSet, attributes: dict, fired: set[int], record: Record,
                rate: RatingPolicy | None = None) -> Evaluation:
    derivers: dict[str, list[int]] = {}
    for index in sorted(fired):
        for name in compiled.rules[index].derives:
            derivers.setdefault(name, []).append(index)
    derived_by = {f.id: tuple(derivers.get(f.id, ())) for f in compiled.ruleset.facts}
    fact = {**attributes, "kind": facts.FACT_KIND, **derived_attributes(compiled, fired, rate)}
    return Evaluation(tuple(sorted(fired)), fact, derived_by, record)


def derived_attributes(compiled: CompiledRuleSet, fired: set[int], rate: RatingPolicy | None = None) -> dict:
    """The attributes rules derive, given the rules fired so far: each declared fact (true once
    any rule derived it) and, for sample rules, each rating (by the rating policy ``rate``)."""
    values = dict(compiled.cached(("evaluate", "no facts"),
                                  lambda: {facts.fact_attribute(f.id): False for f in compiled.ruleset.facts}))
    if compiled.section != "sample_rules":  # derived facts only: what each fired rule writes
        for index in fired:
            for attribute in compiled.rules[index].writes:
                values[attribute] = True
        return values
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
                concluded = bands.get(attribute, [])
                values[attribute] = rate(concluded, order) if concluded else facts.UNRATED
        values.update(_scores(compiled, values))
    return values


def _scores(compiled: CompiledRuleSet, values: dict) -> dict:
    """Each group's score: the sum of every standard's band score (``sample.band_scores``) for
    that group, undefined while any standard is unrated for it."""
    scores = compiled.ruleset.sample.band_scores
    if not scores:
        return {}
    framework = compiled.loaded.framework
    groups = [facts.ALL, *framework.vocabulary.ids("providers")]
    found = {}
    for group in groups:
        bands = [values.get(facts.rating_attribute(facts.target_key(None, s.id), group), facts.UNRATED)
                 for s in framework.standards]
        found[facts.score_attribute(group)] = (facts.UNDEFINED if facts.UNRATED in bands
                                               else float(sum(scores[band] for band in bands)))
    return found
