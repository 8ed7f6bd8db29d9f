"""Redaction for publishable reports (``qi run --redact``): no inspector's free-text notes, and no
diversity group whose figures could identify people.

Notes can identify people; a small group's figures can too ("the one woman on licence"). So:

- **small cells**: in every breakdown by a diversity characteristic (each criterion, each
  standard, the group sizes) a group of fewer people than the rule set's ``min_group_size`` is
  removed. People are counted, not case x criterion pairs: 4 women are 4 people at standard level
  too (:mod:`engine.aggregate.aggregate` counts ``people``).
- **complementary suppression**: a removed group could be recovered by subtracting the groups
  shown from the whole sample, so further groups (the smallest first) are removed until the
  removed ones together hold at least ``min_group_size`` people and are at least two.
- **lists and gaps** never name a removed group: lists of groups compared or not compared leave
  them out (with one ``[redacted]`` marker), and a gap whose highest or lowest group was removed
  loses its figure. The traces of sample conclusions are redacted the same way.
- **organisation checks against the provider's cases** keep their counts, not the case
  references behind them.
- **case traces** say neither a diversity value seen nor whether a condition reading one held
  (nor whether a combination containing such a condition held).

The audit store keeps the full run.
"""

from __future__ import annotations

import json

REDACTED = "[redacted]"


def suppressed(people: dict[str, int], minimum: int) -> set[str]:
    """The groups of one breakdown to remove: those under ``minimum`` people, then complementary
    ones (smallest first) until the removed groups hold ``minimum`` people and are two or more.

    >>> sorted(suppressed({"gender:female": 4, "gender:male": 10}, 5))
    ['gender:female', 'gender:male']
    >>> sorted(suppressed({"a": 3, "b": 4, "c": 20}, 5))
    ['a', 'b']
    >>> suppressed({"a": 6, "b": 9}, 5)
    set()
    """
    hidden = {key for key, count in people.items() if count < minimum}
    if not hidden:
        return hidden
    shown = sorted((count, key) for key, count in people.items() if key not in hidden)
    while shown and (len(hidden) < 2 or sum(people[key] for key in hidden) < minimum):
        hidden.add(shown.pop(0)[1])
    return hidden


def report(full: dict, diversity_fields: list[str]) -> dict:
    """A redacted copy of the report (the JSON contract), with ``redacted: true``."""
    result = json.loads(json.dumps(full))  # a deep copy of plain JSON data
    aggregates = result["aggregates"]
    minimum = aggregates["min_group_size"]
    diversity = set(diversity_fields)

    def grouping(key: str) -> str:
        return key.split(":", 1)[0]

    hidden: dict[str, set[str]] = {}  # target id -> groups removed from it
    for target in aggregates["targets"].values():
        removed: set[str] = set()
        for field in diversity:
            members = {key: group.get("people", group["applicable"]) for key, group in target["groups"].items()
                       if grouping(key) == field}
            removed |= suppressed(members, minimum)
        for key in removed:
            del target["groups"][key]
        for field, gap in target["gaps"].items():
            if field in diversity:
                _redact_gap(gap, removed)
        hidden[target["id"]] = removed
    sizes = aggregates["group_sizes"]
    removed_sizes: set[str] = set()
    for field in diversity:
        removed_sizes |= suppressed({k: n for k, n in sizes.items() if grouping(k) == field}, minimum)
    for key in removed_sizes:
        del sizes[key]
    for field in diversity & set(aggregates["groupings"]):
        aggregates["groupings"][field] = sorted(
            value for value in aggregates["groupings"][field] if f"{field}:{value}" in sizes)
    labels = result.get("labels", {})
    for key in list(labels):
        if grouping(key) in diversity and key not in sizes:
            del labels[key]  # a suppressed group is not even named
    if "examples" in result:
        result["examples"] = {}  # practice examples quote inspectors' notes
    _scrub_sample(result.get("sample_judgement"), hidden, diversity)
    for organisation in result.get("organisations", []):
        _scrub_case_lists(organisation)
    _scrub(result, diversity)
    result["redacted"] = True
    return result


def _redact_gap(gap: dict, removed: set[str]) -> None:
    """A gap between groups naming none of the removed groups, and no figure that involves one."""
    for listed in ("compared", "not_compared"):
        kept = [key for key in gap.get(listed, []) if key not in removed]
        gap[listed] = kept + ([REDACTED] if len(kept) < len(gap.get(listed, [])) else [])
    if gap.get("highest") in removed or gap.get("lowest") in removed:
        gap.update(highest=REDACTED, lowest=REDACTED, points=None, groups=[], test=None)
        gap.pop("exact_points", None)


def _scrub_sample(node, hidden: dict[str, set[str]], diversity: set[str]) -> bool:
    """Sample conclusions' traces: a gap's aggregates and the figures listed under it are redacted as
    in the aggregates. Returns whether a figure in ``node`` had to be withheld."""
    withheld = False
    if isinstance(node, dict):
        aggregates = node.get("aggregates")
        if isinstance(aggregates, list):
            kept = []
            for entry in aggregates:
                removed = hidden.get(entry.get("target"), set()) if isinstance(entry, dict) else set()
                if isinstance(entry, dict) and entry.get("group") in removed:
                    withheld = True
                    continue
                if isinstance(entry, dict) and entry.get("between") in diversity:
                    before = entry.get("points")
                    _redact_gap(entry, removed)
                    withheld |= entry.get("highest") == REDACTED and before is not None
                kept.append(entry)
            node["aggregates"] = kept
            if withheld and isinstance(node.get("seen"), dict):
                node["seen"] = {attribute: REDACTED for attribute in node["seen"]}
        for value in node.values():
            if value is not aggregates:
                _scrub_sample(value, hidden, diversity)
    elif isinstance(node, list):
        for value in node:
            _scrub_sample(value, hidden, diversity)
    return withheld


def _scrub_case_lists(node) -> None:
    """Organisation conclusions read against the provider's cases keep their counts but not the
    case references (which would say which cases are MAPPA or child safeguarding cases)."""
    if isinstance(node, dict):
        seen = node.get("seen")
        if isinstance(seen, dict) and isinstance(seen.get("cases"), list):
            seen["cases"] = REDACTED
        for value in node.values():
            _scrub_case_lists(value)
    elif isinstance(node, list):
        for value in node:
            _scrub_case_lists(value)


def case_line(line: bytes, diversity_fields: list[str]) -> str:
    """One line of trace.jsonl, redacted."""
    result = json.loads(line)
    _scrub(result, set(diversity_fields))
    return json.dumps(result, ensure_ascii=False, sort_keys=True) + "\n"


def _scrub(node, diversity: set[str]) -> bool:
    """Notes (on evidence and on inspectors' judgements) and reviewers' reasons become [redacted]; a
    condition that read a diversity value loses the value and whether
    it held, and so does every condition combining it. Returns whether ``node`` held such a condition."""
    reads_diversity = False
    if isinstance(node, dict):
        if "note" in node and ("answer" in node or "inspector" in node):
            node["note"] = REDACTED if node["note"] else node["note"]
        if "reason" in node and "decision" in node:
            node["reason"] = REDACTED if node["reason"] else node["reason"]
        seen = node.get("seen")
        if isinstance(seen, dict):
            for field in list(seen):
                if field in diversity:
                    seen[field] = REDACTED
                    reads_diversity = True
        for key, value in node.items():
            if key in ("derived_by", "because", "candidates"):
                _scrub(value, diversity)  # rules beneath: their conditions are redacted in their own right
            else:
                reads_diversity |= _scrub(value, diversity)
        if reads_diversity and "holds" in node:
            node["holds"] = REDACTED
    elif isinstance(node, list):
        for value in node:
            reads_diversity |= _scrub(value, diversity)
    return reads_diversity
