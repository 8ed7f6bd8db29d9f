"""Trace stage: the reasoning behind every conclusion, as one tree, read off the evaluation's record.

For each finding, enabler and barrier of a case or organisation: the rules that concluded it (id,
file:line, rule set id, version, sha256), each condition with whether it held and the values it
saw, the inspector's evidence it used (item, answer, note, case file:line) and, for derived facts,
the rules that derived them — recursively, down to evidence. For each rating, recommendation and
sample enabler or barrier: the rule instances behind it, each condition with the aggregates it read
and the cases counted. *Why-not* gives, for a finding that was not reached, every rule that could
have concluded it and the conditions that failed.

One class, :class:`Trace`, reads every kind of evaluation: which rules fired, and what each phase
asserted, come from the tracer's :class:`~engine.evaluate.tracer.Record`, made while the engine
ran. A condition's parts are shown holding or failing on the very fact its phase asserted; what
does not depend on the case (text, position, items, lowered tree) is built once per rule set. The
tree is plain data: JSON, text and HTML are views of it (:mod:`engine.report.views`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from engine.check import rules
from engine.check.models import NOT_ASSESSED
from engine.compile import conditions, facts
from engine.compile.compile import CompiledRule, CompiledRuleSet
from engine.evaluate.evaluate import Evaluation
from engine.judge.judge import POLICY, Factor, Finding, Judgement


class Subject(Protocol):
    """A validated case or organisation file: its document (positions, sha256) and its model."""

    document: Any
    model: Any


@dataclasses.dataclass(frozen=True)
class _Static:
    """What a trace says of one condition whatever the case: built once per rule set."""

    kind: str
    text: str
    at: str
    lowered: conditions.Node
    items: tuple
    condition: Any
    children: tuple
    #: Whether the condition reads a diversity value (its parts are then always all shown).
    private: bool = False


@dataclasses.dataclass(frozen=True)
class _View:
    """What a condition form reads to say what it saw (``Form.seen``, ``Form.aggregates``): the fact
    of the phase its rule ran in, as the tracer recorded it."""

    fact: dict
    model: Any
    fields: dict
    aggregates: dict | None
    names = facts


class Trace:
    """The reasoning trees of one evaluation: of a case or organisation (``subject``), or of the
    whole sample (``aggregates``). Rule nodes are memoised, so a shared derivation is built once."""

    def __init__(self, compiled: CompiledRuleSet, evaluation: Evaluation, subject: Subject | None = None,
                 aggregates: dict | None = None) -> None:
        self.compiled = compiled
        self.evaluation = evaluation
        self.subject = subject
        self.aggregates = aggregates
        self.sample = compiled.section == "sample_rules"
        self._fired = set(evaluation.record.fired)  # as durable_rules reported it, rule by rule
        self._rule_nodes: dict[int, dict] = {}
        self._evidence: dict[str, dict] = {}
        self._views: dict[int, _View] = {}
        model = subject.model if subject is not None else None
        self.reference = (getattr(model, "case", None) or f"organisation:{model.organisation}") if model else None
        self.suffix = "<sample>" if self.sample else f"<case:{self.reference}>"

    def ruleset_ref(self) -> dict:
        return ruleset_ref(self.compiled)

    def _view(self, phase: int) -> _View:
        """The fact a rule of ``phase`` was matched against, as the tracer recorded it."""
        if phase not in self._views:
            self._views[phase] = _View({**self.evaluation.fact, **self.evaluation.record.derived_in(phase)},
                                       self.subject.model if self.subject is not None else None,
                                       self.compiled.schema.fields, self.aggregates)
        return self._views[phase]

    # --- rules and conditions ---

    def rule(self, index: int) -> dict:
        if index not in self._rule_nodes:
            compiled_rule = self.compiled.rules[index]
            rule = compiled_rule.rule
            label = compiled_rule.label if self.sample else rule.id
            node = {"key": f"rule:{label}{self.suffix}", "rule": rule.id}
            if self.sample:
                node["instance"] = compiled_rule.bindings
            node.update({"title": rule.title, "rationale": rule.rationale,
                         "at": self.compiled.loaded.document.at(compiled_rule.loc),
                         "ruleset": self.ruleset_ref(), "priority": rule.priority})
            if not self.sample:
                node["cites"] = list(rule.cites)
            node["fired"] = index in self._fired
            self._rule_nodes[index] = node  # before the condition: derivations may lead back here
            node["condition"] = self._condition(_static_tree(self.compiled, compiled_rule), compiled_rule)
        return self._rule_nodes[index]

    def _condition(self, static: _Static, compiled_rule: CompiledRule, holds: bool | None = None) -> dict:
        view = self._view(compiled_rule.phase)
        node: dict = {"condition": static.kind, "text": static.text,
                      "holds": conditions.holds(static.lowered, view.fact) if holds is None else holds, "at": static.at}
        condition = static.condition
        if static.children:
            held, chosen = self._shown(static, node["holds"], view)
            if len(chosen) < len(held):
                node["not_shown"] = len(held) - len(chosen)
            node["children"] = [self._condition(static.children[i], compiled_rule, held[i]) for i in chosen]
        elif self.sample:
            node["seen"] = {a: view.fact[a] for a in conditions.attributes(static.lowered)}
            node["aggregates"] = condition.aggregates(view, compiled_rule.bindings)
        else:
            node["seen"] = condition.seen(view)
            if static.items:
                node["evidence"] = [self.evidence(item) for item in static.items]
            if static.kind == "fact":
                derivers = self.evaluation.derived_by.get(condition.fact, ())
                node["derived_by"] = [self.rule(i) for i in derivers]
                if not derivers:
                    node["could_be_derived_by"] = list(_derivers(self.compiled).get(condition.fact, ()))
        return node

    def _shown(self, static: _Static, holds: bool, view: _View) -> tuple[list[bool], list[int]]:
        """Whether each part of a condition holds, and which parts its node shows: the reason, not
        every alternative. An `any` that holds is explained by the parts that hold, an `all` that
        fails by the parts that fail; the rest are counted, not shown — and decided before any part
        is built, so a part not shown is never built. Not where a part reads a diversity value
        (which parts are shown would say what redaction hides), nor in sample rules (few, and every
        group's figures there are the point)."""
        held = [conditions.holds(child.lowered, view.fact) for child in static.children]
        decisive = holds if static.kind in ("any", "all") and not self.sample else None
        if decisive is not None and not static.private and decisive in held:
            return held, [i for i, h in enumerate(held) if h == decisive]
        return held, list(range(len(held)))

    def outlines(self) -> list[dict]:
        """Every rule, fired or not, as coverage reads it: where it is, whether it fired, and the
        place, text and outcome of each condition its trace node shows (chosen as :meth:`rule`
        chooses them) — without what the conditions saw, the evidence or the derivations, which
        coverage does not read and which cost most of a trace."""
        return [self._outline(index) for index in range(len(self.compiled.rules))]

    def _outline(self, index: int) -> dict:
        compiled_rule = self.compiled.rules[index]
        return {"rule": compiled_rule.rule.id, "at": self.compiled.loaded.document.at(compiled_rule.loc),
                "fired": index in self._fired,
                "condition": self._outline_condition(_static_tree(self.compiled, compiled_rule), compiled_rule)}

    def _outline_condition(self, static: _Static, compiled_rule: CompiledRule, holds: bool | None = None) -> dict:
        view = self._view(compiled_rule.phase)
        node: dict = {"text": static.text, "at": static.at,
                      "holds": conditions.holds(static.lowered, view.fact) if holds is None else holds}
        if static.children:
            held, chosen = self._shown(static, node["holds"], view)
            node["children"] = [self._outline_condition(static.children[i], compiled_rule, held[i]) for i in chosen]
        return node

    def evidence(self, item: str) -> dict:
        if item not in self._evidence:
            entry = self.subject.model.evidence.get(item)
            document = self.subject.document
            if entry is None:
                node = {"item": item, "answer": facts.NOT_ASSESSED, "note": None, "sources": [], "at": document.path}
            else:
                line = document.where(("evidence", item), key=True)[0]
                node = {"item": item, "answer": entry.answer, "note": entry.note, "sources": list(entry.sources),
                        "at": f"{document.path}:{line}"}
            self._evidence[item] = node
        return self._evidence[item]

    # --- conclusions of a case or organisation ---

    def finding(self, finding: Finding) -> dict:
        titles = self.compiled.cached(("trace", "titles"), lambda: {
            c.id: c.title for s in self.compiled.loaded.framework.standards for c in s.criteria})
        node = {"key": f"finding:{finding.criterion}{self.suffix}", "criterion": finding.criterion,
                "title": titles[finding.criterion], "value": finding.value, "policy": POLICY,
                "because": [self.rule(i) for i in finding.rules]}
        if finding.overridden:
            node["overridden"] = [{"rule": self.compiled.rules[i].rule.id,
                                   "value": _finding_value(self.compiled.rules[i].rule, finding.criterion),
                                   "priority": self.compiled.rules[i].rule.priority} for i in finding.overridden]
        if finding.value == NOT_ASSESSED:
            node["note"] = "no rule concluded a finding on this criterion for this case"
        return node

    def factor(self, factor: Factor) -> dict:
        return {"key": f"{factor.kind}:{factor.id}{self.suffix}", "id": factor.id, "text": factor.text,
                "criterion": factor.criterion, "because": [self.rule(i) for i in factor.rules]}

    def why_not(self, criterion: str, value: str, finding: Finding) -> dict:
        """Every rule that could conclude ``value`` on ``criterion``: did it fire, and if not, why."""
        candidates = [r.index for r in self.compiled.rules if _finding_value(r.rule, criterion) == value]
        node = {"key": f"why-not:{criterion}={value}{self.suffix}", "criterion": criterion,
                "value": value, "actual": finding.value, "policy": POLICY,
                "candidates": [self.rule(i) for i in candidates]}
        if finding.value == value:
            node["note"] = f"the finding on {criterion} is {value}"
        elif not candidates:
            node["note"] = f"no rule in the rule set can conclude {value} on {criterion}"
        elif any(i in self._fired for i in candidates):
            node["note"] = (f"a rule concluding {value} fired, but the combination policy chose "
                            f"{finding.value}: {POLICY}")
        else:
            node["note"] = f"none of the {len(candidates)} rules that can conclude {value} fired"
        return node

    # --- conclusions of the whole sample ---

    def rating(self, rating) -> dict:
        return {"key": f"rating:{rating.target}/{rating.group}{self.suffix}", "target": rating.target,
                "group": rating.group, "band": rating.band, "because": [self.rule(i) for i in rating.rules],
                "overridden": [{"rule": self.compiled.rules[i].label} for i in rating.overridden]}

    def conclusion(self, conclusion) -> dict:
        return {"key": f"{conclusion.kind}:{conclusion.id}{self.suffix}", "id": conclusion.id,
                "text": conclusion.text, "because": [self.rule(i) for i in conclusion.rules]}

    def corroboration(self) -> list[dict]:
        """Each rule that reads evidence beyond its own subject (a condition with
        ``Form.elsewhere``: an organisation rule over its provider's cases), whether it fired, what it
        concludes, and each such condition with whether it held and what it saw (the cases behind
        it): the checks a report lists (contradictions first), then the rules that weigh recorded
        causes (``cause_found``; found first)."""
        entries = []
        for compiled_rule in self.compiled.rules:
            rule = compiled_rule.rule
            reading = [c for _, c in rules.walk(rule.when) if c.elsewhere()]
            if not reading:
                continue
            view = self._view(compiled_rule.phase)
            concludes = [{"kind": kind, "criterion": body.criterion,
                          **({"value": body.value} if kind == "finding" else {"id": body.id, "text": body.text})}
                         for conclusion in rule.then for kind in ("finding", "barrier", "enabler")
                         if (body := getattr(conclusion, kind, None)) is not None]
            fired = compiled_rule.index in self._fired
            # a rule weighing the causes inspectors recorded (cause_found) beside the provider's
            # cases finds a cause where the two agree; any other checks the organisation's claim
            kind = "cause" if any(c.key == "cause_found" for _, c in rules.walk(rule.when)) else "check"
            entries.append({"rule": rule.id, "title": rule.title, "rationale": rule.rationale,
                            "at": f"{self.compiled.loaded.document.path}:{compiled_rule.line}", "kind": kind,
                            "fired": fired, "contradicted": fired and kind == "check", "concludes": concludes,
                            "checks": [{"text": c.describe(), "holds": conditions.holds(self.compiled.lower(c), view.fact),
                                        "seen": c.seen(view)} for c in reading]})
        return sorted(entries, key=lambda e: (e["kind"], not e["fired"], e["rule"]))

    def every_rule(self) -> list[dict]:
        """Every rule's node, fired or not: what coverage reads."""
        return [self.rule(index) for index in range(len(self.compiled.rules))]


def ruleset_ref(compiled: CompiledRuleSet) -> dict:
    """The rule set every rule node names: id, version, sha256 and file."""
    def make() -> dict:
        ruleset = compiled.ruleset
        return {"id": ruleset.id, "version": ruleset.version, "sha256": compiled.loaded.sha256,
                "file": compiled.loaded.document.path}
    return dict(compiled.cached(("trace", "ruleset"), make))


def _derivers(compiled: CompiledRuleSet) -> dict[str, tuple[str, ...]]:
    """Each derived fact and the rules that can derive it, in rule order: indexed once per rule set
    (a trace asks it of every fact no rule derived)."""
    def index() -> dict[str, tuple[str, ...]]:
        found: dict[str, list[str]] = {}
        for compiled_rule in compiled.rules:
            for fact in dict.fromkeys(compiled_rule.derives):
                found.setdefault(fact, []).append(compiled_rule.rule.id)
        return {fact: tuple(ids) for fact, ids in found.items()}
    return compiled.cached(("derivers",), index)


def _static_tree(compiled: CompiledRuleSet, compiled_rule: CompiledRule) -> _Static:
    """The case-independent part of a rule's condition tree (cached on the rule set)."""
    return compiled.cached(("trace", "rule", compiled_rule.index),
                           lambda: _static(compiled, compiled_rule, compiled_rule.rule.when,
                                           compiled_rule.loc + ("when",)))


def _static(compiled: CompiledRuleSet, compiled_rule: CompiledRule, condition, loc: tuple) -> _Static:
    if compiled.section == "sample_rules":
        kind, text = condition.key, condition.describe(compiled_rule.bindings)
        at = compiled.loaded.document.at(loc)
        items: tuple = ()
    else:
        kind, text, at, items = compiled.static(condition, loc)
    children = tuple(_static(compiled, compiled_rule, child, loc + where) for where, child in condition.children())
    lowered = compiled.lower(condition, compiled_rule.bindings or None)
    private = any(facts.is_diversity_attribute(a) for a in conditions.attributes(lowered))
    return _Static(kind, text, at, lowered, tuple(items or ()), condition, children, private)


def _finding_value(rule: rules.Rule, criterion: str) -> str | None:
    return next((c.finding.value for c in rule.then
                 if isinstance(c, rules.FindingConclusion) and c.finding.criterion == criterion), None)


def conclusions(compiled: CompiledRuleSet, loaded: Subject, evaluation: Evaluation, judgement: Judgement,
                trace: Trace | None = None) -> dict:
    """Findings, enablers and barriers of one case or organisation, each with its rules and trace."""
    trace = trace or Trace(compiled, evaluation, loaded)
    label = lambda i: compiled.rules[i].label  # noqa: E731 - tiny local helper

    def factor(f: Factor) -> dict:
        return {"id": f.id, "text": f.text, "criterion": f.criterion, "rules": [label(i) for i in f.rules],
                "trace": trace.factor(f)}

    return {"findings": {c: {"value": f.value, "rules": [label(i) for i in f.rules], "trace": trace.finding(f)}
                         for c, f in judgement.findings.items()},
            "enablers": [factor(e) for e in judgement.enablers],
            "barriers": [factor(b) for b in judgement.barriers]}


def case_result(compiled: CompiledRuleSet, case: Subject, evaluation: Evaluation, judgement: Judgement) -> dict:
    """The whole result for one case, with a trace under every conclusion: the JSON contract of
    ``qi evaluate --format json``."""
    framework = compiled.loaded.framework
    label = lambda i: compiled.rules[i].label  # noqa: E731 - tiny local helper
    return {
        "case": case.model.case,
        "file": case.document.path,
        "sha256": case.document.sha256,
        "provider": case.model.provider,
        "framework": {"id": framework.id, "version": framework.version},
        "ruleset": ruleset_ref(compiled),
        **conclusions(compiled, case, evaluation, judgement),
        "derived_facts": {name: [label(i) for i in derivers]
                          for name, derivers in evaluation.derived_by.items() if derivers},
        "rules_fired": [label(i) for i in evaluation.fired],
        "not_assessed": [c for c, f in judgement.findings.items() if f.value == NOT_ASSESSED],
    }
