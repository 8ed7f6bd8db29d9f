"""What a change of rule set can move: which rules of the new set must be evaluated again, and
which fire on every case exactly as their twin in the old set did.

Whether a rule fires on a case depends only on its lowered condition and the values of the
attributes that condition reads. Under one framework a case attribute has the same value whatever
the rule set (its name says what it is), and a derived attribute is true exactly when a rule
writing it fired. So a new rule fires as the old rule of the same label did when the two have the
same lowered condition, conclusions and priority and every derived attribute the condition reads
is *stable*: written by rules of the same signatures in both sets, each of them stable too.

Every other rule is evaluated again, together with every rule writing a derived attribute it
reads (so each phase sees the facts a whole evaluation would), and the rest is carried over from
the old set's evaluation of the same case. :func:`fired` assembles the result; the property tests
hold it equal to evaluating the whole new set.
"""

from __future__ import annotations

import dataclasses
import json

from engine.compile.compile import CompiledRule, CompiledRuleSet, restricted
from engine.compile import conditions


@dataclasses.dataclass(frozen=True)
class Delta:
    """How to judge a case under the new rule set from its evaluation under the old one."""

    #: old rule index -> new rule index, for every new rule that fires exactly as before
    carried: dict[int, int]
    #: the new rule set reduced to the rules evaluated again (None when there are none)
    evaluated: CompiledRuleSet | None
    #: indices of the new rules evaluated again (changed, added, or reading what changed, and the
    #: rules deriving what those read)
    again: frozenset[int]

    @property
    def everything(self) -> bool:
        return not self.carried


def _signature(rule: CompiledRule) -> tuple:
    then = json.dumps([c.model_dump(mode="json") for c in rule.rule.then], sort_keys=True)
    return (rule.label, rule.condition, then, getattr(rule.rule, "priority", 0), rule.writes)


def between(old: CompiledRuleSet, new: CompiledRuleSet) -> Delta:
    """The delta from ``old`` to ``new`` (two compiled case sections). Rule sets for different
    frameworks or sections share nothing: every new rule is evaluated again."""
    comparable = (old.section == new.section == "rules" and old.loaded.framework is new.loaded.framework)
    if not comparable:
        return Delta({}, restricted(new, range(len(new.rules))), frozenset(range(len(new.rules))))
    twins = {_signature(r): r.index for r in old.rules}
    old_writers = _writers(old)
    new_writers = _writers(new)
    derived = set(old_writers) | set(new_writers)
    stable_rule: dict[int, bool] = {}
    stable_attribute: dict[str, bool] = {}

    def attribute_stable(attribute: str) -> bool:
        if attribute not in stable_attribute:
            was = sorted(map(repr, (_signature(old.rules[i]) for i in old_writers.get(attribute, ()))))
            now = sorted(map(repr, (_signature(new.rules[i]) for i in new_writers.get(attribute, ()))))
            stable_attribute[attribute] = was == now and all(rule_stable(i) for i in new_writers.get(attribute, ()))
        return stable_attribute[attribute]

    def rule_stable(index: int) -> bool:
        if index not in stable_rule:
            rule = new.rules[index]
            stable_rule[index] = _signature(rule) in twins and all(
                attribute_stable(a) for a in _reads(rule) if a in derived)
        return stable_rule[index]

    for rule in sorted(new.rules, key=lambda r: r.phase):  # writers before readers: shallow recursion
        rule_stable(rule.index)
    again = {i for i, stable in stable_rule.items() if not stable}
    pending = list(again)
    while pending:  # every writer of what a re-evaluated rule reads is re-evaluated with it
        rule = new.rules[pending.pop()]
        for attribute in _reads(rule):
            for writer in new_writers.get(attribute, ()):
                if writer not in again:
                    again.add(writer)
                    pending.append(writer)
    carried = {twins[_signature(r)]: r.index for r in new.rules if stable_rule[r.index]}
    return Delta(carried, restricted(new, again) if again else None, frozenset(again))


def _writers(compiled: CompiledRuleSet) -> dict[str, tuple[int, ...]]:
    found: dict[str, list[int]] = {}
    for rule in compiled.rules:
        for attribute in rule.writes:
            found.setdefault(attribute, []).append(rule.index)
    return {a: tuple(i) for a, i in found.items()}


def _reads(rule: CompiledRule) -> set[str]:
    return set(conditions.attributes(rule.condition))


def fired(delta: Delta, old_fired, again_fired) -> tuple[int, ...]:
    """The new rules that fire on a case: those carried over from the old evaluation's ``old_fired``
    and those of the re-evaluated rules that fired (``again_fired``, from ``delta.evaluated``)."""
    return tuple(sorted({delta.carried[i] for i in old_fired if i in delta.carried} | set(again_fired)))
