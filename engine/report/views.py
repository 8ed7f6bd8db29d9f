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
from engine.report import draft, ratings
from engine.report.wording import agreement_words, change_sets, maker, what_if_summary

MARK = {True: "[holds]", False: "[fails]"}


def result_text(result: dict) -> str:
    """Findings per criterion, then enablers and barriers, each with the rules that concluded it."""
    lines = [f"case {result['case']} ({result['provider']}) — rule set {result['ruleset']['id']} "
             f"{result['ruleset']['version']}", ""]
    if result.get("judgements"):
        lines += ["Engine and inspector, disagreements first:", *judgement_lines(result["judgements"]), "",
                  "Findings:"]
    width = max((len(f["value"]) for f in result["findings"].values()), default=0)
    if not result["findings"]:
        lines.append("  no criterion: the case answers no standard of the framework")
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


def judgement_lines(rows: list[dict]) -> list[str]:
    """One line per criterion the inspector judged: engine beside inspector, and the note."""
    lines = []
    for row in rows:
        mark = "agree" if row["agree"] else "DISAGREE"
        note = f"  — \"{row['note']}\"" if row.get("note") else ""
        lines.append(f"  {row['criterion']:<5} engine {row['engine']:<14} inspector {row['inspector']:<14} {mark}{note}")
        if not row["agree"] and "what_if" in row:
            lines.append(f"  {'':<5} the engine would agree {what_if_summary(row['criterion'], row['what_if'])}")
    return lines


def what_if_text(what_if: dict) -> str:
    """A what-if explanation (``WhatIf.as_dict()``) in words: each smallest set of answer changes
    and the finding it gives; which findings no change reaches."""
    criterion = what_if["criterion"]
    lines = [f"{criterion} is {what_if['finding']}. Smallest sets of answer changes that would change it "
             f"(sets of up to {what_if['max_changes']} answers searched exactly):"]
    by_finding: dict[str, list[dict]] = {}
    for alternative in what_if["alternatives"]:
        by_finding.setdefault(alternative["finding"], []).append(alternative)
    for finding, alternatives in by_finding.items():
        for words in change_sets(alternatives):
            lines.append(f"  {criterion} would be {finding} if {words}")
    for finding in what_if["unreachable"]:
        lines.append(f"  no change of answers would make {criterion} {finding}")
    for finding in what_if["beyond"]:
        lines.append(f"  {criterion} would be {finding} only with more than {what_if['max_changes']} answers changed")
    if not what_if["alternatives"] and not what_if["beyond"]:
        lines.append(f"  no change of answers changes the finding on {criterion}")
    return "\n".join(lines) + "\n"


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
    if node.get("not_shown"):
        other = "alternative" if node["condition"] == "any" else "part"
        _add(lines, depth + 1, f"(and {node['not_shown']} other {other}{'s' * (node['not_shown'] != 1)} that "
                               f"{'do not hold' if node['holds'] else 'hold'}, not shown)", width)
    for evidence in node.get("evidence", []):
        quoted = f"\"{evidence['note']}\"" if evidence.get("note") else "(no note)"
        _add(lines, depth + 2, f"{evidence['item']}: {evidence['answer']} — {quoted} ({evidence['at']})", width)
    for rule in node.get("derived_by", []):
        _add(lines, depth + 1, "derived by:", width)
        _rule(rule, depth + 2, lines, width)
    if node.get("could_be_derived_by"):
        _add(lines, depth + 1, "no rule derived it; rules that can: " + ", ".join(node["could_be_derived_by"]), width)




def consistency_text(consistency: dict, review: dict | None = None) -> str:
    """The consistency section of a run in brief, with the review state of each disagreement."""
    engine = consistency["engine_inspector"]
    lines = [f"consistency: engine and inspector on {engine['judged']} judged cases and organisations: "
             f"{agreement_words(engine['overall'])}"]
    for criterion, figures in engine["criteria"].items():
        lines.append(f"  {criterion:<5} {agreement_words(figures)}")
    states = {(d["case"], d["criterion"]): d for d in (review or {}).get("decisions", [])}
    lines.append(f"moderation list ({len(consistency['moderation'])} disagreements):")
    for row in consistency["moderation"]:
        decided = states.get((row["case"], row["criterion"]))
        state = f"{decided['decision']} by {printable(maker(decided))}" if decided else "open"
        lines.append(f"  {row['case']} {row['criterion']}: engine {row['engine']}, inspector {row['inspector']} "
                     f"[{state}]")
        if row.get("what_if"):  # for reviewers: never in the draft report
            lines.append(f"    the engine would agree {what_if_summary(row['criterion'], row['what_if'])}")
    second = consistency["second_marking"]
    if second["cases"]:
        lines.append(f"second marking of {', '.join(second['cases'])}: answers "
                     f"{agreement_words(second['answers']['overall'])}; judgements "
                     f"{agreement_words(second['judgements']['overall'])}")
        sides = second["engine_sides_with"]
        lines.append(f"  where the inspectors differ the engine sides with the first {sides['first']}, the second "
                     f"{sides['second']}, neither {sides['neither']}")
    return printable("\n".join(lines) + "\n", lines=True)


def review_text(review: dict) -> str:
    """Each reviewed finding's state, what is open, and the sign-offs: what each signed (the final
    report's sha256) and whether the final report is still that."""
    lines = [f"review: {len(review['decisions'])} findings decided ({len(review['history'])} decisions recorded)"]
    one = lambda value: printable(str(value))  # noqa: E731 — a person's words on one line: a newline cannot forge one
    for d in review["decisions"]:
        final = f"; final {d['final']} (engine {d['engine']})" if d["decision"] == "override" else ""
        reason = f' — "{one(d["reason"])}"' if d.get("reason") else ""
        lines.append(f"  {one(d['case'])} {one(d['criterion'])}: {d['decision']} by {one(maker(d))} at "
                     f"{one(d['at'])}{final}{reason}")
    lines.append(f"open: {len(review['open'])}")
    lines += [f"  {one(o['case'])} {one(o['criterion'])}: {one(o['why'])}" for o in review["open"]]
    for s in review["signoffs"]:
        signed = f": final report sha256:{s['report_sha256']}" if s.get("report_sha256") else \
            " (made before sign-offs named the report they sign)"
        lines.append(f"signed off by {one(maker(s))} at {one(s['at'])}{signed}")
    if not review["signoffs"]:
        lines.append("not signed off")
    elif review.get("signed"):
        state = review["signed"]
        lines.append("the final report is the one signed off" if state["unchanged"] else
                     f"the final report changed since it was signed off (now sha256:{state['final_report_sha256']})")
    return printable("\n".join(lines) + "\n", lines=True)


def run_text(report: dict) -> str:
    """A stored run in brief: what it ran on, and the findings per criterion per provider."""
    lines = [f"run {report['run']['id']} at {report['run']['timestamp']} (qi {report['qi']['version']})",
             f"sample {report['sample']['id']}: {report['sample']['title']} — {report['sample']['cases']} cases",
             f"framework {report['framework']['id']} {report['framework']['version']} "
             f"sha256:{report['framework']['sha256']}",
             f"rule set {report['ruleset']['id']} {report['ruleset']['version']} sha256:{report['ruleset']['sha256']}",
             "inputs:"]
    lines += [f"  {entry['sha256']}  {entry.get('path', entry['role'])}" for entry in report["inputs"]]  # redacted: no path
    lines.append("findings (% sufficient of applicable cases):")
    for target in report["aggregates"]["targets"].values():
        figures = [f"{key}: {group['percent']}%{_interval(group)}" for key, group in target["groups"].items()
                   if (key == "all" or key.startswith("provider:")) and group["percent"] is not None]
        lines.append(f"  {target['id']:<11} " + "; ".join(figures))
    lines.append("recommendations:")
    lines += [f"  - {r['text']} (to {', '.join(r['to'])})" for r in report["sample_judgement"]["recommendations"]]
    return printable("\n".join(lines) + "\n", lines=True)


@contextlib.contextmanager
def progress(total: int | None, label: str):
    """A progress bar on stderr while work runs, silent when stderr is not a terminal; yields a
    function to call with the number of items done (and ``total=`` once known, if it was not)."""
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

        def advance(done: int = 1, total: int | None = None) -> None:
            if total is not None:
                bar.update(task, total=total)
            bar.advance(task, done)
        yield advance


@contextlib.contextmanager
def status(label: str):
    """A spinner with ``label`` on stderr while work of unknown length runs (silent when stderr is
    not a terminal)."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    with console.status(label):
        yield


def _interval(figures: dict) -> str:
    """`` [41–70]``: a figure's 95% interval in whole percent, or nothing when there is none."""
    bounds = draft.interval(figures)
    return f" [{bounds[0]}–{bounds[1]}]" if bounds else ""


def headline_text(report: dict) -> str:
    """The run at a glance: % sufficient per case-scoped standard, overall and per provider, with
    the 95% interval where the run computed one; the rating and how it was derived only when the
    rule set issues bands."""
    providers = report["sample"]["providers"]
    shown = ratings.cells(report)
    groups = [("all", "All")] + [(f"provider:{p}", p) for p in providers]
    rows = []
    for standard in report["standards"]:
        if standard["scope"] != "case":
            continue
        target_id = f"standard {standard['id']}"
        target = report["aggregates"]["targets"][target_id]
        cells = []
        for key, _ in groups:
            figures = target["groups"].get(key)
            text = f"{figures['percent']}%{_interval(figures)}" if figures and figures["percent"] is not None else "n/a"
            band = ratings.cell(shown, target_id, key)
            cells.append(f"{text} {band}".strip())
        rows.append((standard["id"], cells))
    width = max([len(c) for _, cells in rows for c in cells] + [len(label) for _, label in groups]) + 2
    lines = [("  standard  " + "".join(f"{label:<{width}}" for _, label in groups)).rstrip()]
    lines += [(f"  {sid:<8}  " + "".join(f"{c:<{width}}" for c in cells)).rstrip() for sid, cells in rows]
    level = draft.level(report["aggregates"].get("confidence", 0.95))
    lines.append("  % of applicable cases sufficient" + (f", [{level} interval]" if any(
        "[" in c for _, cells in rows for c in cells) else ""))
    method = ratings.method(report)
    if method:
        lines += textwrap.wrap("Ratings: " + method, width=100, initial_indent="  ", subsequent_indent="  ")
    recommendations = report["sample_judgement"]["recommendations"]
    lines.append(f"  {len(recommendations)} recommendation{'s' * (len(recommendations) != 1)}; "
                 f"details in report.md, report.html and report.docx")
    return printable("\n".join(lines) + "\n", lines=True)
