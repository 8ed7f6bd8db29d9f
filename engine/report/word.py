"""report.docx: the inspection-report draft as a Word document an inspector can edit — real
headings (Heading 1–3, so Word's navigation pane and table of contents work), tables in Word's
table style, bullet lists and quotations in their own styles.

A view of :mod:`engine.report.draft`, like report.md and report.html.
"""

from __future__ import annotations

import datetime
import io

import docx
from docx.enum.section import WD_ORIENT
from docx.enum.text import WD_BREAK
from docx.shared import Mm

from engine.report import charts, draft

#: Word's own style names, so the document follows whatever template an inspectorate applies.
TABLE_STYLE = "Light Grid Accent 1"

#: The page when the report does not say (a run recorded before ``publication`` existed): A4
#: portrait with 25 mm margins, as the rule set's ``sample.page`` defaults to.
PAGE = {"width_mm": 210.0, "height_mm": 297.0, "margin_mm": 25.0}


def document(report: dict) -> docx.document.Document:
    """The draft as a python-docx Document."""
    made = draft.build(report, consistency=True)
    doc = docx.Document()
    properties = doc.core_properties
    properties.title = made.title
    properties.subject = report["framework"]["title"]
    properties.author = "qi"
    # A fixed date keeps the file's bytes a function of the report (the run timestamp, not now).
    stamp = datetime.datetime.fromisoformat(report["run"]["timestamp"]).replace(tzinfo=None)
    properties.created = properties.modified = stamp
    properties.revision = 1
    lay_out(doc, {**PAGE, **report.get("publication", {}).get("page", {})})
    doc.add_heading(made.title, level=0)
    for paragraph in made.summary:
        doc.add_paragraph(paragraph)
    for section in made.sections:
        _section(doc, section, level=1)
    return doc


def lay_out(doc, page: dict) -> None:
    """Every section of the document on the page the rule set gives (python-docx's template is US
    Letter): its size, its orientation (landscape when wider than tall) and its margins."""
    for section in doc.sections:
        section.orientation = WD_ORIENT.LANDSCAPE if page["width_mm"] > page["height_mm"] else WD_ORIENT.PORTRAIT
        section.page_width, section.page_height = Mm(page["width_mm"]), Mm(page["height_mm"])
        margin = Mm(page["margin_mm"])
        section.top_margin = section.bottom_margin = section.left_margin = section.right_margin = margin


def _section(doc, section: draft.Section, level: int) -> None:
    doc.add_heading(section.title, level=min(level, 9))
    for block in section.blocks:
        if isinstance(block, str):
            doc.add_paragraph(block)
        elif isinstance(block, draft.Bullets):
            for entry in block.items:
                doc.add_paragraph(entry, style="List Bullet")
        elif isinstance(block, draft.Table):
            _table(doc, block)
        elif isinstance(block, charts.Chart):
            doc.add_picture(io.BytesIO(charts.png(block)), width=Mm(150))
            doc.add_paragraph(block.alt)
        elif isinstance(block, draft.Quote):
            quote = doc.add_paragraph(f"“{block.text}”", style="Quote")
            quote.add_run().add_break(WD_BREAK.LINE)
            quote.add_run(block.source).italic = False
    for child in section.sections:
        _section(doc, child, level + 1)


def _table(doc, block: draft.Table) -> None:
    table = doc.add_table(rows=1, cols=len(block.header))
    table.style = TABLE_STYLE
    for cell, text in zip(table.rows[0].cells, block.header):
        cell.text = text
    for row in block.rows:
        for cell, text in zip(table.add_row().cells, row):
            cell.text = text


def write(report: dict, handle) -> None:
    """Write report.docx to a binary file handle."""
    document(report).save(handle)
