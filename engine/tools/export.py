"""A run's results as spreadsheet tables (``qi export RUN --to FILE.xlsx|FILE.csv``).

Tables, each read off the run's report (report.json, or the same object from the audit store):

* ``findings`` — one row per case (and organisation) and criterion: the engine's finding and the
  rules behind it, and every other field the report gives a finding (an inspector's or reviewer's
  finding, where the run has them), flattened to columns;
* ``aggregates`` — per criterion and standard and per group: counts, applicable, % sufficient,
  small-group marks, and any further figures the report holds for a group (such as intervals);
* ``gaps`` — per criterion and standard and per grouping: the groups compared, the gap in points,
  whether it is flagged;
* ``ratings`` — the ratings the sample rules concluded, and targets left unrated, each with how the
  bands were derived (empty when the rule set issues no bands); ``run`` — what was run, on what.

Columns follow the report: a field added to report.json appears here without code. Traces and
the case lists behind counts stay in report.json and trace.jsonl. No cell is ever a formula
(:mod:`engine.tools.spreadsheet`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.utils import get_column_letter

from engine.report import ratings
from engine.tools import spreadsheet

#: Fields left out of the tables: traces and case lists are in report.json and trace.jsonl.
_LEFT_OUT = {"trace", "cases", "because"}
FORMATS = (".xlsx", ".csv")


def tables(report: dict) -> dict[str, list[list]]:
    """The report as named tables, each a header row then data rows."""
    return {"findings": _findings(report), "aggregates": _aggregates(report), "gaps": _gaps(report),
            "ratings": _ratings(report), "run": _run(report)}


def write(report: dict, out: str | os.PathLike[str]) -> list[Path]:
    """Write the tables to ``out``: one .xlsx with a sheet per table, or one .csv per table (the
    findings in ``out``, the others beside it as ``NAME.aggregates.csv`` ...)."""
    out = Path(out)
    named = tables(report)
    if out.suffix.lower() == ".xlsx":
        book = openpyxl.Workbook()
        book.remove(book.active)
        for name, rows in named.items():
            sheet = book.create_sheet(name.capitalize())
            for row_index, row in enumerate(rows, start=1):
                for column_index, value in enumerate(row, start=1):
                    spreadsheet.set_cell(sheet.cell(row_index, column_index), value)
            for cell in sheet[1]:
                cell.font = spreadsheet.BOLD
                sheet.column_dimensions[get_column_letter(cell.column)].width = max(12, min(40, len(str(cell.value)) + 4))
            sheet.freeze_panes = "A2"
        return [spreadsheet.save_workbook(book, out)]
    written = []
    for name, rows in named.items():
        target = out if name == "findings" else out.with_name(f"{out.stem}.{name}{out.suffix}")
        written.append(spreadsheet.save_csv(rows, target))
    return written


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted columns; lists joined with commas; traces and case lists left out."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            if key not in _LEFT_OUT:
                flat.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list):
        return {prefix: ", ".join(str(v) for v in value)}
    return {prefix: value}


def _table(fixed: list[str], records: list[dict]) -> list[list]:
    """Header and rows: the fixed columns first, then every other column seen, in order of appearance."""
    columns = list(fixed)
    for record in records:
        columns += [key for key in record if key not in columns]
    return [columns] + [[record.get(column) for column in columns] for record in records]


def _titles(report: dict) -> dict[str, str]:
    return {c["id"]: c["title"] for s in report["standards"] for c in s["criteria"]}


def _findings(report: dict) -> list[list]:
    titles = _titles(report)
    records = []
    subjects = [("case", c["case"], c.get("provider"), c) for c in report["cases"]]
    subjects += [("organisation", o["organisation"], o["organisation"], o) for o in report.get("organisations", [])]
    for kind, reference, provider, subject in subjects:
        for criterion, finding in subject["findings"].items():
            record = {"kind": kind, "reference": reference, "provider": provider, "criterion": criterion,
                      "criterion_title": titles.get(criterion), "engine_finding": finding.get("value")}
            record.update({key: value for key, value in _flat(finding).items() if key != "value"})
            records.append(record)
    return _table(["kind", "reference", "provider", "criterion", "criterion_title", "engine_finding", "rules"],
                  records)


def _aggregates(report: dict) -> list[list]:
    records = []
    for key, target in report["aggregates"]["targets"].items():
        for group, figures in target["groups"].items():
            record = {"target": key, "kind": target["kind"], "title": target["title"], "group": group}
            record.update(_flat(figures))
            records.append(record)
    return _table(["target", "kind", "title", "group"], records)


def _gaps(report: dict) -> list[list]:
    """One row per target and grouping (highest against lowest group) and per provider pair: the
    two groups side by side (``higher.*``, ``lower.*``), the difference, and the test where one ran."""
    records = []
    for key, target in report["aggregates"]["targets"].items():
        compared = [(grouping, gap) for grouping, gap in target.get("gaps", {}).items()]
        compared += [("provider pair", pair) for pair in target.get("comparisons", [])]
        for grouping, gap in compared:
            records.append({"target": key, "title": target["title"], "grouping": grouping, **_flat(_sides(gap))})
    return _table(["target", "title", "grouping", "compared", "not_compared", "points", "highest", "lowest",
                   "flagged"], records)


def _sides(gap: dict) -> dict:
    """A gap with its two groups as ``higher`` and ``lower`` columns, and no empty ``test``."""
    shown = {k: v for k, v in gap.items() if k != "groups" and not (k == "test" and v is None)}
    for name, group in zip(("higher", "lower"), gap.get("groups") or []):
        shown[name] = group
    return shown


def _ratings(report: dict) -> list[list]:
    """Every band concluded and every target left unrated, each with what the views show and how
    the bands were derived (the rule set's words); no rows when the rule set issues no bands."""
    method = ratings.method(report)
    if method is None:
        return _table(["target", "group", "band", "shown", "method", "rules"], [])
    shown = ratings.cells(report)
    records = [{**_flat(rating), "shown": shown[(rating["target"], rating["group"])], "method": method}
               for rating in report["sample_judgement"]["ratings"]]
    records += [{"target": u["target"], "group": u["group"], "band": "", "applicable": u["applicable"],
                 "shown": shown[(u["target"], u["group"])], "method": method}
                for u in ratings.scheme(report)["unrated"]]
    return _table(["target", "group", "band", "shown", "method", "rules"], records)


def _run(report: dict) -> list[list]:
    pairs = {**_flat({"run": report.get("run", {})}), **_flat({"sample": report.get("sample", {})}),
             **_flat({"framework": report.get("framework", {})}), **_flat({"ruleset": report.get("ruleset", {})})}
    return [["field", "value"]] + [[key, value] for key, value in pairs.items()]
