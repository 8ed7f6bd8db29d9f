"""Lint: static checks of a rule set, beyond what loading and compiling already reject.

Errors (the rule set cannot be used): everything ``qi validate`` reports — unknown items, fields,
values and facts, duplicate rule ids, cycles between derived facts, conditions too large.

Warnings (it can be used, but probably does not say what its authors intend):

* ``fact_never_derived`` / ``fact_never_read`` — a declared fact no rule concludes, or none reads;
* ``criterion_not_covered`` — a criterion no rule can conclude a finding on;
* ``rule_never_fires`` — contradictory conditions: no case (or sample) satisfies them;
* ``conflicting_rules`` — two rules of equal priority that can conclude different findings on the
  same criterion for one case, with a witness showing it;
* ``uncited_item`` / ``cited_not_read`` — ``cites`` that do not match the items the rule reads;
* ``protection_not_key`` — a criterion declaration's protection line that is not also key: its
  ``no`` decides the criterion only where protection is the priority, and is merely counted
  elsewhere;
* ``low_threshold`` — a declaration that calls a criterion sufficient with fewer than half of its
  applicable lines met.

Satisfiability is decided exactly by the search in :mod:`engine.compile.satisfy` (what-if
explanations use the same search).
"""

from __future__ import annotations

import dataclasses
import itertools

from engine.base.diagnostics import Diagnostic, InputError
from engine.check import criteria, rules
from engine.compile import compile as compiler
from engine.compile import conditions, facts, satisfy


def lint(path) -> list[Diagnostic]:
    """Every diagnostic for one rule set file: errors if it cannot be loaded or compiled, else
    the warnings above."""
    try:
        loaded = rules.load(path)
        sections = [compiler.compile_rules(loaded), compiler.compile_organisation(loaded),
                    compiler.compile_sample(loaded)]
    except InputError as error:
        return error.diagnostics
    found: list[Diagnostic] = []
    found += _facts(loaded)
    found += _declarations(loaded)
    for compiled in sections:
        found += _never_fires(compiled)
        if compiled.section != "sample_rules":
            found += _coverage(compiled)
            found += _conflicts(compiled)
            found += _cites(compiled)
    return found


def _warning(loaded: rules.LoadedRuleSet, loc: tuple, code: str, message: str, hint: str, key=False) -> Diagnostic:
    return loaded.document.diagnostic(loc, code, message, hint, key=key, severity="warning")


def _facts(loaded: rules.LoadedRuleSet) -> list[Diagnostic]:
    ruleset = loaded.rules
    derived, read = set(), set()
    for rule in [*ruleset.rules, *ruleset.organisation_rules, *ruleset.sample_rules]:
        derived |= {c.fact for c in rule.then if isinstance(c, rules.FactConclusion)}
        read |= {name for _, name in rules.facts_read(rule.when)}
    found = []
    for index, fact in enumerate(ruleset.facts):
        if fact.id not in derived:
            found.append(_warning(loaded, ("facts", index), "fact_never_derived",
                                  f"fact {fact.id!r} is declared but no rule derives it", "add a rule that concludes it, "
                                  "or remove it and the conditions that read it"))
        if fact.id not in read:
            found.append(_warning(loaded, ("facts", index), "fact_never_read",
                                  f"fact {fact.id!r} is derived but no rule reads it", "read it with fact:, or remove it"))
    return found


#: Below this % of applicable lines met, a declared threshold is warned (low_threshold).
LOW_THRESHOLD = 50


def _declarations(loaded: rules.LoadedRuleSet) -> list[Diagnostic]:
    found = []
    for section in ("criteria", "organisation_criteria"):
        for index, declared in enumerate(getattr(loaded.rules, section)):
            at = (section, index)
            for position, item in enumerate(declared.protection):
                if item not in declared.key:
                    found.append(_warning(loaded, at + ("protection", position), "protection_not_key",
                                          f"{item} is a protection line of {declared.criterion} but not key: a no on it "
                                          "is only counted where protection is not the priority",
                                          "add it to key, or say in the rationale why a no can be outweighed"))
            if declared.threshold < LOW_THRESHOLD:
                found.append(_warning(loaded, at + ("threshold",), "low_threshold",
                                      f"{declared.criterion} is sufficient with {declared.threshold:g}% of its applicable "
                                      "lines met, fewer than half", "check the threshold: a percentage, e.g. 66"))
    return found


def _coverage(compiled: compiler.CompiledRuleSet) -> list[Diagnostic]:
    scope = "case" if compiled.section == "rules" else "organisation"
    concluded = {c.finding.criterion for r in compiled.rules for c in r.rule.then
                 if isinstance(c, rules.FindingConclusion)}
    framework = compiled.loaded.framework
    found = []
    for standard in framework.standards:
        if standard.scope != scope:
            continue
        for criterion in standard.criteria:
            if criterion.id not in concluded:
                found.append(_warning(compiled.loaded, (compiled.section,), "criterion_not_covered",
                                      f"no rule can conclude a finding on {scope} criterion {criterion.id}",
                                      f"add rules for {criterion.id} ({criterion.title}); until then every "
                                      f"{scope} is not_assessed on it", key=True))
    return found


def _declared(compiled: compiler.CompiledRuleSet) -> set[str]:
    """Rules expanded from criterion declarations: exclusive and satisfiable by construction
    (engine/check/criteria.py and its tests), so the search skips them."""
    return criteria.rule_ids(compiled.ruleset.criteria + compiled.ruleset.organisation_criteria)


def _never_fires(compiled: compiler.CompiledRuleSet) -> list[Diagnostic]:
    found = []
    declared = _declared(compiled)
    schema = _schema_for_search(compiled)
    seen: set[int] = set()
    for rule in compiled.rules:
        index = rule.loc[1]
        if index in seen:
            continue
        instances = [r for r in compiled.rules if r.loc == rule.loc]
        if rule.rule.id in declared:
            continue
        if all(witness(r.condition, schema) is None for r in instances):
            seen.add(index)
            found.append(_warning(compiled.loaded, rule.loc + ("when",), "rule_never_fires",
                                  f"rule {rule.rule.id!r} can never fire: no case satisfies its conditions",
                                  "look for an item required to have two answers, a value both required and "
                                  "excluded, or a fact no rule derives"))
        seen.add(index)
    return found


def _schema_for_search(compiled: compiler.CompiledRuleSet) -> facts.Schema:
    """The schema with facts no rule derives fixed to false: they can never hold."""
    derived = {name for r in compiled.rules for name in r.derives}
    domains = dict(compiled.schema.domains)
    for fact in compiled.ruleset.facts:
        if fact.id not in derived:
            domains[facts.fact_attribute(fact.id)] = (False,)
    return dataclasses.replace(compiled.schema, domains=domains)


def _conflicts(compiled: compiler.CompiledRuleSet) -> list[Diagnostic]:
    found = []
    declared = _declared(compiled)
    schema = _schema_for_search(compiled)
    by_criterion: dict[str, list[tuple[compiler.CompiledRule, str]]] = {}
    for rule in compiled.rules:
        for conclusion in rule.rule.then:
            if isinstance(conclusion, rules.FindingConclusion):
                by_criterion.setdefault(conclusion.finding.criterion, []).append((rule, conclusion.finding.value))
    for criterion, concluding in sorted(by_criterion.items()):
        for (first, value), (second, other) in itertools.combinations(concluding, 2):
            if value == other or first.rule.priority != second.rule.priority:
                continue
            if first.rule.id in declared and second.rule.id in declared:
                continue
            example = witness(conditions.all_of([first.condition, second.condition]), schema)
            if example is None:
                continue
            found.append(_warning(
                compiled.loaded, second.loc, "conflicting_rules",
                f"rules {first.rule.id!r} ({value}) and {second.rule.id!r} ({other}) can both conclude on "
                f"{criterion} for one case, at equal priority {first.rule.priority}: for example "
                f"{describe_witness(example, compiled)}",
                "give the rule that should decide a higher priority, or make the conditions exclusive", key=True))
    return found


def _cites(compiled: compiler.CompiledRuleSet) -> list[Diagnostic]:
    """Cited items against the items each rule reads, directly or through the facts it reads."""
    derivers: dict[str, list[compiler.CompiledRule]] = {}
    for rule in compiled.rules:
        for name in rule.derives:
            derivers.setdefault(name, []).append(rule)

    def items_read(rule: compiler.CompiledRule, seen: frozenset = frozenset()) -> set[str]:
        direct = {item for loc, c in rules.walk(rule.rule.when) for item in c.item_ids()}
        for _, name in rules.facts_read(rule.rule.when):
            for deriver in derivers.get(name, []):
                if deriver.index not in seen:
                    direct |= items_read(deriver, seen | {rule.index})
        return direct

    found = []
    for rule in compiled.rules:
        direct = {item for _, c in rules.walk(rule.rule.when) for item in c.item_ids()}
        cited = set(rule.rule.cites)
        for item in sorted(direct - cited):
            found.append(_warning(compiled.loaded, rule.loc + ("cites",), "uncited_item",
                                  f"rule {rule.rule.id!r} reads {item} but does not cite it", f"add {item} to cites"))
        for item in sorted(cited - items_read(rule)):
            position = rule.rule.cites.index(item)
            found.append(_warning(compiled.loaded, rule.loc + ("cites", position), "cited_not_read",
                                  f"rule {rule.rule.id!r} cites {item} but neither it nor the facts it reads "
                                  f"depend on {item}", f"remove {item} from cites, or read it"))
    return found


# --- satisfiability: the exact search lives in engine.compile.satisfy ------------------------------

witness = satisfy.witness


def describe_witness(assignment: dict, compiled: compiler.CompiledRuleSet) -> str:
    """A witness in the words of a case file: ``3.4.a: no, flag child_safeguarding, ...`` (the
    schema words each attribute; the condition form that added an attribute says how it reads)."""
    words = [compiled.schema.word(attribute, value) for attribute, value in sorted(assignment.items())]
    return ", ".join(w for w in words if w) or "any case"
