"""Conditions: the rule language's conditions lowered to one small tree, evaluated two ways.

A rule's ``when`` lowers to a tree of :class:`All`, :class:`AnyOf` and :class:`In` nodes, where
``In(attribute, values)`` tests that a case attribute takes one of ``values`` from its finite
domain (see :mod:`engine.compile.facts`). Negation is pushed down to the leaves (``not In(a, S)`` is
``In(a, domain - S)``), so the tree has no ``not`` and is exact for durable_rules.

Each condition form lowers itself (``Form.lower`` in :mod:`engine.check.rules`), with a
:class:`Lowering` this module passes in. The tree is

* emitted as a durable_rules expression (:func:`to_durable`), which the Rete engine matches; and
* evaluated in Python (:func:`holds`), one node at a time, for the condition-level detail of
  reasoning traces. A property test proves the two agree on every rule.
"""

from __future__ import annotations

import dataclasses
from typing import Union

from engine.check.rules.conditions import answers
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
#: Most alternatives one rule may be split into before it is "too complex" (the check stage bounds
#: at_least conditions by the same number before they are built).
MAX_ALTERNATIVES = answers.MAX_ALTERNATIVES


class TooComplex(Exception):
    """The condition cannot be matched by durable_rules within its limits."""


# --- lowering -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Lowering:
    """What a condition form lowers itself with (``Form.lower``): the fact schema's attributes and
    their names, the connectives, and for sample rules the instance's bindings.

    "At or above" tests use the order of the attribute's domain, which is the framework
    vocabulary's order (lowest first).
    """

    schema: facts.Schema
    bindings: dict = dataclasses.field(default_factory=dict)
    min_group_size: int = 0
    standards: dict = dataclasses.field(default_factory=dict)
    #: The rule set's ``sample: gap_points``: a gap condition that names no threshold uses it.
    gap_points: float = 0.0
    #: The framework's providers, for a comparison with "any other provider".
    providers: tuple = ()
    #: The attribute naming of :mod:`engine.compile.facts`, for forms (which live in an earlier stage).
    names = facts

    def lower(self, condition) -> Node:
        return condition.lower(self)

    def test(self, attribute: str, values) -> Node:
        """``attribute in values``, over the attribute's finite domain."""
        return leaf(attribute, values, self.schema.domains[attribute])

    def at_or_above(self, attribute: str, level) -> Node:
        domain = self.schema.domains[attribute]
        return self.test(attribute, domain[domain.index(level):])

    def context(self, field_id: str, values) -> Node:
        """A case context field (declared in the framework's vocabulary) takes one of ``values``;
        for a many-valued field, the case has at least one of them."""
        field = self.schema.fields[field_id]
        if field.shape == "many":
            return self.any(self.test(facts.term_attribute(field, v), [True]) for v in values)
        return self.test(field.fact, values)

    def context_at_least(self, field_id: str, level) -> Node:
        """An ordered context field is at or above ``level``."""
        return self.at_or_above(self.schema.fields[field_id].fact, level)

    def compare(self, attribute: str, op: str, value: float) -> Node:
        return Compare(attribute, op, value)

    def all(self, parts) -> Node:
        return _all(parts)

    def any(self, parts) -> Node:
        return _any(parts)

    def negate(self, node: Node) -> Node:
        return negate(node)

    def extra(self, attribute: str, domain: tuple, extract, words) -> str:
        """Add an attribute the base schema lacks (read from the case or organisation model by
        ``extract``, worded in lint witnesses by ``words``); returns its name."""
        self.schema.add(attribute, domain, extract, words)
        return attribute


def lower(condition, schema: facts.Schema) -> Node:
    """Lower a case or organisation condition to the In/All/AnyOf tree, negation pushed to the leaves."""
    return condition.lower(Lowering(schema))


def lower_sample(condition, schema: facts.Schema, bindings: dict, min_group_size: int,
                 standards: dict[str, list[str]], gap_points: float = 0.0, providers: tuple = ()) -> Node:
    """Lower a sample-level condition, with ``bindings`` filling in the criterion, standard or
    provider it leaves out. Figures count only for groups of at least ``min_group_size`` cases."""
    return condition.lower(Lowering(schema, bindings, min_group_size, standards, gap_points, tuple(providers)))


def all_of(parts) -> Node:
    """The conjunction of conditions, flattened and simplified."""
    return _all(parts)


def any_of(parts) -> Node:
    """The disjunction of conditions, flattened and simplified."""
    return _any(parts)


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
