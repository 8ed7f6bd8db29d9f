"""Trace stage: the reasoning behind every conclusion on a case, as one tree.

For each finding, enabler and barrier: the rules that concluded it (id, file:line, rule set id,
version, sha256), each condition with whether it held and the values it saw, the inspector's
evidence it used (item, answer, note, case file:line) and, for derived facts, the rules that
derived them — recursively, down to evidence. *Why-not* gives, for a finding that was not reached,
every rule that could have concluded it and the conditions that failed.

Condition-level detail comes from the Python evaluator of the same lowered condition tree that
durable_rules matched (:mod:`engine.compile.conditions`). The tree is plain data: JSON, text and HTML are
views of it (:mod:`engine.report.views`), never rebuilt per view.
"""

from __future__ import annotations

import dataclasses

from engine.check import rules
from engine.check.sample import Loaded
from engine.compile import conditions, facts
from engine.compile.compile import CompiledRuleSet
from engine.evaluate.evaluate import Evaluation
from engine.judge.judge import NOT_ASSESSED, POLICY, Factor, Finding, Judgement


@dataclasses.dataclass
class Tracer:
    """Builds trace nodes for one case; rule nodes are memoised, so shared derivations are built once."""

    compiled: CompiledRuleSet
    evaluation: Evaluation
    case: Loaded
    _rule_nodes: dict[int, dict] = dataclasses.field(default_factory=dict)
    _ruleset: dict | None = None

    @property
    def reference(self) -> str:
        model = self.case.model
        return getattr(model, "case", None) or f"organisation:{model.organisation}"

    def ruleset_ref(self) -> dict:
        if self._ruleset is None:
            ruleset = self.compiled.ruleset
            self._ruleset = {"id": ruleset.id, "version": ruleset.version, "sha256": self.compiled.loaded.sha256,
                             "file": self.compiled.loaded.document.path}
        return self._ruleset

    # --- rules and conditions ---

    def rule(self, index: int) -> dict:
        if index not in self._rule_nodes:
            compiled_rule = self.compiled.rules[index]
            rule = compiled_rule.rule
            loc = compiled_rule.loc
            self._rule_nodes[index] = {
                "key": f"rule:{rule.id}<case:{self.reference}>",
                "rule": rule.id,
                "title": rule.title,
                "rationale": rule.rationale,
                "at": f"{self.compiled.loaded.document.path}:{compiled_rule.line}",
                "ruleset": self.ruleset_ref(),
                "priority": rule.priority,
                "cites": list(rule.cites),
                "fired": index in self.evaluation.fired,
                "condition": self.condition(rule.when, loc + ("when",)),
            }
        return self._rule_nodes[index]

    def condition(self, condition, loc: tuple) -> dict:
        lowered = self.compiled.lower(condition)
        kind, text, at, items = self.compiled.static(condition, loc)
        node: dict = {"condition": kind, "text": text, "holds": conditions.holds(lowered, self.evaluation.fact),
                      "at": at}
        children = condition.children()
        if children:
            node["children"] = [self.condition(child, loc + where) for where, child in children]
        else:
            node["seen"] = condition.seen(self)
            if items:
                node["evidence"] = [self.evidence(item) for item in items]
            if kind == "fact":
                derivers = self.evaluation.derived_by.get(condition.fact, ())
                node["derived_by"] = [self.rule(i) for i in derivers]
                if not derivers:
                    node["could_be_derived_by"] = [r.rule.id for r in self.compiled.rules if condition.fact in r.derives]
        return node

    # what a condition form's ``seen`` reads (see ``engine.check.rules.Form.seen``)

    @property
    def model(self):
        return self.case.model

    @property
    def fact(self) -> dict:
        return self.evaluation.fact

    @property
    def fields(self) -> dict:
        return self.compiled.schema.fields

    names = facts

    def evidence(self, item: str) -> dict:
        entry = self.case.model.evidence.get(item)
        document = self.case.document
        if entry is None:
            return {"item": item, "answer": facts.NOT_ASSESSED, "note": None, "sources": [],
                    "at": document.path}
        line = document.where(("evidence", item), key=True)[0]
        return {"item": item, "answer": entry.answer, "note": entry.note, "sources": list(entry.sources),
                "at": f"{document.path}:{line}"}

    # --- conclusions ---

    def finding(self, finding: Finding) -> dict:
        criterion = self.compiled.loaded.framework.find(finding.criterion)
        node = {"key": f"finding:{finding.criterion}<case:{self.reference}>", "criterion": finding.criterion,
                "title": criterion.title, "value": finding.value, "policy": POLICY,
                "because": [self.rule(i) for i in finding.rules]}
        if finding.overridden:
            node["overridden"] = [{"rule": self.compiled.rules[i].rule.id,
                                   "value": _finding_value(self.compiled.rules[i].rule, finding.criterion),
                                   "priority": self.compiled.rules[i].rule.priority} for i in finding.overridden]
        if finding.value == NOT_ASSESSED:
            node["note"] = "no rule concluded a finding on this criterion for this case"
        return node

    def factor(self, factor: Factor) -> dict:
        return {"key": f"{factor.kind}:{factor.id}<case:{self.reference}>", "id": factor.id, "text": factor.text,
                "criterion": factor.criterion, "because": [self.rule(i) for i in factor.rules]}

    def why_not(self, criterion: str, value: str, finding: Finding) -> dict:
        """Every rule that could conclude ``value`` on ``criterion``: did it fire, and if not, why."""
        candidates = [r.index for r in self.compiled.rules if _finding_value(r.rule, criterion) == value]
        node = {"key": f"why-not:{criterion}={value}<case:{self.reference}>", "criterion": criterion,
                "value": value, "actual": finding.value, "policy": POLICY,
                "candidates": [self.rule(i) for i in candidates]}
        if finding.value == value:
            node["note"] = f"the finding on {criterion} is {value}"
        elif not candidates:
            node["note"] = f"no rule in the rule set can conclude {value} on {criterion}"
        elif any(i in self.evaluation.fired for i in candidates):
            node["note"] = (f"a rule concluding {value} fired, but the combination policy chose "
                            f"{finding.value}: {POLICY}")
        else:
            node["note"] = f"none of the {len(candidates)} rules that can conclude {value} fired"
        return node


def _finding_value(rule: rules.Rule, criterion: str) -> str | None:
    return next((c.finding.value for c in rule.then
                 if isinstance(c, rules.FindingConclusion) and c.finding.criterion == criterion), None)


def conclusions(compiled: CompiledRuleSet, loaded: Loaded, evaluation: Evaluation, judgement: Judgement) -> dict:
    """Findings, enablers and barriers of one case or organisation, each with its rules and trace."""
    tracer = Tracer(compiled, evaluation, loaded)
    label = lambda i: compiled.rules[i].label  # noqa: E731 - tiny local helper

    def factor(f: Factor) -> dict:
        return {"id": f.id, "text": f.text, "criterion": f.criterion, "rules": [label(i) for i in f.rules],
                "trace": tracer.factor(f)}

    return {"findings": {c: {"value": f.value, "rules": [label(i) for i in f.rules], "trace": tracer.finding(f)}
                         for c, f in judgement.findings.items()},
            "enablers": [factor(e) for e in judgement.enablers],
            "barriers": [factor(b) for b in judgement.barriers]}


def case_result(compiled: CompiledRuleSet, case: Loaded, evaluation: Evaluation, judgement: Judgement) -> dict:
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
        "ruleset": Tracer(compiled, evaluation, case).ruleset_ref(),
        **conclusions(compiled, case, evaluation, judgement),
        "derived_facts": {name: [label(i) for i in derivers]
                          for name, derivers in evaluation.derived_by.items() if derivers},
        "rules_fired": [label(i) for i in evaluation.fired],
        "not_assessed": [c for c, f in judgement.findings.items() if f.value == NOT_ASSESSED],
    }


# --- the whole sample -----------------------------------------------------------------------------


@dataclasses.dataclass
class SampleTracer:
    """Traces sample-level conclusions down to the aggregates they read and the cases counted."""

    compiled: CompiledRuleSet
    evaluation: Evaluation
    aggregates: dict
    _rule_nodes: dict[int, dict] = dataclasses.field(default_factory=dict)

    def rule(self, index: int) -> dict:
        if index not in self._rule_nodes:
            instance = self.compiled.rules[index]
            ruleset = self.compiled.ruleset
            self._rule_nodes[index] = {
                "key": f"rule:{instance.label}<sample>", "rule": instance.rule.id, "instance": instance.bindings,
                "title": instance.rule.title, "rationale": instance.rule.rationale,
                "at": f"{self.compiled.loaded.document.path}:{instance.line}",
                "ruleset": {"id": ruleset.id, "version": ruleset.version, "sha256": self.compiled.loaded.sha256,
                            "file": self.compiled.loaded.document.path},
                "priority": instance.rule.priority, "fired": index in self.evaluation.fired,
                "condition": self.condition(instance, instance.rule.when, instance.loc + ("when",)),
            }
        return self._rule_nodes[index]

    def condition(self, instance, condition, loc: tuple) -> dict:
        lowered = self.compiled.lower(condition, instance.bindings)
        # ratings read ("rated", "criterion_rated") are in "seen"; other figures also under "aggregates"
        line = self.compiled.loaded.document.where(loc)[0]
        node: dict = {"condition": condition.key, "text": condition.describe(instance.bindings),
                      "holds": conditions.holds(lowered, self.evaluation.fact),
                      "at": f"{self.compiled.loaded.document.path}:{line}"}
        children = condition.children()
        if children:
            node["children"] = [self.condition(instance, child, loc + where) for where, child in children]
        else:
            node["seen"] = {a: self.evaluation.fact[a] for a in conditions.attributes(lowered)}
            node["aggregates"] = condition.aggregates(self, instance.bindings)
        return node

    def rating(self, rating) -> dict:
        return {"key": f"rating:{rating.target}/{rating.group}<sample>", "target": rating.target,
                "group": rating.group, "band": rating.band, "because": [self.rule(i) for i in rating.rules],
                "overridden": [{"rule": self.compiled.rules[i].label} for i in rating.overridden]}

    def conclusion(self, conclusion) -> dict:
        return {"key": f"{conclusion.kind}:{conclusion.id}<sample>", "id": conclusion.id, "text": conclusion.text,
                "because": [self.rule(i) for i in conclusion.rules]}
