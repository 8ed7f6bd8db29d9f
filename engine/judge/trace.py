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
ran. A condition's parts are shown holding or failing on the very fact its phase asserted. What
does not depend on the case (each rule's title, rationale and position, each condition's text,
position and items) is the rule set's *rule table*, made once (:func:`rule_table`); what does is
a subject's *record* (:meth:`Trace.record`). A run keeps each case as its line — conclusions and
record (:func:`case_line`) — and the table once, in report.json; :func:`expand` puts the two
together into the full trees, as :meth:`Trace.rule` does in memory. The tree is plain data: JSON,
text and HTML are views of it (:mod:`engine.report.views`).
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
        self._dynamic: dict[int, dict] = {}
        self._evidence: dict[str, dict] = {}
        self._expanding: _Expander | None = None
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

    def label(self, index: int) -> str:
        return self.compiled.rules[index].label

    def rule(self, index: int) -> dict:
        """Rule ``index``'s full node: its part of the rule table with what this subject made of it."""
        return self._expander().rule(self.label(index))

    def dynamic(self, index: int) -> dict:
        """What depends on the subject in rule ``index``'s node (:func:`expand` adds the rest from
        the rule table): whether it fired and what each condition shown held and saw. Memoised, and
        every rule deriving a fact it shows is made too, so a subject's record is complete."""
        if index not in self._dynamic:
            compiled_rule = self.compiled.rules[index]
            node = self._dynamic[index] = {"fired": index in self._fired}  # before: derivations may lead back
            node["condition"] = self._condition(_static_tree(self.compiled, compiled_rule), compiled_rule)
        return self._dynamic[index]

    def _condition(self, static: _Static, compiled_rule: CompiledRule, holds: bool | None = None,
                   parent: bool | None = None) -> dict:
        """A condition's dynamic part: ``holds`` (left out where it equals its parent's), the parts
        shown (``shown``, where some are not), and at a leaf what it saw (left out where it is just
        the answers of the evidence it shows) and the rules that derived the fact it reads."""
        view = self._view(compiled_rule.phase)
        held_here = conditions.holds(static.lowered, view.fact) if holds is None else holds
        node: dict = {} if held_here == parent else {"holds": held_here}
        condition = static.condition
        if static.children:
            held, chosen = self._shown(static, held_here, view)
            if len(chosen) < len(held):
                node["shown"] = chosen
            node["children"] = [self._condition(static.children[i], compiled_rule, held[i], held_here) for i in chosen]
        elif self.sample:
            node["seen"] = {a: view.fact[a] for a in conditions.attributes(static.lowered)}
            node["aggregates"] = condition.aggregates(view, compiled_rule.bindings)
        else:
            seen = condition.seen(view)
            answers = {item: self.evidence(item)["answer"] for item in static.items}
            if seen != answers or list(seen) != list(answers):  # else read back from the evidence
                node["seen"] = seen
            if static.kind == "fact":
                derivers = self.evaluation.derived_by.get(condition.fact, ())
                if derivers:
                    node["derived_by"] = [self.label(i) for i in derivers]
                    for i in derivers:
                        self.dynamic(i)
        return node

    def _expander(self) -> "_Expander":
        if self._expanding is None:
            document = self.subject.document if self.subject is not None else None
            self._expanding = _Expander(rule_table(self.compiled), lambda label: self.dynamic(self._index(label)),
                                        lambda item: self._evidence[item], self.suffix,
                                        document.path if document is not None else "")
        return self._expanding

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
        """The inspector's evidence on ``item`` as a subject's record keeps it: answer, note, sources
        and the line of the case file (none where the item was not answered)."""
        if item not in self._evidence:
            entry = self.subject.model.evidence.get(item)
            if entry is None:
                node = {"answer": facts.NOT_ASSESSED, "note": None, "sources": []}
            else:
                node = {"answer": entry.answer, "note": entry.note, "sources": list(entry.sources),
                        "line": self.subject.document.where(("evidence", item), key=True)[0]}
            self._evidence[item] = node
        return self._evidence[item]

    def record(self, conclusions: dict) -> dict:
        """What a case's line keeps of its traces besides ``conclusions`` (findings, enablers and
        barriers as :func:`summary_conclusions` gives them): the dynamic part of every rule node
        they reach (``rules``, by label) and the evidence those read (``evidence``, by item)."""
        for finding in conclusions["findings"].values():
            for label in finding["rules"]:
                self.dynamic(self._index(label))
        for kind in ("enablers", "barriers"):
            for factor in conclusions[kind]:
                for label in factor["rules"]:
                    self.dynamic(self._index(label))
        return {"rules": {self.label(i): node for i, node in self._dynamic.items()}, "evidence": dict(self._evidence)}

    def _index(self, label: str) -> int:
        return self.compiled.by_label()[label]

    # --- conclusions of a case or organisation ---

    def finding(self, finding: Finding) -> dict:
        return self._expander().finding(finding.criterion, _finding_entry(self.compiled, finding))

    def factor(self, factor: Factor) -> dict:
        return self._expander().factor(factor.kind, _factor_entry(self.compiled, factor))

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


def _finding_entry(compiled: CompiledRuleSet, finding: Finding) -> dict:
    """A finding as a case's record keeps it: its value and rules, and the rules it overrode."""
    entry: dict = {"value": finding.value, "rules": [compiled.rules[i].label for i in finding.rules]}
    if finding.overridden:
        entry["overridden"] = [{"rule": compiled.rules[i].rule.id,
                                "value": _finding_value(compiled.rules[i].rule, finding.criterion),
                                "priority": compiled.rules[i].rule.priority} for i in finding.overridden]
    return entry


def _factor_entry(compiled: CompiledRuleSet, factor: Factor) -> dict:
    return {"id": factor.id, "text": factor.text, "criterion": factor.criterion,
            "rules": [compiled.rules[i].label for i in factor.rules]}


def conclusions(compiled: CompiledRuleSet, loaded: Subject, evaluation: Evaluation, judgement: Judgement,
                trace: Trace | None = None) -> dict:
    """Findings, enablers and barriers of one case or organisation, each with its rules and full trace."""
    trace = trace or Trace(compiled, evaluation, loaded)
    return {"findings": {c: {"value": f.value, "rules": [compiled.rules[i].label for i in f.rules],
                             "trace": trace.finding(f)} for c, f in judgement.findings.items()},
            "enablers": [{**_factor_entry(compiled, e), "trace": trace.factor(e)} for e in judgement.enablers],
            "barriers": [{**_factor_entry(compiled, b), "trace": trace.factor(b)} for b in judgement.barriers]}


def case_line(compiled: CompiledRuleSet, case: Subject, evaluation: Evaluation, judgement: Judgement) -> dict:
    """One case's whole result as its line of trace.jsonl and the audit store keep it: its
    conclusions, and under ``rules`` and ``evidence`` what its traces saw; what every case's trace
    repeats (a rule's title, rationale, position, each condition's text) is in the run's rule table
    (:func:`rule_table`, report.json's ``traces.rules``). :func:`expand` gives the full result."""
    framework = compiled.loaded.framework
    label = lambda i: compiled.rules[i].label  # noqa: E731 - tiny local helper
    found = {"findings": {c: _finding_entry(compiled, f) for c, f in judgement.findings.items()},
             "enablers": [_factor_entry(compiled, e) for e in judgement.enablers],
             "barriers": [_factor_entry(compiled, b) for b in judgement.barriers]}
    return {
        "case": case.model.case,
        "file": case.document.path,
        "sha256": case.document.sha256,
        "provider": case.model.provider,
        "framework": {"id": framework.id, "version": framework.version},
        "ruleset": ruleset_ref(compiled),
        **found,
        "derived_facts": {name: [label(i) for i in derivers]
                          for name, derivers in evaluation.derived_by.items() if derivers},
        "rules_fired": [label(i) for i in evaluation.fired],
        "not_assessed": [c for c, f in judgement.findings.items() if f.value == NOT_ASSESSED],
        **Trace(compiled, evaluation, case).record(found),
    }


def case_result(compiled: CompiledRuleSet, case: Subject, evaluation: Evaluation, judgement: Judgement) -> dict:
    """The whole result for one case, with a full trace under every conclusion: the JSON contract
    of ``qi evaluate --format json`` (its line, :func:`case_line`, expanded)."""
    return expand(case_line(compiled, case, evaluation, judgement), rule_table(compiled))


# --- the rule table, and a case's line expanded with it -------------------------------------------

def rule_table(compiled: CompiledRuleSet) -> dict:
    """What every trace of the rule set says whatever the subject, made once: the rule set, the
    combination policy, each criterion's title, and each rule's id, title, rationale, position,
    priority, cited items and condition tree (each condition's kind, text, position, the items whose
    evidence it shows and, for a derived fact, the rules that can derive it)."""
    def make() -> dict:
        derivers = _derivers(compiled)

        def condition(static: _Static) -> dict:
            node: dict = {"condition": static.kind, "text": static.text, "at": static.at}
            if static.children:
                node["children"] = [condition(child) for child in static.children]
            elif not compiled.section == "sample_rules":
                if static.items:
                    node["items"] = list(static.items)
                if static.kind == "fact":
                    node["could_be_derived_by"] = list(derivers.get(static.condition.fact, ()))
            return node

        entries = {}
        for compiled_rule in compiled.rules:
            rule = compiled_rule.rule
            entry: dict = {"rule": rule.id}
            if compiled.section == "sample_rules":
                entry["instance"] = compiled_rule.bindings
            entry.update({"title": rule.title, "rationale": rule.rationale,
                          "at": compiled.loaded.document.at(compiled_rule.loc), "priority": rule.priority})
            if compiled.section != "sample_rules":
                entry["cites"] = list(rule.cites)
            entry["condition"] = condition(_static_tree(compiled, compiled_rule))
            entries[compiled_rule.label] = entry
        titles = {c.id: c.title for s in compiled.loaded.framework.standards for c in s.criteria}
        return {"ruleset": ruleset_ref(compiled), "policy": POLICY, "criteria": titles, "rules": entries}
    return compiled.cached(("trace", "table"), make)


def is_line(result: dict) -> bool:
    """Whether ``result`` is a case's line (:func:`case_line`), not an expanded result."""
    return isinstance(result.get("rules"), dict) and isinstance(result.get("evidence"), dict)


def expand(line: dict, table: dict) -> dict:
    """A case's line (:func:`case_line`) as its full result, each conclusion with its whole trace,
    built from the line and the run's rule table. A result already full (as stores written before
    lines were kept say) is returned as it is. Raises ValueError on a line the table cannot expand
    (another rule set's, or a rule or item it does not hold)."""
    if not is_line(line):
        return line
    if line.get("ruleset", {}).get("sha256") != table.get("ruleset", {}).get("sha256"):
        raise ValueError("the case's line names another rule set than the run's rule table")
    expander = _expander(line, table)
    try:
        result = {}
        for key, value in line.items():
            if key in ("rules", "evidence"):
                continue
            if key == "findings":
                value = {c: {**{k: v for k, v in f.items() if k != "overridden"}, "trace": expander.finding(c, f)}
                         for c, f in value.items()}
            elif key in ("enablers", "barriers"):
                value = [{**f, "trace": expander.factor(key[:-1], f)} for f in value]
            result[key] = value
    except (KeyError, TypeError, IndexError, AttributeError) as error:
        raise ValueError(f"the case's line does not match the run's rule table ({error!r})") from None
    return result


def finding_trace(line: dict, criterion: str, table: dict | None) -> dict:
    """The full trace of one finding of a case's line (or of a result already full): what reading
    one finding costs, not the whole case."""
    if not is_line(line) or table is None:
        return line["findings"][criterion].get("trace", {})
    return _expander(line, table).finding(criterion, line["findings"][criterion])


def _expander(line: dict, table: dict) -> _Expander:
    return _Expander(table, line["rules"].__getitem__, line["evidence"].__getitem__, f"<case:{line['case']}>",
                     line["file"])


class _Expander:
    """Full trace nodes from the rule table and one subject's record of it: ``dynamic(label)`` gives
    a rule's dynamic part, ``evidence(item)`` an item's evidence. Rule nodes are memoised, so a shared
    derivation is one node."""

    def __init__(self, table: dict, dynamic, evidence, suffix: str, file: str) -> None:
        self.table, self.dynamic, self.evidence_of = table, dynamic, evidence
        self.suffix, self.file = suffix, file
        self._rules: dict[str, dict] = {}

    def rule(self, label: str) -> dict:
        if label not in self._rules:
            static, dynamic = self.table["rules"][label], self.dynamic(label)
            node = {"key": f"rule:{label}{self.suffix}", "rule": static["rule"]}
            if "instance" in static:
                node["instance"] = static["instance"]
            node.update({"title": static["title"], "rationale": static["rationale"], "at": static["at"],
                         "ruleset": dict(self.table["ruleset"]), "priority": static["priority"]})
            if "cites" in static:
                node["cites"] = list(static["cites"])
            node["fired"] = dynamic["fired"]
            self._rules[label] = node  # before the condition: derivations may lead back here
            node["condition"] = self.condition(static["condition"], dynamic["condition"], None)
        return self._rules[label]

    def condition(self, static: dict, dynamic: dict, parent: bool | None) -> dict:
        holds = dynamic.get("holds", parent)
        node: dict = {"condition": static["condition"], "text": static["text"], "holds": holds, "at": static["at"]}
        if "children" in static:
            parts = static["children"]
            shown = dynamic.get("shown", range(len(parts)))
            if len(shown) < len(parts):
                node["not_shown"] = len(parts) - len(shown)
            node["children"] = [self.condition(parts[i], child, holds) for i, child in zip(shown, dynamic["children"], strict=True)]
            return node
        node["seen"] = (dynamic["seen"] if "seen" in dynamic
                        else {item: self.evidence_of(item)["answer"] for item in static.get("items", ())})
        if "aggregates" in dynamic:
            node["aggregates"] = dynamic["aggregates"]
        if static.get("items"):
            node["evidence"] = [self.evidence(item) for item in static["items"]]
        if "could_be_derived_by" in static:
            derivers = dynamic.get("derived_by", [])
            node["derived_by"] = [self.rule(label) for label in derivers]
            if not derivers:
                node["could_be_derived_by"] = list(static["could_be_derived_by"])
        return node

    def evidence(self, item: str) -> dict:
        entry = self.evidence_of(item)
        at = f"{self.file}:{entry['line']}" if "line" in entry else self.file
        return {"item": item, "answer": entry["answer"], "note": entry["note"], "sources": list(entry["sources"]),
                "at": at}

    def finding(self, criterion: str, entry: dict) -> dict:
        value = entry.get("engine", entry["value"])  # a reviewed run's line marks the final value
        node = {"key": f"finding:{criterion}{self.suffix}", "criterion": criterion,
                "title": self.table["criteria"][criterion], "value": value, "policy": self.table["policy"],
                "because": [self.rule(label) for label in entry["rules"]]}
        if entry.get("overridden"):
            node["overridden"] = [dict(o) for o in entry["overridden"]]
        if value == NOT_ASSESSED:
            node["note"] = "no rule concluded a finding on this criterion for this case"
        return node

    def factor(self, kind: str, entry: dict) -> dict:
        return {"key": f"{kind}:{entry['id']}{self.suffix}", "id": entry["id"], "text": entry["text"],
                "criterion": entry["criterion"], "because": [self.rule(label) for label in entry["rules"]]}
