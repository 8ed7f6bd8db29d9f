"""Satisfiability: an exact search for an assignment that makes a condition tree hold.

Used by ``qi rules lint`` (can a rule ever fire? can two rules conflict?) and by what-if
explanations (which answer changes would change a finding?). The search walks the attributes a
condition reads, trying each value of its finite domain, and evaluates the tree three-valued
after every step, so a branch is abandoned as soon as it can no longer hold. Numeric aggregates
(sample rules) are tried at the thresholds the condition names and either side of them.
"""

from __future__ import annotations

from engine.compile import conditions, facts

UNKNOWN = None


def witness(node: conditions.Node, schema: facts.Schema, limit: int = 200_000) -> dict | None:
    """An assignment of the attributes ``node`` reads that makes it hold, or None if none does.

    Past ``limit`` steps the search gives up and reports the assignment reached (lint then treats
    the condition as satisfiable); callers that need certainty check the result with
    :func:`engine.compile.conditions.holds`."""
    attributes = conditions.attributes(node)
    candidates = {a: _candidates(a, node, schema) for a in attributes}
    budget = [limit]

    def search(assignment: dict, remaining: list[str]) -> dict | None:
        budget[0] -= 1
        if budget[0] < 0:
            return assignment  # give up proving a contradiction: assume satisfiable
        value = evaluate(node, assignment)
        if value is True:
            return assignment
        if value is False or not remaining:
            return None
        attribute, rest = remaining[0], remaining[1:]
        for candidate in candidates[attribute]:
            found = search({**assignment, attribute: candidate}, rest)
            if found is not None:
                return found
        return None

    return search({}, attributes)


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


def evaluate(node: conditions.Node, assignment: dict):
    """Three-valued: True, False, or UNKNOWN when an attribute it needs is not assigned yet."""
    if isinstance(node, conditions.Leaf):
        if node.attribute not in assignment:
            return UNKNOWN
        return conditions.holds(node, assignment)
    results = [evaluate(part, assignment) for part in node.parts]
    if isinstance(node, conditions.All):
        return False if False in results else (True if all(r is True for r in results) else UNKNOWN)
    return True if True in results else (False if all(r is False for r in results) else UNKNOWN)


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
