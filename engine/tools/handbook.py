"""The methodology handbook, generated from a rule set: for each standard and criterion the
framework text beside the rules that implement it, in plain English; the sample-level rules and
rating bands; and the items no rule reads. Reviewers and inspectors read the method here, never
in YAML."""

from __future__ import annotations

from pydantic import TypeAdapter

from engine.aggregate import statistics
from engine.base import render
from engine.check import rules
from engine.check.rules.conditions import Condition
from engine.judge.judge import POLICY


def model(loaded: rules.LoadedRuleSet) -> dict:
    """The handbook as data: what the Markdown and HTML views render."""
    framework = loaded.framework
    ruleset = loaded.rules
    path = loaded.document.path

    def rule_entry(rule, section: str, index: int) -> dict:
        return {"id": rule.id, "title": rule.title, "rationale": rule.rationale,
                "at": loaded.document.at((section, index)),
                "priority": rule.priority, "cites": list(rule.cites),
                "for_each": list(getattr(rule, "for_each", [])),
                "when": _condition(rule.when), "then": [_conclusion(c) for c in rule.then]}

    concluding: dict[str, list[dict]] = {}
    context: list[dict] = []
    read: set[str] = set()
    for section in ("rules", "organisation_rules"):
        for index, rule in enumerate(getattr(ruleset, section)):
            entry = rule_entry(rule, section, index)
            criteria = sorted({body.criterion for c in rule.then
                               for body in [getattr(c, k, None) for k in ("finding", "enabler", "barrier")] if body})
            for criterion in criteria:
                concluding.setdefault(criterion, []).append(entry)
            if not criteria:
                context.append(entry)
            read |= {item for _, c in rules.walk(rule.when) for item in c.item_ids()}
    described = {f.id: f.description for f in ruleset.facts}
    methods = {d.criterion: _method(d, described, framework) for d in [*ruleset.criteria, *ruleset.organisation_criteria]}
    standards = [{"id": s.id, "title": s.title, "scope": s.scope, "dimension": s.dimension,
                  "criteria": [{"id": c.id, "title": c.title, "method": methods.get(c.id),
                                "items": [{"id": i.id, "text": i.text, "read": i.id in read} for i in c.items],
                                "rules": concluding.get(c.id, [])} for c in s.criteria]}
                 for s in framework.standards]
    return {
        "ruleset": {"id": ruleset.id, "title": ruleset.title, "version": ruleset.version,
                    "description": ruleset.description, "sha256": loaded.sha256, "file": path,
                    "in_force": ({"from": ruleset.in_force.from_.isoformat(),
                                  "to": ruleset.in_force.to.isoformat() if ruleset.in_force.to else None}
                                 if ruleset.in_force else None)},
        "framework": {"id": framework.id, "version": framework.version, "title": framework.title,
                      "working_model": framework.introduction.working_model},
        "policy": POLICY,
        "scale": {meaning: _either(framework.vocabulary.answers_meaning(*meanings)) for meaning, meanings in
                  (("met", ("met",)), ("not_met", ("not_met",)), ("short", ("met_in_part", "not_met")),
                   ("applies", ("met", "met_in_part", "not_met")), ("not_applicable", ("not_applicable",)))},
        "facts": [{"id": f.id, "description": f.description} for f in ruleset.facts],
        "context_rules": context,
        "standards": standards,
        "sample": {"min_group_size": ruleset.sample.min_group_size, "gap_points": ruleset.sample.gap_points,
                   "significance": ruleset.sample.significance, "confidence": ruleset.sample.confidence,
                   "adjust": statistics.ADJUSTMENTS.get(ruleset.sample.adjust),
                   "bands": list(ruleset.sample.bands), "rating_method": ruleset.sample.method_text(),
                   "recipients": [r.model_dump() for r in ruleset.sample.recipients],
                   "rules": [rule_entry(r, "sample_rules", i) for i, r in enumerate(ruleset.sample_rules)]},
        "unread_items": [i.id for i in framework.items() if i.id not in read],
    }


def _either(words: list[str]) -> str:
    """``yes, in part or no``.

    >>> _either(["yes", "in part", "no"]), _either(["yes", "no"]), _either(["met"])
    ('yes, in part or no', 'yes or no', 'met')
    """
    return " or ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)


def _method(declaration, facts: dict[str, str], framework) -> dict:
    """A criterion declaration in plain words: what it counts, when, and what is decisive."""
    def when(condition: dict) -> str:
        parsed = TypeAdapter(Condition).validate_python(condition, context={"framework": framework})
        if set(condition) == {"fact"} and condition["fact"] in facts:
            text = facts[condition["fact"]].rstrip(".")
            return text[:1].lower() + text[1:] if text[1:2].islower() else text
        parts = [c.describe({}) for _, c in rules.walk(parsed)]
        return parts[0] if len(parts) == 1 else parts[0] + ": " + "; ".join(parts[1:])
    return {"core": list(declaration.core),
            "expected_when": [{"item": item, "when": when(c)} for item, c in declaration.expected_when.items()],
            "key": list(declaration.key), "protection": list(declaration.protection),
            "protection_when": when(declaration.protection_when) if declaration.protection_when else None,
            "key_when": [{"item": item, "when": when(c)} for item, c in declaration.key_when.items()],
            "decisive_when": [{"item": item, "when": when(c)} for item, c in declaration.decisive_when.items()],
            "threshold": f"{declaration.threshold:g}", "rationale": declaration.rationale}


def _condition(condition: rules.Form) -> dict:
    return {"text": condition.describe({}), "children": [_condition(c) for _, c in condition.children()]}


def _conclusion(conclusion) -> str:
    if isinstance(conclusion, rules.FindingConclusion):
        return f"{conclusion.finding.criterion} is {conclusion.finding.value.replace('_', ' ')}"
    if isinstance(conclusion, rules.FactConclusion):
        return f"the fact {conclusion.fact} holds"
    if isinstance(conclusion, rules.RecommendationConclusion):
        body = conclusion.recommendation
        return f"recommend to {', '.join(body.to)}: {body.text}"
    if isinstance(conclusion, rules.RatingConclusion):
        body = conclusion.rating
        target = body.criterion or (f"standard {body.standard}" if body.standard else "the instance's criterion or standard")
        return f"rate {target}{' for ' + body.provider if body.provider else ''} {body.band.replace('_', ' ')}"
    kind = "enabler" if hasattr(conclusion, "enabler") else "barrier"
    body = getattr(conclusion, kind)
    where = getattr(body, "criterion", None)
    return f"{kind} {body.id}{' under ' + where if where else ''}: {body.text}"


def as_markdown(loaded: rules.LoadedRuleSet) -> str:
    return render.render("handbook.md.j2", h=model(loaded))


def as_html(loaded: rules.LoadedRuleSet) -> str:
    return render.render("handbook.html.j2", h=model(loaded))

