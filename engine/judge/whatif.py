"""What-if: the smallest sets of answer changes that would change a finding.

"3.4 would be sufficient if 3.4.a were yes instead of no." The answer is computed, not guessed:

1. each rule's firing is written as one condition over the case's attributes, with every derived
   fact it reads replaced by the firing conditions of the rules that derive it (exact, because
   rules run in phases: a fact holds exactly when a rule deriving it fired in an earlier phase);
2. the combination policy (:mod:`engine.judge.judge`) is written over those conditions: "3.4 is
   sufficient" holds when a rule concluding sufficient fires at some priority, no rule at a higher
   priority concludes on 3.4, and no rule at that priority concludes a more severe value;
3. the case's context (provider and every context field) is fixed to its values, and the exact
   satisfiability search that ``qi rules lint`` uses (:mod:`engine.compile.satisfy`) decides, for
   sets of 1, 2, ... answers changed and every other answer kept, whether some new answers give
   the finding. Only the smallest such sets are listed, each with the new answers that work.

Answers change to the answers an inspector can give (the framework vocabulary); an item not
assessed may become answered, but an answer is never changed to "not assessed".
"""

from __future__ import annotations

import dataclasses
import itertools

from engine.compile import conditions, facts, satisfy
from engine.compile.compile import CompiledRuleSet
from engine.judge.judge import NOT_ASSESSED, SEVERITY
from engine.judge.trace import _finding_value

FINDINGS = (*SEVERITY, NOT_ASSESSED)
#: The largest change set searched for by default: beyond it a finding is "not reachable by a few
#: changes", which is all a reviewer needs to know.
MAX_CHANGES = 3


@dataclasses.dataclass(frozen=True)
class Change:
    item: str
    before: str
    after: str

    def as_dict(self) -> dict:
        return {"item": self.item, "from": self.before, "to": self.after}


@dataclasses.dataclass(frozen=True)
class Alternative:
    """A set of answer changes and the finding it gives."""

    finding: str
    changes: tuple[Change, ...]

    def as_dict(self) -> dict:
        return {"changes": [c.as_dict() for c in self.changes], "finding": self.finding}


@dataclasses.dataclass(frozen=True)
class WhatIf:
    """Every smallest change set per other finding; the findings no change of answers reaches; and
    those that need more than ``max_changes`` changes (not listed)."""

    criterion: str
    finding: str
    alternatives: tuple[Alternative, ...]
    unreachable: tuple[str, ...]
    beyond: tuple[str, ...]
    max_changes: int

    def as_list(self) -> list[dict]:
        """The JSON form: ``[{"changes": [{"item", "from", "to"}], "finding"}]``."""
        return [a.as_dict() for a in self.alternatives]

    def as_dict(self) -> dict:
        return {"criterion": self.criterion, "finding": self.finding, "alternatives": self.as_list(),
                "unreachable": list(self.unreachable), "beyond": list(self.beyond),
                "max_changes": self.max_changes}


class FindingConditions:
    """Conditions over a case's own attributes (no derived facts) for "rule r fires" and "the
    finding on criterion c is v", for one compiled rule set."""

    def __init__(self, compiled: CompiledRuleSet) -> None:
        self.compiled = compiled
        self._facts = {facts.fact_attribute(f.id) for f in compiled.ruleset.facts}
        self._derivers: dict[str, list[int]] = {}
        for rule in compiled.rules:
            for name in rule.derives:
                self._derivers.setdefault(facts.fact_attribute(name), []).append(rule.index)
        self._fires: dict[int, conditions.Node] = {}
        self._memo: dict[int, tuple] = {}

    def fires(self, index: int) -> conditions.Node:
        """When rule ``index`` fires, in terms of the case's attributes only."""
        if index not in self._fires:
            self._fires[index] = self._expand(self.compiled.rules[index].condition)
        return self._fires[index]

    def _expand(self, node: conditions.Node) -> conditions.Node:
        key = id(node)
        if key in self._memo:
            return self._memo[key][1]
        if isinstance(node, conditions.In) and node.attribute in self._facts:
            derived = conditions.any_of(self.fires(i) for i in self._derivers.get(node.attribute, []))
            result = derived if True in node.values else conditions.negate(derived)
        elif isinstance(node, conditions.Leaf):
            result = node
        elif isinstance(node, conditions.All):
            result = conditions.all_of(self._expand(p) for p in node.parts)
        else:
            result = conditions.any_of(self._expand(p) for p in node.parts)
        self._memo[key] = (node, result)
        return result

    def finding_is(self, criterion: str, value: str) -> conditions.Node:
        """When the combination policy gives ``value`` on ``criterion``."""
        concluding = [(r.rule.priority, r.index, v) for r in self.compiled.rules
                      for v in [_finding_value(r.rule, criterion)] if v is not None]
        fires = lambda chosen: conditions.any_of(self.fires(i) for _, i, _ in chosen)  # noqa: E731
        if value == NOT_ASSESSED:
            return conditions.negate(fires(concluding))
        options = []
        for priority in sorted({p for p, _, v in concluding if v == value}):
            mine = fires([c for c in concluding if c[0] == priority and c[2] == value])
            higher = fires([c for c in concluding if c[0] > priority])
            worse = fires([c for c in concluding if c[0] == priority and SEVERITY.index(c[2]) < SEVERITY.index(value)])
            options.append(conditions.all_of([mine, conditions.negate(higher), conditions.negate(worse)]))
        return conditions.any_of(options)


def answer_attributes(compiled: CompiledRuleSet) -> dict[str, str]:
    """The answer attribute of every item the rule set's section judges -> the item id."""
    scope = "organisation" if compiled.section == "organisation_rules" else "case"
    return {facts.answer_attribute(i): i for i in compiled.loaded.framework.item_ids(scope)}


def what_if(compiled: CompiledRuleSet, attributes: dict, criterion: str, finding: str,
            targets: tuple[str, ...] | None = None, max_changes: int = MAX_CHANGES,
            conditions_of: FindingConditions | None = None) -> WhatIf:
    """The smallest sets of answer changes that give each other finding (or each of ``targets``)
    on ``criterion``, for a case (or organisation) with these attributes whose finding is
    ``finding``."""
    conditions_of = conditions_of or FindingConditions(compiled)
    answers = answer_attributes(compiled)
    allowed = tuple(compiled.loaded.framework.vocabulary.ids("answers"))
    counts = compiled.schema.counts
    derived = {facts.fact_attribute(f.id) for f in compiled.ruleset.facts}
    context = {a: v for a, v in attributes.items() if a not in answers and a not in derived and a not in counts}
    alternatives: list[Alternative] = []
    unreachable, beyond = [], []
    for target in targets or FINDINGS:
        if target == finding:
            continue
        node = satisfy.restrict(conditions_of.finding_is(criterion, target), context)
        items = [a for a in satisfy.reads(node, counts) if a in answers]
        choices = {a: tuple(v for v in allowed if v != attributes[a]) for a in items}
        anything = facts.Schema({a: (attributes[a], *choices[a]) for a in items}, counts=counts)
        if node == conditions.FALSE or _satisfiable(node, anything) is False:
            unreachable.append(target)
            continue
        found = _smallest(node, items, choices, attributes, max_changes, counts)
        if not found:
            beyond.append(target)
        order = list(answers)
        alternatives += [Alternative(target, tuple(Change(answers[a], attributes[a], v) for a, v in
                                                   sorted(changes, key=lambda change: order.index(change[0]))))
                         for changes in found]
    alternatives.sort(key=lambda a: (len(a.changes), FINDINGS.index(a.finding),
                                     [(c.item, allowed.index(c.after)) for c in a.changes]))
    return WhatIf(criterion, finding, tuple(alternatives), tuple(unreachable), tuple(beyond), max_changes)


#: Steps of the exact search spent deciding whether a finding is reachable at all; past them the
#: finding is searched for among change sets of up to ``max_changes`` answers (which is exact).
DECIDE_STEPS = 5_000


def _satisfiable(node: conditions.Node, schema: facts.Schema, start: dict | None = None) -> bool | None:
    """True or False when the search decides it; None when it ran out of steps."""
    return satisfy.decide(node, schema, DECIDE_STEPS, start)[0]


def _smallest(node, items: list[str], choices: dict, attributes: dict, max_changes: int,
              counts: dict) -> list[tuple]:
    """Every assignment of new answers to k items (k as small as possible, at most
    ``max_changes``) that makes ``node`` hold with every other answer kept. Counts read the kept
    answers too, so the search starts from them."""
    for size in range(1, min(max_changes, len(items)) + 1):
        found = []
        for changed in itertools.combinations(items, size):
            kept = {a: attributes[a] for a in items if a not in changed}
            rest = satisfy.restrict(node, kept)
            if rest == conditions.FALSE or _satisfiable(
                    rest, facts.Schema({a: choices[a] for a in changed}, counts=counts), start=kept) is False:
                continue
            for values in itertools.product(*(choices[a] for a in changed)):
                assignment = dict(zip(changed, values))
                if satisfy.evaluate(rest, {**kept, **assignment}, counts) is True:
                    found.append(tuple(zip(changed, values)))
        if found:
            return found
    return []


def apply(attributes: dict, alternative: Alternative) -> dict:
    """The case's attributes with an alternative's answer changes made."""
    return {**attributes, **{facts.answer_attribute(c.item): c.after for c in alternative.changes}}
