"""Spreadsheet files written safely: no cell ever becomes a formula, files appear whole and
owner-readable.

Text that begins with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return) is what Excel,
LibreOffice and Google Sheets read as a formula: an inspector's note such as
``=HYPERLINK("http://…","click")`` would run when the sheet is opened. In .xlsx every text is
written as a text cell with Excel's quote prefix (kept as text even when the cell is edited); in
.csv such text is prefixed with an apostrophe, the convention spreadsheet programs honour.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from openpyxl.cell.cell import Cell
from openpyxl.styles import Font

#: First characters that make a spreadsheet program read text as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

BOLD = Font(bold=True)


def looks_like_formula(text: str) -> bool:
    return text.startswith(FORMULA_STARTS)


def set_cell(cell: Cell, value: Any) -> None:
    """Put ``value`` in an xlsx cell: numbers and dates as themselves, anything else as text that
    is never a formula."""
    if value is None or isinstance(value, bool) or isinstance(value, (int, float, datetime.date)):
        cell.value = value
        if isinstance(value, datetime.date):
            cell.number_format = "yyyy-mm-dd"
        return
    text = str(value)
    cell.value = text
    cell.data_type = "s"  # openpyxl would store "=…" as a formula; this keeps it a string
    if looks_like_formula(text):
        cell.quotePrefix = True  # and Excel keeps it text when someone edits the cell


def csv_value(value: Any) -> Any:
    """A value for a CSV cell: text that would read as a formula gets a leading apostrophe (and so
    does text that already begins with one, so :func:`csv_text` gives back exactly what was written).

    >>> csv_value('=HYPERLINK("http://x")'), csv_value("'quoted"), csv_value("plain")
    ('\'=HYPERLINK("http://x")', "''quoted", 'plain')
    """
    if isinstance(value, str) and (looks_like_formula(value) or value.startswith("'")):
        return "'" + value
    return "" if value is None else value


def csv_text(text: str) -> str:
    """The text a CSV cell written by :func:`csv_value` stands for."""
    if text.startswith("'") and (looks_like_formula(text[1:]) or text[1:].startswith("'")):
        return text[1:]
    return text


def save_workbook(workbook, path: str | os.PathLike[str]) -> Path:
    """Save an openpyxl workbook atomically, readable by the owner only."""
    return atomic_write(Path(path), lambda handle: workbook.save(handle), binary=True)


def save_csv(rows: Iterable[list], path: str | os.PathLike[str]) -> Path:
    """Write rows as CSV (UTF-8 with a byte-order mark, which Excel needs to read accents)
    atomically, readable by the owner only."""
    def write(handle) -> None:
        writer = csv.writer(handle, lineterminator="\r\n")
        for row in rows:
            writer.writerow([csv_value(v) for v in row])
    return atomic_write(Path(path), write, binary=False)


def atomic_write(path: Path, writer, binary: bool) -> Path:
    """Write a file through ``writer(handle)`` to a temporary file renamed into place, owner-readable."""
    folder = path.parent if str(path.parent) else Path(".")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(descriptor, 0o600)
        mode = "wb" if binary else "w"
        options = {} if binary else {"encoding": "utf-8-sig", "newline": ""}
        with os.fdopen(descriptor, mode, **options) as handle:
            writer(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path
