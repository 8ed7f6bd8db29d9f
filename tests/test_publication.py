"""A redacted report is one that can be published: no case reference, input file path, note,
reviewer's reason or section meant only for the inspectors, in any redacted view — report.json,
.md, .html, .docx, no trace.jsonl, ``qi report --redact``, ``qi runs show --redact`` (text and JSON),
``qi export --redact`` (.xlsx and .csv, from the store and from a report folder). Practice examples
are quoted only where the rule set allows it, without the case. The full report keeps everything.
The Word draft is laid out on the rule set's page: A4 with 25 mm margins unless it says otherwise.

``qi serve`` has no redacted view: it is the inspectors' own workspace, so it is not scanned here.
"""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path

import docx
import openpyxl
import pytest
from click.testing import CliRunner

import cli
from engine.base import render
from engine.load import source
from tests.conftest import ROOT, SAMPLE

#: The sample's case references, from its case files' names (NW-001 ... NW-014).
REFERENCES = sorted(path.stem for path in (SAMPLE / "cases").glob("*.yaml"))
CASE_REFERENCE = re.compile("|".join(re.escape(r) for r in REFERENCES))
#: A path to a file: a folder, a slash, and a file name with an extension.
FILE_PATH = re.compile(r"[\w.-]+[/\\][\w.-]+\.(?:yaml|yml|jsonl|json)\b")
REASON = "Confidential reviewer reasoning"
REVIEWER = "r.patel"  # a reviewer's account; the QA lead who signs off is q.lead
#: What the inspectors' internal sections say, in every view that has them.
INTERNAL = ("Answers to check", "answers-to-check", "Cases by finding", "Moderation list", "moderation list",
            "Consistency: engine and inspectors", "The engine would agree", "the engine would agree",
            "qi explain", 'href="#case-', "The reasoning behind the findings", "Second marking", "second marking",
            "Signed off", "signed off", REVIEWER, REASON)

DEFAULT_RULES = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"


def _rules(folder: Path, settings: str) -> Path:
    """The default rule set with ``settings`` added to its ``sample:`` settings."""
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    assert "\nsample:\n  min_group_size: 5\n" in text
    path = folder / "rules.yaml"
    path.write_text(text.replace("\nsample:\n", "\nsample:\n" + settings, 1), encoding="utf-8")
    return path


def _invoke(*args) -> str:
    result = CliRunner().invoke(cli.cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _notes() -> list[str]:
    """Every free-text note of the sample: on evidence and on judgements, in case, organisation and
    second-marking files."""
    found = []
    for path in sorted(SAMPLE.rglob("*.yaml")):
        data = source.load(path).data
        for section in ("evidence", "judgements"):
            for entry in (data.get(section) or {}).values():
                if isinstance(entry, dict) and (entry.get("note") or "").strip():
                    found.append(entry["note"])
    return found


def _docx_text(path: Path) -> str:
    """Every text of a Word document: paragraphs, tables (nested too), headers, footers, properties."""
    document = docx.Document(str(path))
    texts = [p.text for p in document.paragraphs]

    def tables(owner):
        for table in owner.tables:
            for row in table.rows:
                for cell in row.cells:
                    texts.extend(p.text for p in cell.paragraphs)
                    tables(cell)

    tables(document)
    for section in document.sections:
        for part in (section.header, section.footer):
            texts.extend(p.text for p in part.paragraphs)
    properties = document.core_properties
    texts += [properties.title or "", properties.subject or "", properties.author or "", properties.keywords or "",
              properties.comments or ""]
    return "\n".join(texts)


def _xlsx_text(path: Path) -> str:
    book = openpyxl.load_workbook(path, read_only=True)
    return "\n".join(str(value) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
                     for value in row if value is not None)


def _csv_text(paths: list[Path]) -> str:
    return "\n".join(",".join(row) for path in paths for row in csv.reader(path.open(encoding="utf-8-sig")))


def _views(folder: Path) -> dict[str, str]:
    """Every file of a report folder as text (report.docx read through python-docx)."""
    return {path.name: _docx_text(path) if path.suffix == ".docx" else path.read_text(encoding="utf-8")
            for path in sorted(folder.iterdir()) if path.is_file() and not path.name.startswith(".")}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The example sample run in full and redacted, reviewed and signed off in the store, and every
    redacted view of it: {view name: text}, with the folders and store."""
    root = tmp_path_factory.mktemp("publication")
    db = root / "qi.db"
    _invoke("run", SAMPLE, "--out", root / "full", "--db", db)
    (root / "password").write_text("a password for the test accounts\n")
    _invoke("users", "add", REVIEWER, "--role", "reviewer", "--password-file", root / "password", "--db", db)
    _invoke("users", "add", "q.lead", "--role", "qa_lead", "--password-file", root / "password", "--db", db)
    reviewer = ("--as", REVIEWER, "--password-file", root / "password")
    _invoke("review", "1", "--db", db, *reviewer, "--case", "NW-014", "--criterion", "3.3",
            "--decision", "override", "--finding", "sufficient", "--reason", REASON)
    _invoke("review", "1", "--db", db, *reviewer, "--case", "NW-007", "--criterion", "3.1",
            "--decision", "challenge", "--reason", REASON + " (2)")
    _invoke("review", "1", "--db", db, *reviewer, "--case", "NW-007", "--criterion", "3.1",
            "--decision", "agree")
    _invoke("review", "1", "--db", db, *reviewer, "--case", "NW-001", "--criterion", "3.2",
            "--decision", "agree")
    _invoke("runs", "signoff", "1", "--db", db, "--as", "q.lead", "--password-file", root / "password")
    # a redacted run into a folder holding a full run's reports: the full trace.jsonl must go
    _invoke("run", SAMPLE, "--out", root / "redacted", "--db", db)
    assert (root / "redacted" / "trace.jsonl").exists()
    printed = _invoke("run", SAMPLE, "--out", root / "redacted", "--db", db, "--redact")
    _invoke("report", "1", "--out", root / "from-store", "--db", db, "--redact")
    views = {f"run --redact: {name}": text for name, text in _views(root / "redacted").items()}
    views |= {f"report --redact: {name}": text for name, text in _views(root / "from-store").items()}
    views["runs show --redact"] = _invoke("runs", "show", "1", "--db", db, "--redact")
    views["runs show --redact --format json"] = _invoke("runs", "show", "1", "--db", db, "--redact",
                                                        "--format", "json")
    for name, run in (("store", "1"), ("folder", root / "full")):
        _invoke("export", run, "--to", root / f"{name}.xlsx", "--db", db, "--redact")
        views[f"export {name} --redact: xlsx"] = _xlsx_text(root / f"{name}.xlsx")
        _invoke("export", run, "--to", root / f"{name}.csv", "--db", db, "--redact")
        views[f"export {name} --redact: csv"] = _csv_text(sorted(root.glob(f"{name}*.csv")))
    return {"root": root, "db": db, "views": views, "printed": printed}


def test_a_redacted_run_writes_no_trace_and_removes_an_earlier_one(published):
    root = published["root"]
    assert sorted(p.name for p in (root / "redacted").iterdir()) == ["report.docx", "report.html", "report.json",
                                                                    "report.md"]
    assert not (root / "from-store" / "trace.jsonl").exists()
    report = json.loads((root / "redacted" / "report.json").read_text())
    assert report["redacted"] is True and report["traces"]["file"] is None and report["cases"] == []
    printed = published["printed"]
    assert "trace.jsonl" not in printed and "report.docx" in printed and not CASE_REFERENCE.search(printed)


def test_no_redacted_view_holds_a_case_reference_a_path_or_an_internal_section(published):
    views = published["views"]
    assert len(views) >= 14
    for name, text in views.items():
        assert text.strip(), name
        assert CASE_REFERENCE.findall(text) == [], (name, CASE_REFERENCE.findall(text)[:5])
        assert FILE_PATH.findall(text) == [], (name, FILE_PATH.findall(text)[:5])
        assert str(SAMPLE) not in text and str(published["root"]) not in text, name
        assert [phrase for phrase in INTERNAL if phrase in text] == [], name


def test_no_redacted_view_quotes_a_note_by_default(published):
    notes = [note for note in _notes() if len(note) > 12]
    assert len(notes) > 50
    for name, text in published["views"].items():
        plain = html.unescape(text.replace("\\", ""))  # as Markdown and HTML escape it
        assert [note for note in notes if note in plain] == [], name


def test_redacted_report_json_keeps_the_figures_but_no_case_or_internal_list(published):
    report = json.loads((published["root"] / "redacted" / "report.json").read_text())
    assert report["examples"] == {} and report["warnings"] == [] and "review" not in report
    assert all(set(entry) == {"role", "sha256"} for entry in report["inputs"])
    assert report["consistency"]["moderation"] == [] and report["consistency"]["second_marking"]["cases"] == []
    assert report["consistency"]["engine_inspector"]["overall"]["n"] == 12  # the agreement figures stay
    assert all("file" not in o and "judgements" not in o for o in report["organisations"])
    groups = report["aggregates"]["targets"]["3.1"]["groups"]
    assert groups["all"]["applicable"] == 14 and "cases" not in groups["all"]
    assert report["ruleset"]["file"] == "hmip-qi-adult-2.0.yaml"


def test_the_full_report_keeps_every_internal_section(published):
    root = published["root"]
    full = _views(root / "full")
    assert "trace.jsonl" in full and CASE_REFERENCE.search(full["trace.jsonl"])
    for phrase in ("## Cases by finding", "## Answers to check", "### Moderation list",
                   "cases/north-west-2016/cases/NW-002.yaml"):
        assert phrase in full["report.md"].replace("\\", ""), phrase
    assert 'href="#case-NW-014"' in full["report.html"] and 'id="reasoning"' in full["report.html"]
    for phrase in ("Answers to check", "Moderation list:", "NW-014, 3.3: engine"):
        assert phrase in full["report.docx"], phrase
    report = json.loads(full["report.json"])
    assert [c["case"] for c in report["cases"]] == REFERENCES and report["examples"]
    stored = _invoke("runs", "show", "1", "--db", published["db"])
    assert "NW-014 3.3" in stored and REASON in stored and REVIEWER in stored
    assert "the engine would agree" in stored  # the reviewers' view, not the draft
    again = root / "full-again"
    _invoke("report", "1", "--out", again, "--db", published["db"])
    assert "## Review" in (again / "report.md").read_text() and (again / "trace.jsonl").exists()


def test_practice_examples_are_quoted_only_where_the_rule_set_allows_and_without_the_case(tmp_path, sample_copy):
    db = tmp_path / "qi.db"
    _invoke("run", sample_copy, "--out", tmp_path / "full", "--db", db)
    examples = json.loads((tmp_path / "full" / "report.json").read_text())["examples"]
    first = examples["3.1"][0]
    # the quoted note names another case of the sample: that reference must not be published
    case_file = sample_copy / "cases" / f"{first['case']}.yaml"
    text = case_file.read_text(encoding="utf-8")
    assert text.count(first["note"]) == 1
    case_file.write_text(text.replace(first["note"], first["note"] + " As in NW-003 and NW-012's case."), encoding="utf-8")
    allowed = _rules(tmp_path, "  quote_practice_examples: true\n")
    _invoke("run", sample_copy, "--rules", allowed, "--out", tmp_path / "quoted", "--db", db, "--redact")
    report = json.loads((tmp_path / "quoted" / "report.json").read_text())
    quoted = report["examples"]["3.1"][0]
    assert quoted == {"provider": first["provider"], "criterion": "3.1", "finding": first["finding"],
                      "item": first["item"], "answer": first["answer"],
                      "note": first["note"] + " As in [redacted] and [redacted]'s case."}
    assert sum(len(found) for found in report["examples"].values()) == sum(len(found) for found in examples.values())
    for name, view in _views(tmp_path / "quoted").items():
        assert CASE_REFERENCE.findall(view) == [], name
        assert FILE_PATH.findall(view) == [], name
    markdown = (tmp_path / "quoted" / "report.md").read_text()
    assert f"> — {first['provider']}, {first['item']} answered" in markdown
    assert render.markdown_text(quoted["note"]) in markdown
    assert quoted["note"] in html.unescape((tmp_path / "quoted" / "report.html").read_text())
    assert quoted["note"] in _docx_text(tmp_path / "quoted" / "report.docx")
    # without the setting, the same run quotes nothing
    _invoke("run", sample_copy, "--out", tmp_path / "unquoted", "--db", db, "--redact")
    assert json.loads((tmp_path / "unquoted" / "report.json").read_text())["examples"] == {}
    assert first["note"] not in (tmp_path / "unquoted" / "report.md").read_text().replace("\\", "")


def _page(path: Path) -> tuple:
    section = docx.Document(str(path)).sections[0]
    return (round(section.page_width.mm, 1), round(section.page_height.mm, 1),
            *(round(getattr(section, f"{side}_margin").mm, 1) for side in ("top", "bottom", "left", "right")),
            section.orientation)


def test_the_word_draft_is_on_a4_with_25_mm_margins_by_default(published):
    from docx.enum.section import WD_ORIENT

    for folder in ("full", "redacted", "from-store"):
        assert _page(published["root"] / folder / "report.docx") == (210.0, 297.0, 25.0, 25.0, 25.0, 25.0,
                                                                    WD_ORIENT.PORTRAIT), folder
    report = json.loads((published["root"] / "full" / "report.json").read_text())
    assert report["publication"] == {"quote_practice_examples": False,
                                     "page": {"width_mm": 210.0, "height_mm": 297.0, "margin_mm": 25.0}}


def test_the_rule_set_sets_the_page(tmp_path):
    from docx.enum.section import WD_ORIENT

    rules = _rules(tmp_path, "  page: {width_mm: 297, height_mm: 210, margin_mm: 20}\n")
    _invoke("run", SAMPLE, "--rules", rules, "--out", tmp_path / "out", "--db", tmp_path / "qi.db")
    assert _page(tmp_path / "out" / "report.docx") == (297.0, 210.0, 20.0, 20.0, 20.0, 20.0, WD_ORIENT.LANDSCAPE)
    _invoke("report", "1", "--out", tmp_path / "again", "--db", tmp_path / "qi.db", "--redact")
    assert _page(tmp_path / "again" / "report.docx")[:2] == (297.0, 210.0)  # recorded in the run


@pytest.mark.parametrize(("settings", "expected"), [
    ("  page: {width_mm: 210, height_mm: 297, margin_mm: 100}\n",
     r"page_margins_too_wide: margins of 100 mm leave less than 20 mm for text on a 210 x 297 mm page \(.+\)"),
    ("  page: {width_mm: 20}\n", r"invalid_value: input should be greater than or equal to 50"),
    ("  page: {size: A4}\n", r"unknown_field: unknown field 'size' \(fields here: width_mm, height_mm, margin_mm\)"),
    ('  quote_practice_examples: "yes"\n', r"wrong_type: expected true or false, found the text 'yes' \(.+\)"),
])
def test_publication_settings_are_checked_with_the_rule_set(qi, tmp_path, settings, expected):
    rules = _rules(tmp_path, settings)
    line = rules.read_text(encoding="utf-8").splitlines().index(settings.rstrip("\n")) + 1
    result = qi("validate", rules)
    assert result.exit_code == 1
    assert re.search(rf"^{re.escape(str(rules))}:{line}:\d+: {expected}$", result.output, re.MULTILINE), result.output


def test_a_failed_publish_puts_the_earlier_trace_back(published, tmp_path, monkeypatch):
    """Publishing a redacted set moves the earlier trace.jsonl aside as it renames the reports in: if
    that fails, every earlier report, trace.jsonl included, comes back as it was."""
    import os
    import shutil

    from engine.report import report as reports

    out = tmp_path / "out"
    shutil.copytree(published["root"] / "full", out)
    before = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    staged = reports.Staged(out, {"x": 1}, created=False, names=reports.REDACTED_FILES)
    for name in reports.REDACTED_FILES:
        staged.add(name, lambda handle: handle.write("new\n"))
    real_replace = os.replace

    def failing_replace(source, target):
        if Path(source) == out / "trace.jsonl":
            raise OSError(5, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="Input/output"):
        staged.publish()
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in sorted(out.iterdir())} == before


def test_a_key_redaction_does_not_know_is_left_out(published):
    """Fail closed: a report.json key not vetted for publication (say, a later version's figures
    before review) is not carried into the redacted report."""
    from engine.report import redact

    full = json.loads((published["root"] / "full" / "report.json").read_text())
    full["unvetted"] = {"cases": REFERENCES}
    redacted = redact.report(full, ["gender", "ethnicity"])
    assert "unvetted" not in redacted and not CASE_REFERENCE.search(json.dumps(redacted))
    assert set(redacted) <= set(redact.PUBLISHED)


def test_with_two_jobs_the_word_draft_is_written_beside_the_others(qi, tmp_path):
    """qi run --jobs 2 writes report.docx in a forked worker: the same document as with one job
    (its text, paragraph by paragraph, and its tables), and the other reports byte for byte."""
    for jobs in ("1", "2"):
        result = qi("run", SAMPLE, "--out", tmp_path / jobs, "--db", tmp_path / f"{jobs}.db", "--jobs", jobs)
        assert result.exit_code == 0, result.output
    one, two = (docx.Document(str(tmp_path / jobs / "report.docx")) for jobs in ("1", "2"))
    run_ids = [json.loads((tmp_path / jobs / "report.json").read_text())["run"]["id"] for jobs in ("1", "2")]
    texts = [[p.text.replace(run_id, "RUN") for p in document.paragraphs]
             for document, run_id in zip((one, two), run_ids)]
    assert texts[0] == texts[1] and len(texts[0]) > 20 and sum("RUN" in t for t in texts[0]) == 1
    assert [[c.text for c in row.cells] for t in one.tables for row in t.rows] == \
        [[c.text for c in row.cells] for t in two.tables for row in t.rows]
    assert (tmp_path / "1" / "trace.jsonl").read_bytes() == (tmp_path / "2" / "trace.jsonl").read_bytes()
    assert not [p for p in (tmp_path / "2").iterdir() if p.name.startswith(".")]


def test_a_word_draft_failing_in_its_worker_leaves_nothing_written_or_recorded(qi, tmp_path, monkeypatch):
    """The worker's failure is the run's: no report in --out, no temporary file, no run recorded."""
    from engine.report import word

    def failing(report, handle):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(word, "write", failing)
    out = tmp_path / "out"
    result = qi("run", SAMPLE, "--out", out, "--db", tmp_path / "qi.db", "--jobs", "2")
    assert result.exit_code == 1 and "No space left on device" in result.output and "Traceback" not in result.output
    assert not out.exists() or list(out.iterdir()) == []
    listed = qi("runs", "list", "--db", tmp_path / "qi.db", "--format", "json")
    assert listed.exit_code != 0 or json.loads(listed.stdout) == []


def test_a_staged_report_is_written_through_its_own_descriptor_not_reopened_by_name(tmp_path, monkeypatch):
    """Someone able to write in --out who swaps a staged file for a link to another file between
    its creation and its writing does not get that file overwritten: qi writes through the
    descriptor it created the file with."""
    import os

    from engine.report import report as reports

    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    real_fchmod = os.fchmod

    def swapping(descriptor, mode):
        real_fchmod(descriptor, mode)
        for staged in out.glob(".report.md.*.tmp"):
            staged.unlink()
            staged.symlink_to(victim)

    monkeypatch.setattr(os, "fchmod", swapping)
    staged = reports.Staged(out, {"x": 1}, created=False)
    staged.add("report.md", lambda handle: handle.write("qi's report\n"))
    monkeypatch.undo()
    assert victim.read_text() == "untouched\n"
