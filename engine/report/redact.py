"""Redaction for publishable reports (``qi run --redact``): no inspector's free-text notes, and no
diversity group smaller than the rule set's minimum group size.

Notes can identify people; a small group's figures can too ("the one woman on licence"). Every
diversity value seen in a case's trace is removed as well. The audit store keeps the full run.
"""

from __future__ import annotations

import json

REDACTED = "[redacted]"


def report(full: dict, diversity_fields: list[str]) -> dict:
    """A redacted copy of the report (the JSON contract), with ``redacted: true``."""
    result = json.loads(json.dumps(full))  # a deep copy of plain JSON data
    aggregates = result["aggregates"]
    minimum = aggregates["min_group_size"]
    diversity = set(diversity_fields)
    for target in aggregates["targets"].values():
        for key in list(target["groups"]):
            grouping = key.split(":", 1)[0]
            if grouping in diversity and target["groups"][key]["applicable"] < minimum:
                del target["groups"][key]
        for grouping, gap in target["gaps"].items():
            if grouping in diversity:
                gap["not_compared"] = [REDACTED] if gap["not_compared"] else []
    sizes = aggregates["group_sizes"]
    for key in list(sizes):
        if key.split(":", 1)[0] in diversity and sizes[key] < minimum:
            del sizes[key]
    for grouping in diversity & set(aggregates["groupings"]):
        aggregates["groupings"][grouping] = sorted(
            value for value in aggregates["groupings"][grouping] if f"{grouping}:{value}" in sizes)
    labels = result.get("labels", {})
    for key in list(labels):
        if key.split(":", 1)[0] in diversity and key not in sizes:
            del labels[key]  # a suppressed group is not even named
    if "examples" in result:
        result["examples"] = {}  # practice examples quote inspectors' notes
    _scrub(result, diversity)
    result["redacted"] = True
    return result


def case_line(line: bytes, diversity_fields: list[str]) -> str:
    """One line of trace.jsonl, redacted."""
    result = json.loads(line)
    _scrub(result, set(diversity_fields))
    return json.dumps(result, ensure_ascii=False, sort_keys=True) + "\n"


def _scrub(node, diversity: set[str]) -> None:
    """Notes become [redacted]; diversity values seen by conditions are removed."""
    if isinstance(node, dict):
        if "note" in node and "answer" in node:
            node["note"] = REDACTED if node["note"] else node["note"]
        seen = node.get("seen")
        if isinstance(seen, dict):
            for field in list(seen):
                if field in diversity:
                    seen[field] = REDACTED
        for value in node.values():
            _scrub(value, diversity)
    elif isinstance(node, list):
        for value in node:
            _scrub(value, diversity)


