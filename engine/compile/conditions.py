"""Conditions: the rule language's conditions lowered to one small tree, evaluated two ways.

A rule's ``when`` lowers to a tree of :class:`All`, :class:`AnyOf` and :class:`In` nodes, where
``In(attribute, values)`` tests that a case attribute takes one of ``values`` from its finite
domain (see :mod:`engine.compile.facts`). Negation is pushed down to the leaves (``not In(a, S)`` is
``In(a, domain - S)``), so the tree has no ``not`` and is exact for durable_rules.

The same tree is

* emitted as a durable_rules expression (:func:`to_durable`), which the Rete engine matches; and
* evaluated in Python (:func:`holds`), one node at a time, for the condition-level detail of
  reasoning traces. A property test proves the two agree on every rule.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Union

from engine.check import rules
from engine.compile import facts


@dataclasses.dataclass(frozen=True)
class In:
    """The attribute takes one of ``values`` (a subset of ``domain``)."""

    attribute: str
    values: frozenset
    domain: tuple

    def negate(self) -> Node:
        return leaf(self.attribute, frozenset(self.domain) - self.values, self.domain)

    def complement(self) -> tuple:
        return tuple(v for v in self.domain if v not in self.values)


@dataclasses.dataclass(frozen=True)
class Compare:
    """A numeric attribute is ``>=`` or ``<`` a number (aggregates of the whole sample)."""

    attribute: str
    op: str
    value: float

    def negate(self) -> Compare:
        return Compare(self.attribute, "<" if self.op == ">=" else ">=", self.value)


@dataclasses.dataclass(frozen=True)
class All:
    parts: tuple


@dataclasses.dataclass(frozen=True)
class AnyOf:
    parts: tuple


Node = Union[In, Compare, All, AnyOf]
Leaf = (In, Compare)
TRUE = All(())
FALSE = AnyOf(())


def leaf(attribute: str, values, domain: tuple) -> Node:
    """``attribute in values``; TRUE when that is the whole domain, FALSE when nothing."""
    wanted = frozenset(v for v in domain if v in set(values))
    if not wanted:
        return FALSE
    if len(wanted) == len(domain):
        return TRUE
    return In(attribute, wanted, domain)

#: durable_rules rejects an expression with more than this many nested $and/$or (error 113);
#: larger conditions are split into alternatives, each matched on its own.
MAX_COMPOSITES = 15
#: Most alternatives one rule may be split into before it is "too complex".
MAX_ALTERNATIVES = 256


class TooComplex(Exception):
    """The condition cannot be matched by durable_rules within its limits."""


# --- lowering -------------------------------------------------------------------------------------


def lower(condition, schema: facts.Schema) -> Node:
    """Lower a rule-language condition to the In/All/AnyOf tree, negation pushed to the leaves.

    "At or above" conditions use the order of the attribute's domain, which is the framework
    vocabulary's order (risk levels lowest first).
    """
    kind = rules.condition_kind(condition)
    body = rules.condition_body(condition)

    def test(attribute: str, values) -> Node:
        return leaf(attribute, values, schema.domains[attribute])

    def at_or_above(attribute: str, level) -> Node:
        domain = schema.domains[attribute]
        return test(attribute, domain[domain.index(level):])

    def answers(items, wanted) -> list[Node]:
        return [test(facts.answer_attribute(i), wanted) for i in items]

    if kind == "all":
        return _all(lower(c, schema) for c in body)
    if kind == "any":
        return _any(lower(c, schema) for c in body)
    if kind == "not":
        return negate(lower(body, schema))
    if kind == "answer":
        return test(facts.answer_attribute(body.item), body.in_)
    if kind == "any_answer":
        return _any(answers(body.items, body.in_))
    if kind == "all_answers":
        return _all(answers(body.items, body.in_))
    if kind == "at_least":
        tests = answers(body.items, body.in_)
        return _any(_all(chosen) for chosen in itertools.combinations(tests, body.n))
    if kind == "not_assessed":
        return test(facts.answer_attribute(body), [facts.NOT_ASSESSED])
    if kind == "risk_at_least":
        return at_or_above("risk", body)
    if kind == "provider":
        return test("provider", body)
    if kind == "sentence_type":
        return test("sentence_type", body)
    if kind == "requirement":
        return _any(test(facts.requirement_attribute(r), [True]) for r in body)
    if kind == "flag":
        return _any(test(facts.flag_attribute(f), [True]) for f in body)
    if kind == "mappa":
        return test("mappa", [body])
    if kind == "mappa_category":
        return test("mappa_category", body)
    if kind == "mappa_level_at_least":
        return at_or_above("mappa_level", body)
    if kind == "diversity":
        return test(facts.diversity_attribute(body.field), body.in_)
    if kind == "fact":
        return test(facts.fact_attribute(body), [True])
    raise AssertionError(f"no lowering for condition {kind}")  # every form in rules has one


def lower_sample(condition, schema: facts.Schema, bindings: dict, min_group_size: int,
                 standards: dict[str, list[str]]) -> Node:
    """Lower a sample-level condition, with ``bindings`` filling in the criterion, standard or
    provider it leaves out. Figures count only for groups of at least ``min_group_size`` cases."""
    kind = next(name for name, cls in rules._SAMPLE_CONDITIONS.items() if type(condition) is cls)
    body = getattr(condition, "not_" if kind == "not" else kind)
    lower = lambda child: lower_sample(child, schema, bindings, min_group_size, standards)  # noqa: E731
    if kind == "all":
        return _all(lower(c) for c in body)
    if kind == "any":
        return _any(lower(c) for c in body)
    if kind == "not":
        return negate(lower(body))
    if kind == "fact":
        return leaf(facts.fact_attribute(body), [True], schema.domains[facts.fact_attribute(body)])
    group = getattr(body, "provider", None) or bindings.get("provider") or facts.ALL

    def bounded(attribute: str, threshold) -> Node:
        parts = []
        if threshold.at_least is not None:
            parts.append(Compare(attribute, ">=", float(threshold.at_least)))
        if threshold.below is not None:
            parts.append(Compare(attribute, "<", float(threshold.below)))
        return _all(parts)

    if kind == "share_with":
        factor = ("barrier", body.barrier) if body.barrier else ("enabler", body.enabler)
        return _all([Compare(facts.cases_attribute(group), ">=", float(min_group_size)),
                     bounded(facts.share_attribute(*factor, group), body)])
    if kind == "criterion_rated":
        standard = body.standard or bindings["standard"]
        return _any(leaf(facts.rating_attribute(facts.target_key(c, None), group), body.band,
                         schema.domains[facts.rating_attribute(facts.target_key(c, None), group)])
                    for c in standards[standard])
    target = _target(body, bindings)
    if kind == "percent_sufficient":
        return _all([Compare(facts.applicable_attribute(target, group), ">=", float(min_group_size)),
                     bounded(facts.percent_attribute(target, group), body)])
    if kind == "gap":
        return Compare(facts.gap_attribute(target, body.between), ">=", float(body.at_least))
    if kind == "provider_below":
        return _all([Compare(facts.applicable_attribute(target, body.provider), ">=", float(min_group_size)),
                     Compare(facts.applicable_attribute(target, body.other), ">=", float(min_group_size)),
                     Compare(facts.below_attribute(target, body.provider, body.other), ">=", float(body.by_at_least))])
    if kind == "rated":
        attribute = facts.rating_attribute(target, group)
        return leaf(attribute, body.band, schema.domains[attribute])
    raise AssertionError(f"no lowering for sample condition {kind}")


def _target(body, bindings: dict) -> str:
    criterion = getattr(body, "criterion", None)
    standard = getattr(body, "standard", None)
    if criterion is None and standard is None:
        criterion, standard = bindings.get("criterion"), bindings.get("standard")
    return facts.target_key(criterion, standard)


def all_of(parts) -> Node:
    """The conjunction of conditions, flattened and simplified."""
    return _all(parts)


def _all(parts) -> Node:
    flat: list = []
    for part in parts:
        flat.extend(part.parts if isinstance(part, All) else [part])
    if any(p == FALSE for p in flat):
        return FALSE
    return flat[0] if len(flat) == 1 else All(tuple(flat))


def _any(parts) -> Node:
    flat: list = []
    for part in parts:
        flat.extend(part.parts if isinstance(part, AnyOf) else [part])
    if any(p == TRUE for p in flat):
        return TRUE
    return flat[0] if len(flat) == 1 else AnyOf(tuple(flat))


def negate(node: Node) -> Node:
    """De Morgan down to the leaves; exact because every attribute has a finite domain."""
    if isinstance(node, Leaf):
        return node.negate()
    if isinstance(node, All):
        return _any(negate(p) for p in node.parts)
    return _all(negate(p) for p in node.parts)


# --- evaluation in Python -------------------------------------------------------------------------


def holds(node: Node, fact: dict) -> bool:
    """Whether the condition holds for a fact: the Python twin of the durable_rules match."""
    if isinstance(node, In):
        return fact[node.attribute] in node.values
    if isinstance(node, Compare):
        value = fact[node.attribute]
        return value >= node.value if node.op == ">=" else value < node.value
    if isinstance(node, All):
        return all(holds(p, fact) for p in node.parts)
    return any(holds(p, fact) for p in node.parts)


def attributes(node: Node) -> list[str]:
    """The attributes a condition reads, in first-read order."""
    if isinstance(node, Leaf):
        return [node.attribute]
    seen: dict[str, None] = {}
    for part in node.parts:
        seen.update(dict.fromkeys(attributes(part)))
    return list(seen)


# --- emission to durable_rules --------------------------------------------------------------------


def alternatives(node: Node) -> list[Node]:
    """Split a condition into alternatives that each fit durable_rules' limits.

    The condition holds when any alternative holds. An alternative too large for one expression
    is split by distributing its largest ``any`` over the rest (``a and (b or c)`` becomes
    ``a and b``, ``a and c``), only as far as needed. Raises TooComplex past MAX_ALTERNATIVES.
    """
    if node == FALSE:
        return []
    result: list[Node] = []
    pending = list(node.parts) if isinstance(node, AnyOf) else [node]
    while pending:
        part = pending.pop(0)
        if _composites(part) <= MAX_COMPOSITES or isinstance(part, Leaf):
            result.append(part)
        elif isinstance(part, AnyOf):
            pending[:0] = list(part.parts)
        else:
            # split the member that costs most groups in the expression, fewest ways first
            widest = max(part.parts, key=lambda p: (_composites(p), -len(_options(p))))
            if _composites(widest) == 0 or len(_options(widest)) < 2:
                raise TooComplex("the condition cannot be split to fit the rules engine")
            rest = [p for p in part.parts if p is not widest]
            pending[:0] = [_all(rest + [option]) for option in _options(widest)]
        if len(result) + len(pending) > MAX_ALTERNATIVES:
            raise TooComplex(f"the condition needs more than {MAX_ALTERNATIVES} alternatives")
    return result


def _options(node: Node) -> list[Node]:
    """The ways a node can hold, for splitting: an any's parts, or a multi-valued In's values."""
    if isinstance(node, AnyOf):
        return list(node.parts)
    if isinstance(node, In) and len(node.values) > 1:
        return [In(node.attribute, frozenset([v]), node.domain) for v in _ordered(node)]
    return [node]


def _composites(node: Node, parent: str = "$and") -> int:
    expression = _expression(node, parent)
    return _count(expression)


def _count(expression) -> int:
    if isinstance(expression, dict):
        key = next(iter(expression))
        if key in ("$and", "$or"):
            return 1 + sum(_count(e) for e in expression[key])
    return 0


def to_durable(node: Node) -> dict:
    """The durable_rules expression of one alternative: always an ``$and`` at the top (a mapping
    with two keys would silently test only the first)."""
    if node == TRUE:
        return {"$and": [{"kind": facts.FACT_KIND}]}
    expression = _expression(node, "$and")
    if isinstance(expression, dict) and next(iter(expression)) == "$and":
        return expression
    return {"$and": [expression]}


def _expression(node: Node, parent: str):
    """The expression for ``node`` placed under a ``parent`` of "$and" or "$or".

    An In leaf is written in whichever form merges into its parent: as equalities joined by
    $or, or as inequalities over its complement joined by $and. A leaf whose form does not match
    its parent becomes a nested group.
    """
    if isinstance(node, Compare):
        return {"$gte" if node.op == ">=" else "$lt": {node.attribute: node.value}}
    if isinstance(node, In):
        if len(node.values) == 1:
            return _eq(node.attribute, next(iter(node.values)))
        if parent == "$and" and len(node.complement()) <= len(node.values):
            return {"$and": [_neq(node.attribute, v) for v in node.complement()]}
        return {"$or": [_eq(node.attribute, v) for v in _ordered(node)]}
    key = "$and" if isinstance(node, All) else "$or"
    members: list = []
    for part in node.parts:
        expression = _expression(part, key)
        if isinstance(expression, dict) and next(iter(expression)) == key:
            members.extend(expression[key])  # same operator: flatten into this group
        else:
            members.append(expression)
    return {key: members}


def _ordered(node: In) -> list:
    return [v for v in node.domain if v in node.values]


def _eq(attribute: str, value) -> dict:
    return {attribute: value}


def _neq(attribute: str, value) -> dict:
    return {"$neq": {attribute: value}}
