"""Redaction for publishable reports (``qi run --redact``): no case reference, no input file's
path, no inspector's free-text note or reviewer's reason, nothing meant only for the inspectors,
and no diversity group whose figures could identify people.

Published inspection reports name no case: a case reference, a case file's path or a note can
identify a person, and so can a small group's figures ("the one woman on licence"). So:

- **cases are not listed**: no per-case results (``cases`` is empty and no trace.jsonl is written),
  no case references behind a count (in the aggregates, the factors and the sample traces), no
  input file's path (``inputs`` keep their role and sha256; evidence positions are removed; a rule
  set is named by its file name, without folders).
- **internal sections are left out**: the warnings ("answers to check"), the moderation list with
  its what-if lines, the second markings' cases, each case's and organisation's judgement rows and
  the review (decisions, reasons, reviewers, sign-offs). Agreement figures stay; they name no case.
- **practice examples** are quoted only when the rule set's ``sample.quote_practice_examples`` is
  true, and then without the case, without the note's position, and with every case reference of
  the sample taken out of the note. qi cannot recognise a person's name in a note: a rule set that
  allows quotation relies on inspectors writing notes fit to quote.
- **notes and reasons** left anywhere (in the traces the report keeps) are ``[redacted]``.
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
- **traces** the report keeps (the organisations' and the sample's) say neither a diversity value
  seen nor whether a condition reading one held (nor whether a combination containing such a
  condition held).

The audit store keeps the full run.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath, PureWindowsPath

REDACTED = "[redacted]"

#: The keys of report.json a redacted report keeps (docs/report.md), each redacted below; any other
#: key (``review``, or one a later version adds) is left out, so what is published is what was vetted.
PUBLISHED = ("run", "qi", "sample", "framework", "ruleset", "inputs", "standards", "labels", "aggregates",
             "examples", "publication", "sample_judgement", "organisations", "cases", "consistency", "traces",
             "warnings", "store", "redacted")


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
    _scrub_sample(result.get("sample_judgement"), hidden, diversity)
    for organisation in result.get("organisations", []):
        _scrub_case_lists(organisation)
    _scrub(result, diversity)
    _unlist_cases(result)
    if "examples" in result:  # after the notes are scrubbed: these are the quotations the rule set allows
        allowed = bool(result.get("publication", {}).get("quote_practice_examples"))
        result["examples"] = _examples(full["examples"], case_references(full)) if allowed else {}
    result["redacted"] = True
    return result


def case_references(full: dict) -> list[str]:
    """Every case reference a report holds (its cases, and those its consistency figures name)."""
    found = {case["case"] for case in full.get("cases", [])}
    consistency = full.get("consistency", {})
    found |= {row["case"] for row in consistency.get("moderation", []) if not row["case"].startswith("organisation:")}
    found |= set(consistency.get("second_marking", {}).get("cases", []))
    return sorted(found)


def without_references(text: str, references: list[str]) -> str:
    """``text`` with every one of ``references`` standing alone (not inside a longer word or
    reference) replaced by ``[redacted]``, longest first.

    >>> without_references("As in NW-001 and NW-0011, not NW-001's.", ["NW-001"])
    "As in [redacted] and NW-0011, not [redacted]'s."
    """
    for reference in sorted(references, key=len, reverse=True):
        text = re.sub(rf"(?<![\w-]){re.escape(reference)}(?![\w-])", REDACTED, text, flags=re.IGNORECASE)
    return text


def _examples(examples: dict, references: list[str]) -> dict:
    """Practice examples fit to quote in a published report: the provider, criterion, finding, item
    and answer, and the note without the sample's case references; no case, no position."""
    return {criterion: [{"provider": e["provider"], "criterion": e["criterion"], "finding": e["finding"],
                         "item": e["item"], "answer": e["answer"],
                         "note": without_references(e["note"], references)} for e in found]
            for criterion, found in examples.items()}


def _unlist_cases(result: dict) -> None:
    """No case reference, case-level result, input path or internal section in the report."""
    result["cases"] = []
    result["inputs"] = sorted(({"role": entry["role"], "sha256": entry["sha256"]} for entry in result.get("inputs", [])),
                              key=lambda entry: (entry["role"], entry["sha256"]))
    result["warnings"] = []  # each names a case file and line: the "answers to check" are the inspectors'
    for key in [key for key in result if key not in PUBLISHED]:
        del result[key]  # the review (decisions, reasons, reviewers, sign-offs), and any key not vetted here
    if isinstance(result.get("traces"), dict):
        result["traces"]["file"] = None  # the case traces stay in the audit store
        result["traces"].pop("rules", None)  # and the rule table their lines are read with
    if isinstance(result.get("ruleset"), dict) and result["ruleset"].get("file"):
        result["ruleset"]["file"] = file_name(result["ruleset"]["file"])
    consistency = result.get("consistency")
    if isinstance(consistency, dict):
        consistency["moderation"] = []
        second = consistency.get("second_marking")
        if isinstance(second, dict):
            second["cases"] = []
            second["differences"] = []
    for organisation in result.get("organisations", []):
        organisation.pop("file", None)
        organisation.pop("judgements", None)
        for cause in organisation.get("causes", []):  # what was found stays; the inspectors' words do not
            cause.pop("note", None)
        for finding in organisation.get("findings", {}).values():  # what was decided stays; who and why do not
            for internal in ("review", "final", "engine"):
                finding.pop(internal, None)
    _unlist_references(result.get("aggregates"))
    _unlist_references(result.get("sample_judgement"))
    _positions(result.get("sample_judgement"))
    _positions(result.get("organisations"))


def _unlist_references(node) -> None:
    """The case references behind counts removed: ``references``, and ``cases`` wherever it lists
    cases rather than counting them."""
    if isinstance(node, dict):
        node.pop("references", None)
        if isinstance(node.get("cases"), (list, dict)):
            del node["cases"]
        for value in node.values():
            _unlist_references(value)
    elif isinstance(node, list):
        for value in node:
            _unlist_references(value)


def file_name(path: str) -> str:
    r"""A path without its folders (``rules/x.yaml`` -> ``x.yaml``; a Windows path too).

    >>> file_name("/home/someone/rules/x.yaml"), file_name(r"C:\rules\x.yaml"), file_name("x.yaml")
    ('x.yaml', 'x.yaml', 'x.yaml')
    """
    return PureWindowsPath(PurePosixPath(path).name).name


def _positions(node) -> None:
    """In traces: evidence loses its position in an input file; a rule's position and rule set keep
    only the rule set's file name (``x.yaml:12``)."""
    if isinstance(node, dict):
        if "item" in node and "answer" in node:
            node.pop("at", None)  # a position in a case or organisation file
        elif isinstance(node.get("at"), str) and ":" in node["at"]:
            path, _, line = node["at"].rpartition(":")
            node["at"] = f"{file_name(path)}:{line}"
        if isinstance(node.get("ruleset"), dict) and isinstance(node["ruleset"].get("file"), str):
            node["ruleset"]["file"] = file_name(node["ruleset"]["file"])
        for value in node.values():
            _positions(value)
    elif isinstance(node, list):
        for value in node:
            _positions(value)


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
    case references (which would say which cases carry which context)."""
    if isinstance(node, dict):
        seen = node.get("seen")
        if isinstance(seen, dict) and isinstance(seen.get("cases"), list):
            seen["cases"] = REDACTED
        for value in node.values():
            _scrub_case_lists(value)
    elif isinstance(node, list):
        for value in node:
            _scrub_case_lists(value)


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
