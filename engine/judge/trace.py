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
from engine.compile import conditions, facts
from engine.compile.compile import CompiledRule, CompiledRuleSet
from engine.evaluate.evaluate import Evaluation
from engine.judge.judge import NOT_ASSESSED, POLICY, Factor, Finding, Judgement


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
    body: Any
    condition: Any
    children: tuple
    answers: tuple  # (item, fact attribute) of the items an answer condition reads


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
        self._phase_facts: dict[int, dict] = {}
        model = subject.model if subject is not None else None
        self.reference = (getattr(model, "case", None) or f"organisation:{model.organisation}") if model else None
        self.suffix = "<sample>" if self.sample else f"<case:{self.reference}>"

    def ruleset_ref(self) -> dict:
        return ruleset_ref(self.compiled)

    def _fact(self, phase: int) -> dict:
        """The fact a rule of ``phase`` was matched against, as the tracer recorded it."""
        if phase not in self._phase_facts:
            self._phase_facts[phase] = {**self.evaluation.fact, **self.evaluation.record.derived_in(phase)}
        return self._phase_facts[phase]

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
                         "at": f"{self.compiled.loaded.document.path}:{compiled_rule.line}",
                         "ruleset": self.ruleset_ref(), "priority": rule.priority})
            if not self.sample:
                node["cites"] = list(rule.cites)
            node["fired"] = index in self._fired
            self._rule_nodes[index] = node  # before the condition: derivations may lead back here
            node["condition"] = self._condition(_static_tree(self.compiled, compiled_rule), compiled_rule)
        return self._rule_nodes[index]

    def _condition(self, static: _Static, compiled_rule: CompiledRule) -> dict:
        fact = self._fact(compiled_rule.phase)
        node: dict = {"condition": static.kind, "text": static.text, "holds": conditions.holds(static.lowered, fact),
                      "at": static.at}
        if static.kind in ("all", "any", "not"):
            node["children"] = [self._condition(child, compiled_rule) for child in static.children]
        elif self.sample:
            node["seen"] = {a: fact[a] for a in conditions.attributes(static.lowered)}
            node["aggregates"] = self._aggregates(static.kind, static.body, compiled_rule.bindings)
        else:
            node["seen"] = self._seen(static.condition, static.kind, static.body, fact, static.answers)
            if static.items:
                node["evidence"] = [self.evidence(item) for item in static.items]
            if static.kind == "fact":
                derivers = self.evaluation.derived_by.get(static.body, ())
                node["derived_by"] = [self.rule(i) for i in derivers]
                if not derivers:
                    node["could_be_derived_by"] = [r.rule.id for r in self.compiled.rules if static.body in r.derives]
        return node

    def _seen(self, condition, kind: str, body, fact: dict, static_answers: tuple = ()) -> dict:
        case = self.subject.model
        if kind == "provider":
            return {"provider": getattr(case, "provider", None) or getattr(case, "organisation", None)}
        if kind in ("answer", "any_answer", "all_answers", "at_least", "not_assessed"):
            return {item: fact[attribute] for item, attribute in static_answers}
        if kind == "risk_at_least":
            return {"risk_of_serious_harm": case.risk_of_serious_harm}
        if kind == "sentence_type":
            return {"sentence_type": case.sentence.type}
        if kind == "requirement":
            return {"requirements": list(case.sentence.requirements)}
        if kind == "flag":
            return {"flags": list(case.flags)}
        if kind in ("mappa", "mappa_category", "mappa_level_at_least"):
            return {"mappa": case.mappa.model_dump() if case.mappa else None}
        if kind == "diversity":
            return {body.field: case.diversity.get(body.field, facts.NOT_GIVEN)}
        return {body: fact[facts.fact_attribute(body)]}

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

    def _aggregates(self, kind: str, body, bindings: dict) -> list[dict]:
        """The aggregate figures a sample condition read, each with the cases behind it."""
        group = getattr(body, "provider", None) or bindings.get("provider")
        group_key = f"provider:{group}" if group else "all"

        def target_of(b) -> dict:
            criterion = getattr(b, "criterion", None)
            standard = getattr(b, "standard", None)
            if criterion is None and standard is None:
                criterion, standard = bindings.get("criterion"), bindings.get("standard")
            return self.aggregates["targets"][criterion if criterion else f"standard {standard}"]

        def figures(target: dict, key: str) -> dict:
            found = target["groups"].get(key)
            return {"target": target["id"], "kind": target["kind"], "group": key,
                    **({k: found[k] for k in ("counts", "applicable", "percent", "small", "cases") if k in found}
                       if found else {"applicable": 0, "percent": None})}

        if kind == "percent_sufficient":
            return [figures(target_of(body), group_key)]
        if kind == "share_with":
            factor = f"barrier:{body.barrier}" if body.barrier else f"enabler:{body.enabler}"
            share = self.aggregates["factors"][factor]["groups"].get(group_key, {})
            return [{"factor": factor, "group": group_key, **share}]
        if kind == "gap":
            target = target_of(body)
            gap = target["gaps"][body.between]
            return [{"target": target["id"], "between": body.between,
                     **{k: v for k, v in gap.items() if k != "exact_points"}}] + \
                [figures(target, key) for key in gap["compared"]]
        if kind == "provider_below":
            target = target_of(body)
            return [figures(target, f"provider:{body.provider}"), figures(target, f"provider:{body.other}")]
        return []

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


def _static_tree(compiled: CompiledRuleSet, compiled_rule: CompiledRule) -> _Static:
    """The case-independent part of a rule's condition tree (cached on the rule set)."""
    return compiled.cached(("trace", "rule", compiled_rule.index),
                           lambda: _static(compiled, compiled_rule, compiled_rule.rule.when,
                                           compiled_rule.loc + ("when",)))


def _static(compiled: CompiledRuleSet, compiled_rule: CompiledRule, condition, loc: tuple) -> _Static:
    if compiled.section == "sample_rules":
        kind = next(n for n, cls in rules._SAMPLE_CONDITIONS.items() if type(condition) is cls)
        body = getattr(condition, "not_" if kind == "not" else kind)
        text = rules.describe_sample(condition, compiled_rule.bindings)
        at = f"{compiled.loaded.document.path}:{compiled.loaded.document.where(loc)[0]}"
        items: tuple = ()
    else:
        kind, text, at, items = compiled.static(condition, loc)
        body = rules.condition_body(condition)
    if kind in ("all", "any"):
        children = tuple(_static(compiled, compiled_rule, child, loc + (kind, i)) for i, child in enumerate(body))
    elif kind == "not":
        children = (_static(compiled, compiled_rule, body, loc + ("not",)),)
    else:
        children = ()
    answers = () if compiled.section == "sample_rules" or kind in ("all", "any", "not") else tuple(
        (item, facts.answer_attribute(item)) for item in rules.items_of(condition))
    return _Static(kind, text, at, compiled.lower(condition, compiled_rule.bindings or None), tuple(items or ()),
                   body, condition, children, answers)


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
