"""Satisfiability: an exact search for an assignment that makes a condition tree hold.

Used by ``qi rules lint`` (can a rule ever fire? can two rules conflict?) and by what-if
explanations (which answer changes would change a finding?). The search walks the attributes a
condition reads, trying each value of its finite domain, and evaluates the tree three-valued
after every step, so a branch is abandoned as soon as it can no longer hold. Numeric aggregates
(sample rules) are tried at the thresholds the condition names and either side of them.

A count attribute (``at_least`` over many items lowers to one, see
:func:`engine.compile.facts.with_counts`) is not a free variable: it is how many of its items have
one of its answers. The search assigns the items themselves and bounds each count by what is
assigned so far, so a count never takes a value its items cannot give.
"""

from __future__ import annotations

from engine.compile import conditions, facts

UNKNOWN = None


def reads(node: conditions.Node, counts: dict) -> list[str]:
    """The attributes ``node`` depends on, each count attribute replaced by its items' answers."""
    found: dict[str, None] = {}
    for attribute in conditions.attributes(node):
        if attribute in counts:
            found.update(dict.fromkeys(facts.answer_attribute(i) for i in counts[attribute][0]))
        else:
            found[attribute] = None
    return list(found)


def witness(node: conditions.Node, schema: facts.Schema, limit: int = 200_000,
            start: dict | None = None) -> dict | None:
    """An assignment of the attributes ``node`` reads that makes it hold, or None if none does.
    Attributes in ``start`` keep their values there (the search assigns the others).

    Past ``limit`` steps the search gives up and reports the assignment reached (lint then treats
    the condition as satisfiable); callers that need certainty use :func:`decide`."""
    outcome, assignment = decide(node, schema, limit, start)
    return None if outcome is False else assignment


def decide(node: conditions.Node, schema: facts.Schema, limit: int = 200_000,
           start: dict | None = None) -> tuple[bool | None, dict | None]:
    """(True, an assignment that makes ``node`` hold), (False, None) when none does, or
    (None, the assignment reached) when ``limit`` steps did not decide it."""
    start = dict(start or {})
    attributes = [a for a in reads(node, schema.counts) if a not in start]
    candidates = {a: _candidates(a, node, schema) for a in attributes}
    budget = [limit]

    def search(assignment: dict, remaining: list[str]) -> tuple[bool | None, dict | None]:
        budget[0] -= 1
        if budget[0] < 0:
            return UNKNOWN, assignment
        value = evaluate(node, assignment, schema.counts)
        if value is True:
            return True, assignment
        if value is False or not remaining:
            return False, None
        attribute, rest = remaining[0], remaining[1:]
        for candidate in candidates[attribute]:
            found = search({**assignment, attribute: candidate}, rest)
            if found[0] is not False:
                return found
        return False, None

    return search(start, attributes)


def _candidates(attribute: str, node: conditions.Node, schema: facts.Schema) -> tuple:
    if attribute in schema.domains:
        return schema.domains[attribute]
    thresholds = sorted({leaf.value for leaf in _leaves(node) if isinstance(leaf, conditions.Compare)
                         and leaf.attribute == attribute})
    values = {facts.UNDEFINED, 0.0, 100.0}
    for threshold in thresholds:
        values |= {threshold - 0.5, threshold, threshold + 0.5}
    return tuple(sorted(values))


def _leaves(node: conditions.Node):
    if isinstance(node, conditions.Leaf):
        yield node
    else:
        for part in node.parts:
            yield from _leaves(part)


def evaluate(node: conditions.Node, assignment: dict, counts: dict | None = None):
    """Three-valued: True, False, or UNKNOWN when an attribute it needs is not assigned yet.
    A count attribute (in ``counts``) is read from its items' answers in the assignment."""
    if isinstance(node, conditions.Leaf):
        if counts and node.attribute in counts:
            return _count_holds(node, assignment, *counts[node.attribute])
        if node.attribute not in assignment:
            return UNKNOWN
        return conditions.holds(node, assignment)
    results = [evaluate(part, assignment, counts) for part in node.parts]
    if isinstance(node, conditions.All):
        return False if False in results else (True if all(r is True for r in results) else UNKNOWN)
    return True if True in results else (False if all(r is False for r in results) else UNKNOWN)


def _count_holds(leaf: conditions.Node, assignment: dict, items: tuple, answers: tuple):
    """A test of a count: decided once every count its assigned items still allow agrees."""
    low = high = 0
    for item in items:
        value = assignment.get(facts.answer_attribute(item), UNKNOWN)
        if value is UNKNOWN:
            high += 1
        elif value in answers:
            low += 1
            high += 1
    first = conditions.holds(leaf, {leaf.attribute: low})
    if any(conditions.holds(leaf, {leaf.attribute: n}) != first for n in range(low + 1, high + 1)):
        return UNKNOWN
    return first


def restrict(node: conditions.Node, fixed: dict, memo: dict | None = None) -> conditions.Node:
    """The condition with the attributes in ``fixed`` replaced by their values and simplified:
    what is left reads only the other attributes (TRUE or FALSE when nothing is left)."""
    memo = {} if memo is None else memo
    key = id(node)
    if key in memo:
        return memo[key][1]
    if isinstance(node, conditions.Leaf):
        result = node
        if node.attribute in fixed:
            result = conditions.TRUE if conditions.holds(node, fixed) else conditions.FALSE
    elif isinstance(node, conditions.All):
        result = conditions.all_of(restrict(p, fixed, memo) for p in node.parts)
    else:
        result = conditions.any_of(restrict(p, fixed, memo) for p in node.parts)
    memo[key] = (node, result)  # the node is kept so its id is not reused while memo lives
    return result
