"""The case-assessment workbook: a sample as an .xlsx inspectors fill in, and back to YAML.

Export writes one row per case (context columns, then an answer, note and sources column for each
case-scoped framework item), answer and vocabulary cells with drop-downs, the framework text as
header comments, an instructions sheet, and the sample manifest and organisation evidence on their
own sheets. Import reads such a workbook and writes the sample's YAML files; every problem is
reported in one pass as ``FILE.xlsx:Cases!C12: code: message (hint)``, and nothing is written
unless the whole workbook is valid.

Every column, drop-down and comment comes from the framework file: nothing here knows what is
being inspected. Rows are validated by the same models and wording as YAML files (the row is the
document, each cell a position), so a workbook and a case file fail the same way.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import os
import re
import shutil
import tempfile
import typing
import zipfile
from pathlib import Path
from typing import Any
from xml.parsers import expat

import openpyxl
from openpyxl.comments import Comment
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from engine.base.diagnostics import Diagnostic, InputError, did_you_mean, has_errors
from engine.check import models, validate
from engine.check import sample as samples
from engine.load import source
from engine.tools import generate, spreadsheet

try:  # openpyxl parses with defusedxml when it is installed (a dependency): entities are refused
    from defusedxml import DefusedXmlException
except ImportError:  # pragma: no cover - the DTD check before openpyxl refuses the same workbooks
    DefusedXmlException = ()  # type: ignore[assignment,misc]

CASES, ORGANISATIONS, SAMPLE, LISTS, INSTRUCTIONS = "Cases", "Organisations", "Sample", "Lists", "Instructions"
LIST_SEPARATOR = ","
#: Largest workbook read, in bytes (a 10,000-case workbook is a few MB).
MAX_WORKBOOK_BYTES = 64 * 1024 * 1024
#: Largest size of a workbook's parts once uncompressed, and most parts, read from the zip's
#: directory before anything is uncompressed (a 10,000-case workbook uncompresses to about 125 MB).
MAX_UNCOMPRESSED_BYTES = 1024 * 1024 * 1024
MAX_WORKBOOK_PARTS = 10_000
#: Rows below the data that keep their drop-downs, so new cases can be added.
SPARE_ROWS = 200
#: The per-item and per-criterion column suffixes, and the file field each one fills.
ITEM_PARTS = {"answer": "answer", "note": "note", "sources": "sources"}
JUDGEMENT_PARTS = {"judgement": "finding", "judgement note": "note"}
#: The columns of a cause found in fieldwork (organisation sheet: ``cause CAUSE note`` and so on).
CAUSE_PARTS = {"note": "note", "sources": "sources"}
#: The field without which an item's (or a judgement's, or a cause's) other cells mean nothing.
_REQUIRED_PART = {"evidence": "answer", "judgements": "finding", "causes": "note"}


@dataclasses.dataclass(frozen=True, order=True)
class CellDiagnostic(Diagnostic):
    """A diagnostic at a cell of a workbook: ``path`` is ``FILE.xlsx:Sheet``, line and col the cell's
    row and column; it renders as ``FILE.xlsx:Sheet!C12: code: message (hint)``."""

    @property
    def cell(self) -> str:
        return f"{get_column_letter(max(self.col, 1))}{max(self.line, 1)}"

    def render(self) -> str:
        message = self.message if self.severity == "error" else f"warning: {self.message}"
        text = f"{self.path}!{self.cell}: {self.code}: {message}"
        return f"{text} ({self.hint})" if self.hint else text

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "cell": self.cell}


@dataclasses.dataclass(frozen=True)
class Column:
    """One context column: its header, where its value goes in a file (``loc``), how a cell is read
    (``kind``: text, list, date, number), and the vocabulary of its drop-down, if any."""

    header: str
    loc: tuple
    kind: str
    description: str
    vocabulary: str | None = None
    required: bool = False
    listed: str | None = None  # a list column: the vocabulary its values come from (no drop-down)


def context_columns(framework: models.Framework) -> list[Column]:
    """The case-context columns, in file order: the case file's own, then every field the framework
    declares (a mapping's fields as PARENT_FIELD), then one per diversity characteristic."""
    own = framework.case_model().model_fields
    columns = [
        Column("case", ("case",), "text", own["case"].description, required=True),
        Column("provider", ("provider",), "text", own["provider"].description, "providers", True),
    ]
    if "population" in own:
        columns.append(Column("population", ("population",), "text", own["population"].description, "populations"))
    columns += _declared_columns(framework.vocabulary, framework.vocabulary.case_file, (), True)
    columns += [Column(f"diversity.{d.id}", ("diversity", d.id), "text", d.label, f"diversity.{d.id}")
                for d in framework.vocabulary.diversity]
    return columns


def _declared_columns(vocabulary: models.Vocabulary, fields: list[models.CaseField], parent: tuple,
                      required: bool) -> list[Column]:
    columns = []
    for field in fields:
        loc = parent + (field.id,)
        if field.type == "mapping":
            columns += _declared_columns(vocabulary, field.fields, loc, required and field.required)
            continue
        numbered = field.type == "term" and vocabulary.numbered(field.terms)
        kind = {"terms": "list", "date": "date", "number": "number"}.get(field.type, "number" if numbered else "text")
        columns.append(Column("_".join(loc), loc, kind, field.description,
                              field.terms if field.type == "term" else None,
                              required and field.required and field.type != "terms",
                              field.terms if field.type == "terms" else None))
    return columns


def _organisation_column() -> Column:
    return Column("organisation", ("organisation",), "text",
                  models.OrganisationFile.model_fields["organisation"].description, "providers", True)


def _item_headers(item_id: str) -> list[str]:
    return [f"{item_id} {part}" for part in ITEM_PARTS]


def _judgement_headers(criterion_id: str) -> list[str]:
    return [f"{criterion_id} {part}" for part in JUDGEMENT_PARTS]


def _per_criterion_headers(framework: models.Framework, scope: str | None) -> dict[str, tuple[str, str, str]]:
    """Header -> (file section, item or criterion id, field) for every item and judgement column,
    in sheet order: each criterion's items, then the inspector's judgement on the criterion."""
    headers: dict[str, tuple[str, str, str]] = {}
    for standard in framework.standards:
        if scope not in (None, standard.scope):
            continue
        for criterion in standard.criteria:
            for item in criterion.items:
                headers.update({f"{item.id} {part}": ("evidence", item.id, field) for part, field in ITEM_PARTS.items()})
            headers.update({f"{criterion.id} {part}": ("judgements", criterion.id, field)
                            for part, field in JUDGEMENT_PARTS.items()})
    if scope == "organisation":
        headers.update(_cause_headers(framework))
    return headers


def _cause_headers(framework: models.Framework) -> dict[str, tuple[str, str, str]]:
    """Header -> ("causes", cause, field) for the causes found in fieldwork, one pair per cause."""
    return {f"cause {cause} {part}": ("causes", cause, field)
            for cause in framework.vocabulary.ids("causes") for part, field in CAUSE_PARTS.items()}


def _findings() -> list[str]:
    return list(typing.get_args(models.Finding))


def _allowed(framework: models.Framework, kind: str) -> list:
    return framework.vocabulary.ids(kind)


def _labels(framework: models.Framework, kind: str) -> list[str]:
    if kind.startswith("diversity."):
        return ["" for _ in _allowed(framework, kind)]
    return [term.label for term in getattr(framework.vocabulary, kind)]


# --- export ---------------------------------------------------------------------------------------


def export(sample_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the sample in ``sample_dir`` as a case-assessment workbook (.xlsx), or its Cases table
    alone as .csv. Raises InputError when the sample is invalid (a workbook is only written from a
    sample that validates)."""
    loaded = samples.load(sample_dir)
    framework = loaded.framework
    cases = [handle.load().model for handle in loaded.cases]
    if Path(out).suffix.lower() == ".csv":
        headers = [c.header for c in context_columns(framework)]
        headers += list(_per_criterion_headers(framework, "case"))
        return spreadsheet.save_csv([headers] + [_case_row(case, framework) for case in cases], out)
    book = openpyxl.Workbook()
    _instructions(book.active, framework, loaded.manifest.model)
    lists = _lists_sheet(book.create_sheet(LISTS), framework)
    _evidence_sheet(book.create_sheet(CASES, 1), framework, "case", context_columns(framework),
                    [_case_row(case, framework) for case in cases], lists)
    _evidence_sheet(book.create_sheet(ORGANISATIONS, 2), framework, "organisation", [_organisation_column()],
                    [_organisation_row(o.model, framework) for o in loaded.organisations], lists)
    _sample_sheet(book.create_sheet(SAMPLE, 3), loaded.manifest.model)
    return spreadsheet.save_workbook(book, out)


def _case_row(case: models.CaseFile, framework: models.Framework) -> list:
    row = []
    for column in context_columns(framework):
        if column.loc[0] == "diversity":
            row.append(case.diversity.get(column.loc[1]))
            continue
        value = case
        for part in column.loc:
            value = getattr(value, part, None) if value is not None else None
        row.append(_joined(value) if column.kind == "list" else value)
    return row + _per_criterion_cells(case, framework, "case")


def _organisation_row(organisation: models.OrganisationFile, framework: models.Framework) -> list:
    return [organisation.organisation] + _per_criterion_cells(organisation, framework, "organisation")


def _per_criterion_cells(subject, framework: models.Framework, scope: str) -> list:
    cells: list = []
    for section, key, field in _per_criterion_headers(framework, scope).values():
        entry = getattr(subject, section, {}).get(key)
        value = getattr(entry, field, None) if entry is not None else None
        cells.append(_joined(value) if isinstance(value, list) else value)
    return cells


def _joined(values: list) -> str | None:
    return f"{LIST_SEPARATOR} ".join(values) if values else None


def _evidence_sheet(sheet, framework: models.Framework, scope: str, columns: list[Column], rows: list[list],
                    lists: dict[str, str]) -> None:
    """A sheet of one row per case (or organisation): headers with comments, values, drop-downs."""
    answers = framework.vocabulary.answers
    answer_help = "Answers: " + "; ".join(f"{a.id} = {a.label}" for a in answers) + \
        ". Leave empty when not assessed."
    headers: list[tuple[str, str]] = [(c.header, _column_help(c, framework)) for c in columns]
    for standard in framework.standards:
        if standard.scope != scope:
            continue
        for criterion in standard.criteria:
            for item in criterion.items:
                about = f"{item.id} ({criterion.id} {criterion.title})\n{item.text}"
                answer, note, sources = _item_headers(item.id)
                headers += [(answer, f"{about}\n\n{answer_help}"), (note, f"{about}\n\nWhat you found and where."),
                            (sources, f"{about}\n\nWhere you found it, separated by commas: "
                                      + ", ".join(_allowed(framework, "evidence_sources")))]
            finding, why = _judgement_headers(criterion.id)
            about = f"{criterion.id} {criterion.title}"
            headers += [(finding, f"{about}\n\nYour own judgement on the criterion (optional): "
                                  + ", ".join(_findings()) + ". The engine's finding is a check on it."),
                        (why, f"{about}\n\nWhat your judgement rests on (optional).")]
    if scope == "organisation":
        labels = {term.id: term.label for term in framework.vocabulary.causes}
        for header, (_, cause, field) in _cause_headers(framework).items():
            about = f"Cause found in fieldwork: {cause} ({labels[cause]})"
            headers.append((header, f"{about}\n\nWhat was found, and where (leave empty if it was not found)."
                            if field == "note" else f"{about}\n\nWhere it was found, separated by commas: "
                            + ", ".join(_allowed(framework, "evidence_sources"))))
    for index, (header, text) in enumerate(headers, start=1):
        cell = sheet.cell(1, index)
        spreadsheet.set_cell(cell, header)
        cell.font = spreadsheet.BOLD
        comment = Comment(text, "qi")
        comment.width, comment.height = 420, 220
        cell.comment = comment
        sheet.column_dimensions[get_column_letter(index)].width = 40 if header.endswith(" note") else 16
    for row_index, row in enumerate(rows, start=2):
        for column_index, value in enumerate(row, start=1):
            spreadsheet.set_cell(sheet.cell(row_index, column_index), value)
    sheet.freeze_panes = "B2"
    last = len(rows) + 1 + SPARE_ROWS
    for index, (header, _) in enumerate(headers, start=1):
        kind = "answers" if header.endswith(" answer") else "findings" if header.endswith(" judgement") else next(
            (c.vocabulary for c in columns if c.header == header), None)
        if kind is None:
            continue
        letter = get_column_letter(index)
        check = DataValidation(type="list", formula1=lists[kind], allow_blank=True, showErrorMessage=True,
                               errorTitle="Not an allowed value",
                               error=f"Choose a value from the list (see the {LISTS} sheet).")
        check.add(f"{letter}2:{letter}{last}")
        sheet.add_data_validation(check)


def _column_help(column: Column, framework: models.Framework) -> str:
    text = column.description or column.header
    if column.vocabulary:
        return f"{text}\nChoose from the list: " + ", ".join(map(str, _allowed(framework, column.vocabulary)))
    if column.kind == "list":
        allowed = ", ".join(map(str, _allowed(framework, column.listed))) if column.listed else ""
        return f"{text}\nSeparate values with commas" + (f"; allowed: {allowed}" if allowed else "")
    if column.kind == "date":
        return f"{text}\nA date, YYYY-MM-DD."
    return text


def _lists_sheet(sheet, framework: models.Framework) -> dict[str, str]:
    """Every drop-down's values (and labels) on one sheet; returns the range of each list."""
    columns = context_columns(framework)
    kinds = ["answers"] + list(dict.fromkeys(c.vocabulary for c in columns if c.vocabulary
                                             and not c.vocabulary.startswith("diversity.")))
    kinds += [f"diversity.{d.id}" for d in framework.vocabulary.diversity]
    kinds += list(dict.fromkeys(c.listed for c in columns if c.listed)) + ["evidence_sources"]
    ranges = {}
    for index, kind in enumerate(kinds + ["findings"]):
        id_column, label_column = 2 * index + 1, 2 * index + 2
        header = sheet.cell(1, id_column)
        spreadsheet.set_cell(header, kind)
        header.font = spreadsheet.BOLD
        spreadsheet.set_cell(sheet.cell(1, label_column), "label")
        values = _findings() if kind == "findings" else _allowed(framework, kind)
        labels = [""] * len(values) if kind == "findings" else _labels(framework, kind)
        for row, (value, label) in enumerate(zip(values, labels), start=2):
            spreadsheet.set_cell(sheet.cell(row, id_column), value)
            spreadsheet.set_cell(sheet.cell(row, label_column), label or None)
        letter = get_column_letter(id_column)
        ranges[kind] = f"{LISTS}!${letter}$2:${letter}${len(values) + 1}"
    return ranges


def _sample_sheet(sheet, manifest: models.SampleManifest) -> None:
    spreadsheet.set_cell(sheet.cell(1, 1), "field")
    spreadsheet.set_cell(sheet.cell(1, 2), "value")
    for row, (key, value) in enumerate(_flatten(manifest.model_dump(mode="python")), start=2):
        spreadsheet.set_cell(sheet.cell(row, 1), key)
        spreadsheet.set_cell(sheet.cell(row, 2), value)
    sheet.column_dimensions["A"].width, sheet.column_dimensions["B"].width = 20, 60


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, Any]]:
    pairs = []
    for key, value in data.items():
        if isinstance(value, dict):
            pairs += _flatten(value, f"{prefix}{key}.")
        else:
            pairs.append((f"{prefix}{key}", value))
    return pairs


def _instructions(sheet, framework: models.Framework, manifest: models.SampleManifest) -> None:
    sheet.title = INSTRUCTIONS
    answers = "; ".join(f"{a.id} ({a.label})" for a in framework.vocabulary.answers)
    lines = [
        f"Case assessment workbook: {manifest.title}",
        f"Sample {manifest.id}, {manifest.period.start} to {manifest.period.end}; "
        f"framework: {framework.title}, version {framework.version}.",
        "",
        f"{CASES}: one row per case. The first columns are the case context; then, for each framework "
        "item, an answer, a note and the sources of your evidence.",
        f"Answers: {answers}. Leave the answer empty for an item you did not assess: not assessed is "
        "different from not applicable.",
        "A note says what you found; sources say where (separate several with commas).",
        "Hover over a column header to read the framework's text for that item and the allowed values.",
        f"Drop-downs offer the allowed values; the {LISTS} sheet lists them with their meanings.",
        "Lists of values (requirements, flags, sources) are separated by commas. Dates are YYYY-MM-DD.",
        f"{ORGANISATIONS}: the organisation-level evidence, one row per provider. {SAMPLE}: what the sample is.",
        "Text is never run as a formula: anything you type is kept as text.",
        "",
        "When the workbook is filled in, turn it into the sample's YAML files and check them:",
        "    qi cases import THIS.xlsx --out SAMPLE_FOLDER",
        "    qi validate SAMPLE_FOLDER",
        "Every problem is reported with its sheet and cell, e.g. Cases!C12, and nothing is written until "
        "the whole workbook is valid.",
    ]
    for row, line in enumerate(lines, start=1):
        spreadsheet.set_cell(sheet.cell(row, 1), line or None)
    sheet.cell(1, 1).font = spreadsheet.BOLD
    sheet.column_dimensions["A"].width = 120


# --- import ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Imported:
    """What an import wrote, and the warnings (such as a missing note) it found on the way."""

    out: Path
    cases: int
    organisations: int
    warnings: list[Diagnostic]


class _Sheet:
    """One sheet being read: its name for diagnostics, and the problems found in it."""

    def __init__(self, display: str, name: str) -> None:
        self.display = display
        self.path = f"{display}:{name}"
        self.problems: list[Diagnostic] = []

    def problem(self, row: int, col: int, code: str, message: str, hint: str = "", severity: str = "error") -> None:
        self.problems.append(CellDiagnostic(self.path, row, col, code, message, hint, severity))  # type: ignore[arg-type]


def import_workbook(path: str | os.PathLike[str], out: str | os.PathLike[str], framework: models.Framework,
                    display: str | None = None) -> Imported:
    """Read a case-assessment workbook and write its sample files into ``out`` (a new or empty
    folder): sample.yaml (from the Sample sheet), cases/*.yaml and organisation/*.yaml. Raises
    InputError with every problem, and then writes nothing."""
    path, out = Path(path), Path(out)
    shown = display or str(path)
    book = _open_csv(path, shown) if path.suffix.lower() == ".csv" else _open(path, shown)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError([Diagnostic(str(out), 1, 1, "output_not_empty", "the output folder exists and is not empty",
                                     "choose a new folder; import never overwrites a sample")])
    problems: list[Diagnostic] = []
    files: dict[str, str] = {}
    warnings: list[Diagnostic] = []
    if CASES not in book.sheetnames:
        sheet = _Sheet(shown, CASES)
        sheet.problem(1, 1, "missing_sheet", f"the workbook has no {CASES} sheet",
                      f"export a workbook with qi cases export (sheets found: {', '.join(book.sheetnames)})")
        raise InputError(sheet.problems)
    try:
        cases = _read_rows(book[CASES], _Sheet(shown, CASES), framework, "case", context_columns(framework),
                           problems, warnings)
        organisations = (_read_rows(book[ORGANISATIONS], _Sheet(shown, ORGANISATIONS), framework, "organisation",
                                    [_organisation_column()], problems, warnings)
                         if ORGANISATIONS in book.sheetnames else [])
        manifest = (_read_manifest(book[SAMPLE], _Sheet(shown, SAMPLE), problems)
                    if SAMPLE in book.sheetnames else None)
    finally:
        book.close()
    if isinstance(book, _CsvBook):  # a CSV has no sheets: its problems read FILE.csv:ROW:COLUMN
        problems, warnings = _plain(problems, shown), _plain(warnings, shown)
    if has_errors(problems):
        raise InputError(problems + warnings)
    if manifest is not None:
        files["sample.yaml"] = generate._yaml(manifest)
    for data in cases:
        files[f"cases/{data['case']}.yaml"] = generate._yaml(data)
    for data in organisations:
        files[f"organisation/{data['organisation']}.yaml"] = generate._yaml(data)
    _write_folder(out, files)
    return Imported(out, len(cases), len(organisations), warnings)


class _CsvCell:
    """A CSV cell seen as a workbook cell: text, never a formula (a formula-looking text was
    escaped with an apostrophe on export, and is unescaped here)."""

    data_type = "s"

    def __init__(self, text: str) -> None:
        self.value = spreadsheet.csv_text(text) if text != "" else None


class _CsvSheet:
    def __init__(self, rows: list[list[str]]) -> None:
        self.rows = rows

    def iter_rows(self, min_row: int = 1):
        return ([_CsvCell(text) for text in row] for row in self.rows[min_row - 1:])


class _CsvBook:
    """A CSV file of case rows, read as a workbook with only a Cases sheet; problems are then
    reported as FILE.csv:ROW:COLUMN."""

    def __init__(self, rows: list[list[str]]) -> None:
        self.sheetnames = [CASES]
        self.sheets = {CASES: _CsvSheet(rows)}

    def __getitem__(self, name: str) -> _CsvSheet:
        return self.sheets[name]

    def close(self) -> None:
        """Nothing to close: the file was read whole."""


def _plain(found: list[Diagnostic], path: str) -> list[Diagnostic]:
    return [Diagnostic(path, d.line, d.col, d.code, d.message, d.hint, d.severity) for d in found]


def _open_csv(path: Path, shown: str) -> _CsvBook:
    try:
        if path.stat().st_size > MAX_WORKBOOK_BYTES:
            raise InputError([Diagnostic(shown, 1, 1, "unreadable_workbook",
                                         f"the file is larger than {MAX_WORKBOOK_BYTES // (1024 * 1024)} MiB",
                                         "split the sample, or check that it is the file you meant")])
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return _CsvBook(list(csv.reader(handle)))
    except OSError as error:
        raise InputError([Diagnostic(shown, 1, 1, "unreadable_workbook",
                                     f"cannot read the file: {(error.strerror or type(error).__name__).lower()}",
                                     "check the path and its permissions")]) from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError([Diagnostic(shown, 1, 1, "unreadable_workbook", f"this is not a UTF-8 CSV file ({error})",
                                     "save it from your spreadsheet program as CSV UTF-8")]) from None


def _open(path: Path, shown: str):
    def unreadable(message: str, hint: str) -> InputError:
        return InputError([Diagnostic(shown, 1, 1, "unreadable_workbook", message, hint)])

    try:
        size = path.stat().st_size
    except OSError as error:
        raise unreadable(f"cannot read the file: {(error.strerror or type(error).__name__).lower()}",
                         "check the path and its permissions") from None
    if size > MAX_WORKBOOK_BYTES:
        raise unreadable(f"the workbook is larger than {MAX_WORKBOOK_BYTES // (1024 * 1024)} MiB",
                         "split the sample, or check that it is the file you meant")
    _check_parts(path, shown)
    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=False)
    except Exception as error:  # zip, XML and openpyxl's own errors (InvalidFileException)
        raise _refused(shown, error) from None


def _refused(shown: str, error: BaseException) -> InputError:
    """The diagnostic for a workbook openpyxl could not read: ``unsafe_workbook`` when its parser
    refused an entity or an external reference (openpyxl re-raises that as a ValueError), else
    ``unreadable_workbook``."""
    cause: BaseException | None = error
    for _ in range(8):
        if cause is None:
            break
        if isinstance(cause, DefusedXmlException):
            return _unsafe(shown, f"the workbook's XML declares an entity or an external reference "
                                  f"({type(cause).__name__})")
        cause = cause.__cause__ or cause.__context__
    return InputError([Diagnostic(shown, 1, 1, "unreadable_workbook",
                                  f"this is not an .xlsx workbook qi can read ({type(error).__name__})",
                                  "save it from your spreadsheet program as Excel Workbook (.xlsx)")])


def _unsafe(shown: str, message: str) -> InputError:
    return InputError([Diagnostic(shown, 1, 1, "unsafe_workbook", message,
                                  "qi reads no entities; save it again from your spreadsheet program, or export "
                                  "a fresh one with qi cases export")])


def _check_parts(path: Path, shown: str) -> None:
    """Refuse, before openpyxl reads it, a workbook that would uncompress beyond the limits (the
    sizes come from the zip's directory, and no part is ever uncompressed past its stated size)
    and one with a part that declares a DTD: an .xlsx never has one, and a DTD is how entities
    (a billion laughs) and external references (a file on this computer) get in. Every part is
    checked, read or not, so the refusal does not depend on which sheets are read, or how."""
    def unreadable(message: str, hint: str = "save it from your spreadsheet program as Excel Workbook (.xlsx)"):
        return InputError([Diagnostic(shown, 1, 1, "unreadable_workbook", message, hint)])

    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
            if len(parts) > MAX_WORKBOOK_PARTS:
                raise unreadable(f"the workbook has {len(parts)} parts, more than the {MAX_WORKBOOK_PARTS} qi reads",
                                 "check that it is the file you meant")
            if sum(part.file_size for part in parts) > MAX_UNCOMPRESSED_BYTES:
                raise unreadable(f"the workbook uncompresses to more than {MAX_UNCOMPRESSED_BYTES // (1024 * 1024)} "
                                 "MiB", "split the sample, or check that it is the file you meant")
            for part in parts:
                found = _prolog(archive, part)
                if found == "dtd":
                    raise _unsafe(shown, f"the part {part.filename[:100]!r} declares a DTD (entities, external "
                                         "references), which an .xlsx never has")
                if found == "encoding":
                    raise unreadable(f"the part {part.filename[:100]!r} is in an encoding qi does not read")
    except InputError:
        raise
    except Exception as error:  # not a zip, an encrypted or corrupt part, an unknown compression
        raise _refused(shown, error) from None


class _Stop(Exception):
    """Raised from the XML parser to stop at the first DTD or the root element."""


def _prolog(archive: zipfile.ZipFile, part: zipfile.ZipInfo) -> str:
    """What starts a part: "dtd" when its XML declares a DTD, "encoding" when it is XML in an
    encoding the parser does not know, else "" (the root element, or not XML: images and the like,
    left to openpyxl). A DTD can only come before the root element, so parsing stops there: nothing
    is declared, expanded or fetched, and a large sheet costs no more than a small one."""
    parser = expat.ParserCreate()
    found = ""

    def stop(kind: str):
        def handler(*_) -> None:
            nonlocal found
            found = kind
            raise _Stop
        return handler

    parser.StartDoctypeDeclHandler = stop("dtd")
    parser.EntityDeclHandler = stop("dtd")
    parser.StartElementHandler = stop("")
    try:
        with archive.open(part) as stream:
            while chunk := stream.read(64 * 1024):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except _Stop:
        pass
    except expat.ExpatError as error:
        if error.code in (expat.errors.codes[expat.errors.XML_ERROR_UNKNOWN_ENCODING],
                          expat.errors.codes[expat.errors.XML_ERROR_INCORRECT_ENCODING]):
            return "encoding"
    return found


def _rows(worksheet, sheet: _Sheet, min_row: int = 1):
    """A sheet's rows. openpyxl parses a read-only sheet while its rows are read, so a sheet it
    cannot parse fails here, and is reported like any other unreadable workbook."""
    rows = worksheet.iter_rows(min_row=min_row)
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            return
        except Exception as error:  # the XML parser's, or openpyxl's
            raise _refused(sheet.display, error) from None
        yield cells


def _read_rows(worksheet, sheet: _Sheet, framework: models.Framework, scope: str, columns: list[Column],
               problems: list[Diagnostic], warnings: list[Diagnostic]) -> list[dict]:
    """Every data row of an evidence sheet as a validated file's data, with problems at their cells."""
    rows = _rows(worksheet, sheet)
    header_cells = next(rows, ())
    layout = _layout(header_cells, sheet, framework, scope, columns)
    key_column = columns[0]
    read: list[dict] = []
    first: dict[str, int] = {}
    for row, cells in enumerate(rows, start=2):
        if not any(c.value is not None and str(c.value).strip() != "" for c in cells):
            continue  # a blank row
        data, marks = _row_data(cells, row, sheet, layout, columns)
        document = source.Document(sheet.path, data, marks, "")
        kind = "case" if scope == "case" else "organisation"
        try:
            model = validate.to_model(document, kind, framework)
        except InputError as error:
            sheet.problems += [CellDiagnostic(d.path, d.line, d.col, d.code, d.message, d.hint, d.severity)
                               for d in error.diagnostics
                               if not (d.code == "missing_field" and _reported(sheet, row, "missing_value"))]
            continue
        sheet.problems += [CellDiagnostic(d.path, d.line, d.col, d.code, d.message, d.hint, d.severity)
                           for d in samples.warnings_for(samples.Loaded(document, model))]
        reference = data[key_column.loc[0]]
        if reference in first:
            line, col = marks[key_column.loc].line, marks[key_column.loc].col
            sheet.problem(line, col, "duplicate_case" if scope == "case" else "duplicate_organisation",
                          f"{key_column.header} {reference!r} is already in this sheet",
                          f"first given in row {first[reference]}; each appears once")
            continue
        first[reference] = row
        read.append(data)
    problems += [p for p in sheet.problems if p.severity == "error"]
    warnings += [p for p in sheet.problems if p.severity != "error"]
    if not read and not has_errors(sheet.problems) and scope == "case":
        sheet.problem(2, 1, "no_cases", "the sheet has no cases", "add one row per case below the headers")
        problems.append(sheet.problems[-1])
    return read


def _reported(sheet: _Sheet, row: int, code: str) -> bool:
    return any(p.line == row and p.code == code for p in sheet.problems)


@dataclasses.dataclass
class _Layout:
    context: dict[int, Column]
    items: dict[int, tuple[str, str, str]]  # column index -> (evidence|judgements, id, field)


def _layout(header_cells, sheet: _Sheet, framework: models.Framework, scope: str, columns: list[Column]) -> _Layout:
    """Which column holds what, from the header row; unknown, repeated and missing columns reported."""
    by_header = {c.header: c for c in columns}
    here = _per_criterion_headers(framework, scope)
    anywhere = _per_criterion_headers(framework, None)
    layout = _Layout({}, {})
    seen: dict[str, int] = {}
    known = list(by_header) + list(here)
    for col, cell in enumerate(header_cells, start=1):
        if cell.value is None or str(cell.value).strip() == "":
            continue
        header = str(cell.value).strip()
        if header in seen:
            sheet.problem(1, col, "duplicate_column", f"the column {header!r} appears twice",
                          f"first in column {get_column_letter(seen[header])}; keep one")
            continue
        seen[header] = col
        if header in by_header:
            layout.context[col] = by_header[header]
        elif header in here:
            layout.items[col] = here[header]
        elif header in anywhere:
            sheet.problem(1, col, "wrong_scope", f"{anywhere[header][1]!r} is not judged on this sheet",
                          f"its standard is judged in {'organisation' if scope == 'case' else 'case'} evidence")
        else:
            sheet.problem(1, col, "unknown_column", f"the column {header!r} is not one qi reads",
                          did_you_mean(header, known, "columns"))
    missing = [c.header for c in columns if c.required and c.header not in seen]
    for header in missing:
        sheet.problem(1, 1, "missing_column", f"the sheet has no {header!r} column",
                      "add it to the header row, or export a fresh workbook with qi cases export")
    return layout


def _row_data(cells, row: int, sheet: _Sheet, layout: _Layout, columns: list[Column]) -> tuple[dict, dict]:
    """A row as a file's data and the position (row, column) of every value in it."""
    data: dict = {}
    marks: dict[tuple, source.Mark] = {}
    groups: dict[tuple[str, str], dict] = {}
    group_marks: dict[tuple[str, str], dict[str, int]] = {}
    for col, cell in enumerate(cells, start=1):
        if col not in layout.context and col not in layout.items:
            continue
        if cell.data_type == "f":
            sheet.problem(row, col, "formula_cell", "this cell holds a formula, not a value",
                          "type the value itself; qi never evaluates formulas")
            continue
        value = cell.value
        if isinstance(value, str) and value.strip() == "":
            value = None
        if col in layout.context:
            column = layout.context[col]
            value = _context_value(column, value)
            if value is None:
                continue
            _put(data, column.loc, value)
            marks[column.loc] = source.Mark(row, col, row, col)
            if len(column.loc) > 1:
                marks.setdefault(column.loc[:1], source.Mark(row, col, row, col))
        else:
            section, key, part = layout.items[col]
            group_marks.setdefault((section, key), {})[part] = col
            if value is None:
                continue
            if part == "sources":
                value = _split(value)
            elif part == _REQUIRED_PART[section]:
                value = value.strip() if isinstance(value, str) else value
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                value = _number_text(value)
            groups.setdefault((section, key), {})[part] = value
    for (section, key), entry in groups.items():
        columns_of = group_marks[(section, key)]
        required = _REQUIRED_PART[section]
        main_col = columns_of.get(required, min(columns_of.values()))
        if required not in entry:
            what = {"evidence": "item", "judgements": "the judgement on", "causes": "the cause"}[section]
            sheet.problem(row, main_col, f"missing_{required}",
                          f"{what} {key} has other cells filled in but no {required}",
                          f"fill in the {required}, or clear the other cells of {key}")
            continue
        data.setdefault(section, {})[key] = entry
        marks[(section, key)] = source.Mark(row, main_col, row, main_col)
        for part, col in columns_of.items():
            marks[(section, key, part)] = source.Mark(row, col, row, col)
    for col, column in layout.context.items():
        marks.setdefault(column.loc, source.Mark(row, col, row, col))
        marks.setdefault(column.loc[:1], source.Mark(row, col, row, col))
        if len(column.loc) > 1:
            data.setdefault(column.loc[0], {})
        if column.required and _get(data, column.loc) is None:
            sheet.problem(row, col, "missing_value", f"the {column.header} is missing",
                          "fill in the cell" + (" from the drop-down" if column.vocabulary else ""))
    for key in {c.loc[0] for c in layout.context.values() if len(c.loc) > 1}:
        if data.get(key) == {} and not any(c.required for c in columns if c.loc[0] == key):
            data[key] = None  # an optional mapping with every cell empty: not recorded
    first_col = min(layout.context, default=1)
    marks[()] = source.Mark(row, first_col, row, first_col)
    return _ordered(data, columns), marks


def _ordered(data: dict, columns: list[Column]) -> dict:
    """Keys in the order a case file writes them (context columns, then evidence)."""
    order = []
    for column in columns:
        if column.loc[0] not in order:
            order.append(column.loc[0])
    return {key: data[key] for key in order + ["evidence", "judgements", "causes"] if key in data}


def _context_value(column: Column, value: Any) -> Any:
    if value is None:
        return [] if column.kind == "list" else None
    if column.kind == "list":
        return _split(value)
    if column.kind == "date":
        if isinstance(value, datetime.datetime):
            return value.date()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.date.fromisoformat(value.strip())
            return value.strip()  # the model says what is wrong with it
        return value
    if column.kind == "number":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number_text(value)
    return value.strip() if isinstance(value, str) else value


def _number_text(value: int | float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _split(value: Any) -> list:
    if not isinstance(value, str):
        return [value]
    return [part.strip() for part in re.split(r"[,;\n]", value) if part.strip()]


def _get(data: dict, loc: tuple) -> Any:
    for key in loc:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _put(data: dict, loc: tuple, value: Any) -> None:
    for key in loc[:-1]:
        data = data.setdefault(key, {})
    data[loc[-1]] = value


def _read_manifest(worksheet, sheet: _Sheet, problems: list[Diagnostic]) -> dict | None:
    """The Sample sheet (field | value rows) as sample.yaml data, validated."""
    data: dict = {}
    marks: dict[tuple, source.Mark] = {}
    for row, cells in enumerate(_rows(worksheet, sheet, min_row=2), start=2):
        if len(cells) < 2 or cells[0].value is None:
            continue
        key, cell = str(cells[0].value).strip(), cells[1]
        if cell.data_type == "f":
            sheet.problem(row, 2, "formula_cell", "this cell holds a formula, not a value",
                          "type the value itself; qi never evaluates formulas")
            continue
        value = cell.value
        if isinstance(value, datetime.datetime):
            value = value.date()
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = _number_text(value)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        loc = tuple(key.split("."))
        _put(data, loc, value)
        for depth in range(1, len(loc) + 1):
            marks.setdefault(loc[:depth], source.Mark(row, 2, row, 2))
    marks[()] = source.Mark(1, 1, 1, 1)
    document = source.Document(sheet.path, data, marks, "")
    try:
        validate.to_model(document, "sample")
    except InputError as error:
        problems += [CellDiagnostic(d.path, d.line, d.col, d.code, d.message, d.hint, d.severity)
                     for d in error.diagnostics]
        return None
    return data


def _write_folder(out: Path, files: dict[str, str]) -> None:
    """Write every file into a temporary folder beside ``out``, then rename it into place: the
    sample appears whole or not at all, its files readable by the owner only."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, text in files.items():
            target = staging / name
            target.parent.mkdir(mode=0o700, exist_ok=True)
            descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
        if out.exists():
            out.rmdir()  # empty, checked above
        os.rename(staging, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
        raise
