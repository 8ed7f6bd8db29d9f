"""Views: text renderings of case results and reasoning traces (JSON is the data itself).

Every view returns text with control and bidi characters shown as escapes (:func:`printable`):
what a terminal prints must not be able to move its cursor, clear it or reorder text, whatever a
file name, a stored run or a note holds.
"""

from __future__ import annotations

import contextlib
import textwrap

from engine.base import render
from engine.base.text import printable

MARK = {True: "[holds]", False: "[fails]"}


def result_text(result: dict) -> str:
    """Findings per criterion, then enablers and barriers, each with the rules that concluded it."""
    lines = [f"case {result['case']} ({result['provider']}) — rule set {result['ruleset']['id']} "
             f"{result['ruleset']['version']}", ""]
    width = max(len(f["value"]) for f in result["findings"].values())
    for criterion, finding in result["findings"].items():
        rules = ", ".join(finding["rules"]) or "no rule concluded"
        lines.append(f"  {criterion:<5} {finding['value']:<{width}}  {finding['trace']['title']}")
        lines.append(f"  {'':<5} {'':<{width}}  by: {rules}")
    for kind in ("enablers", "barriers"):
        lines += ["", f"{kind.capitalize()}:"]
        entries = result[kind] or []
        lines += [f"  [{e['criterion']}] {e['text']} ({e['id']}; by: {', '.join(e['rules'])})" for e in entries]
        if not entries:
            lines.append("  none")
    return printable("\n".join(lines) + "\n", lines=True)


def tree_text(node: dict, width: int = 100) -> str:
    """A finding, factor or why-not trace as an indented tree a reviewer can read."""
    lines: list[str] = []
    _node(node, 0, lines, width)
    return printable("\n".join(lines) + "\n", lines=True)


def _add(lines: list[str], depth: int, text: str, width: int) -> None:
    indent = "  " * depth
    lines.extend(textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent + "    ",
                               break_long_words=False, break_on_hyphens=False) or [indent])


def _node(node: dict, depth: int, lines: list[str], width: int) -> None:
    if "candidates" in node:
        _add(lines, depth, f"why not {node['value']} on {node['criterion']}? (actual finding: {node['actual']})", width)
        _add(lines, depth + 1, node["note"], width)
        for rule in node["candidates"]:
            _rule(rule, depth + 1, lines, width)
        return
    if "criterion" in node and "value" in node:
        _add(lines, depth, f"{node['criterion']} {node['title']}: {node['value'].upper()}  ({node['key']})", width)
        if node.get("note"):
            _add(lines, depth + 1, node["note"], width)
        for rule in node["because"]:
            _rule(rule, depth + 1, lines, width)
        for other in node.get("overridden", []):
            _add(lines, depth + 1, f"overridden: rule {other['rule']} concluded {other['value']} "
                                   f"(priority {other['priority']}); policy: {node['policy']}", width)
        return
    _add(lines, depth, f"{node['text']} [{node['criterion']}]  ({node['key']})", width)
    for rule in node["because"]:
        _rule(rule, depth + 1, lines, width)


def _rule(rule: dict, depth: int, lines: list[str], width: int) -> None:
    state = "fired" if rule["fired"] else "did not fire"
    _add(lines, depth, f"rule {rule['rule']} — {rule['title']} ({state}; {rule['at']}; "
                       f"{rule['ruleset']['id']} {rule['ruleset']['version']} sha256:{rule['ruleset']['sha256'][:12]})",
         width)
    _condition(rule["condition"], depth + 1, lines, width)


def _condition(node: dict, depth: int, lines: list[str], width: int) -> None:
    seen = ""
    if "seen" in node:
        seen = "  — seen: " + "; ".join(f"{k} = {render.show(v)}" for k, v in node["seen"].items())
    _add(lines, depth, f"{MARK.get(node['holds'], '[redacted]')} {node['text']}{seen}  ({node['at']})", width)
    for child in node.get("children", []):
        _condition(child, depth + 1, lines, width)
    for evidence in node.get("evidence", []):
        quoted = f"\"{evidence['note']}\"" if evidence.get("note") else "(no note)"
        _add(lines, depth + 2, f"{evidence['item']}: {evidence['answer']} — {quoted} ({evidence['at']})", width)
    for rule in node.get("derived_by", []):
        _add(lines, depth + 1, "derived by:", width)
        _rule(rule, depth + 2, lines, width)
    if node.get("could_be_derived_by"):
        _add(lines, depth + 1, "no rule derived it; rules that can: " + ", ".join(node["could_be_derived_by"]), width)




def run_text(report: dict) -> str:
    """A stored run in brief: what it ran on, and the findings per criterion per provider."""
    lines = [f"run {report['run']['id']} at {report['run']['timestamp']} (qi {report['qi']['version']})",
             f"sample {report['sample']['id']}: {report['sample']['title']} — {report['sample']['cases']} cases",
             f"framework {report['framework']['id']} {report['framework']['version']} "
             f"sha256:{report['framework']['sha256']}",
             f"rule set {report['ruleset']['id']} {report['ruleset']['version']} sha256:{report['ruleset']['sha256']}",
             "inputs:"]
    lines += [f"  {entry['sha256']}  {entry['path']}" for entry in report["inputs"]]
    lines.append("findings (% sufficient of applicable cases):")
    for target in report["aggregates"]["targets"].values():
        figures = [f"{key}: {group['percent']}%" for key, group in target["groups"].items()
                   if (key == "all" or key.startswith("provider:")) and group["percent"] is not None]
        lines.append(f"  {target['id']:<11} " + "; ".join(figures))
    lines.append("recommendations:")
    lines += [f"  - {r['text']} (to {', '.join(r['to'])})" for r in report["sample_judgement"]["recommendations"]]
    return printable("\n".join(lines) + "\n", lines=True)


@contextlib.contextmanager
def progress(total: int, label: str):
    """A progress bar on stderr while work runs, silent when stderr is not a terminal; yields a
    function to call with the number of items done."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console, transient=True, disable=not console.is_terminal)
    with bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.advance(task, done)


def headline_text(report: dict) -> str:
    """The run at a glance: % sufficient and rating per case-scoped standard, overall and per provider."""
    providers = report["sample"]["providers"]
    ratings = {(r["target"], r["group"]): r["band"] for r in report["sample_judgement"]["ratings"]}
    groups = [("all", "All")] + [(f"provider:{p}", p) for p in providers]
    lines = [("  standard  " + "".join(f"{label:<28}" for _, label in groups)).rstrip()]
    for standard in report["standards"]:
        if standard["scope"] != "case":
            continue
        target = report["aggregates"]["targets"][f"standard {standard['id']}"]
        cells = []
        for key, _ in groups:
            figures = target["groups"].get(key)
            percent = f"{figures['percent']}%" if figures and figures["percent"] is not None else "n/a"
            band = ratings.get((f"standard {standard['id']}", key.split(":")[-1] if key != "all" else "all"), "")
            cells.append(f"{percent:>6} {band.replace('_', ' '):<21}")
        lines.append((f"  {standard['id']:<8}  " + "".join(cells)).rstrip())
    recommendations = report["sample_judgement"]["recommendations"]
    lines.append(f"  {len(recommendations)} recommendation{'s' * (len(recommendations) != 1)}; "
                 f"details in report.md, report.html and report.docx")
    return printable("\n".join(lines) + "\n", lines=True)
