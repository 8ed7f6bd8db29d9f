"""Spreadsheets in and out: the case-assessment workbook round trip, run exports, case templates,
and formula injection neutralised everywhere."""

from __future__ import annotations

import csv
import json
import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.base import canonical
from engine.check import framework as frameworks
from engine.check import sample as samples
from engine.run import pipeline
from engine.tools import generate, spreadsheet, workbook
from tests.conftest import SAMPLE

HYPERLINK = '=HYPERLINK("http://example.invalid/x","click me")'


def _judgements(report: dict) -> bytes:
    """Everything the engine judged in a run, without traces, file names or hashes."""
    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("trace", "file", "sha256")}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    keep = {"cases": report["cases"], "organisations": report["organisations"],
            "aggregates": report["aggregates"], "sample_judgement": report["sample_judgement"]}
    return canonical.canonical(strip(keep))


def _run(qi, sample: Path, out: Path, db: Path) -> dict:
    result = qi("run", sample, "--out", out, "--db", db)
    assert result.exit_code == 0, result.stderr
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_export_then_import_gives_byte_identical_judgements(qi, tmp_path):
    book = tmp_path / "nw.xlsx"
    assert qi("cases", "export", SAMPLE, "--to", book).exit_code == 0
    imported = qi("cases", "import", book, "--out", tmp_path / "back")
    assert imported.exit_code == 0, imported.stderr
    assert "14 case files and 2 organisation files" in imported.stdout
    before = _run(qi, SAMPLE, tmp_path / "r1", tmp_path / "db")
    after = _run(qi, tmp_path / "back", tmp_path / "r2", tmp_path / "db")
    assert _judgements(before) == _judgements(after)
    assert before["cases"] and after["cases"][0]["file"].endswith("back/cases/NW-001.yaml")
    # the inspector's own judgements travel too (columns "3.1 judgement", "3.1 judgement note")
    back = (tmp_path / "back" / "cases" / "NW-001.yaml").read_text(encoding="utf-8")
    assert '"judgements":\n  "3.1":\n    "finding": "insufficient"\n    "note": "Domestic abuse history not analysed."' in back


def test_csv_round_trip_gives_the_same_case_files_as_xlsx(qi, tmp_path):
    for suffix in ("xlsx", "csv"):
        assert qi("cases", "export", SAMPLE, "--to", tmp_path / f"nw.{suffix}").exit_code == 0
        assert qi("cases", "import", tmp_path / f"nw.{suffix}", "--out", tmp_path / suffix).exit_code == 0
    for path in sorted((tmp_path / "xlsx" / "cases").iterdir()):
        assert path.read_bytes() == (tmp_path / "csv" / "cases" / path.name).read_bytes()


def test_workbook_has_drop_downs_comments_instructions_and_every_item(tmp_path):
    path = workbook.export(SAMPLE, tmp_path / "nw.xlsx")
    book = openpyxl.load_workbook(path)
    fw = frameworks.load(frameworks.default_path())
    assert book.sheetnames[:2] == ["Instructions", "Cases"]
    assert "qi cases import" in "\n".join(str(c.value) for c in book["Instructions"]["A"] if c.value)
    sheet = book["Cases"]
    headers = [c.value for c in sheet[1]]
    for item_id in fw.item_ids("case"):
        assert {f"{item_id} answer", f"{item_id} note", f"{item_id} sources"} <= set(headers)
    assert not any(h.startswith("6.") for h in headers)  # organisation items are on their own sheet
    column = headers.index("3.1.a answer") + 1
    comment = sheet.cell(1, column).comment.text
    assert fw.find("3.1.a").text in comment and "not_applicable" in comment
    letter = openpyxl.utils.get_column_letter(column)
    answer_checks = [v for v in sheet.data_validations.dataValidation if f"{letter}2" in str(v.sqref)]
    assert answer_checks and answer_checks[0].type == "list"
    listed = answer_checks[0].formula1.split("!")[1].replace("$", "")
    values = [c.value for row in book["Lists"][listed] for c in row]
    assert values == fw.vocabulary.ids("answers")
    judgement = headers.index("3.1 judgement") + 1
    assert headers[judgement - 2] == "3.1.i sources" and headers[judgement] == "3.1 judgement note"
    assert any(f"{openpyxl.utils.get_column_letter(judgement)}2" in str(v.sqref)
               for v in sheet.data_validations.dataValidation)
    assert sheet.max_row == 15  # one header and 14 cases
    assert (path.stat().st_mode & 0o777) == 0o600


def _workbook_with(tmp_path: Path, edits: dict[str, object], sheet: str = "Cases") -> Path:
    """The example sample's workbook with cells changed: {"C3": value}."""
    path = workbook.export(SAMPLE, tmp_path / "edit.xlsx")
    book = openpyxl.load_workbook(path)
    for cell, value in edits.items():
        book[sheet][cell].value = value
    book.save(path)
    return path


def test_import_reports_every_problem_at_its_cell_and_writes_nothing(qi, tmp_path):
    book = openpyxl.load_workbook(workbook.export(SAMPLE, tmp_path / "x.xlsx"))
    headers = {c.value: c.column_letter for c in book["Cases"][1]}
    path = _workbook_with(tmp_path, {
        f"{headers['provider']}3": "NSP",
        f"{headers['3.1.a answer']}5": "N/A",
        f"{headers['sentence_start']}7": "last tuesday",
        f"{headers['risk_of_serious_harm']}8": None,
        f"{headers['2.1.a answer']}9": None,  # its note is kept: a note without an answer
        f"{headers['2.1.a note']}9": "Seen weekly.",
        f"{headers['1.1.a answer']}10": "=IF(1,\"yes\",\"no\")",
    })
    result = qi("cases", "import", path, "--out", tmp_path / "out")
    assert result.exit_code == 1
    err = result.stderr
    assert f"edit.xlsx:Cases!{headers['provider']}3: unknown_value: 'NSP' is not a known provider (did you mean 'NPS'?" in err
    assert f"Cases!{headers['3.1.a answer']}5: invalid_value:" in err and "not_applicable" in err
    assert f"Cases!{headers['sentence_start']}7: wrong_type:" in err
    assert f"Cases!{headers['risk_of_serious_harm']}8: missing_value:" in err
    assert f"Cases!{headers['2.1.a answer']}9: missing_answer:" in err
    assert f"Cases!{headers['1.1.a answer']}10: formula_cell:" in err
    assert not (tmp_path / "out").exists()


def test_import_reports_bad_headers_and_unreadable_files(qi, tmp_path):
    book = openpyxl.load_workbook(workbook.export(SAMPLE, tmp_path / "x.xlsx"))
    headers = {c.value: c.column_letter for c in book["Cases"][1]}
    path = _workbook_with(tmp_path, {f"{headers['flags']}1": "flgs", f"{headers['case']}1": None,
                                     f"{headers['6.1.a answer'] if '6.1.a answer' in headers else 'ZZ'}1": None})
    result = qi("cases", "import", path, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert f"Cases!{headers['flags']}1: unknown_column: the column 'flgs' is not one qi reads (did you mean 'flags'?" \
        in result.stderr
    assert "Cases!A1: missing_column: the sheet has no 'case' column" in result.stderr
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"not a zip at all")
    result = qi("cases", "import", junk, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "junk.xlsx:1:1: unreadable_workbook:" in result.stderr
    assert "Traceback" not in result.stderr


def test_import_refuses_a_folder_that_is_not_empty(qi, tmp_path):
    path = workbook.export(SAMPLE, tmp_path / "nw.xlsx")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    result = qi("cases", "import", path, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "output_not_empty" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["keep.txt"]


# --- hostile workbooks: a DTD (external entities, a billion laughs), a part that will not parse, a zip bomb ---

EXTERNAL_ENTITY = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>', b"&e;"
BILLION_LAUGHS = (b'<!DOCTYPE x [<!ENTITY l0 "lol">'
                  + b"".join(b'<!ENTITY l%d "%s">' % (n, b"&l%d;" % (n - 1) * 10) for n in range(1, 10)) + b"]>",
                  b"&l9;")
SHARED_STRINGS = "xl/sharedStrings.xml"
SHARED_STRINGS_TYPE = (b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                       b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>')


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The example sample's workbook, exported once for the tests that break it."""
    return workbook.export(SAMPLE, tmp_path_factory.mktemp("book") / "nw.xlsx")


def _rewritten(book: Path, target: Path, member: str, change) -> Path:
    """A copy of ``book`` with one part's bytes passed through ``change`` (a missing shared
    strings part is added first, and listed in [Content_Types].xml, so openpyxl reads it)."""
    with zipfile.ZipFile(book) as archive:
        parts = {info.filename: archive.read(info) for info in archive.infolist()}
    if member == SHARED_STRINGS and member not in parts:
        parts[member] = (b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
                         b'uniqueCount="1"><si><t>x</t></si></sst>')
        parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(b"</Types>", SHARED_STRINGS_TYPE)
    parts[member] = change(parts[member])
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return target


def _with_dtd(dtd: bytes, reference: bytes):
    """Declare ``dtd`` before the root element and use its entity in the first text cell (a header,
    which a diagnostic would quote), or as the root's first text."""
    def change(data: bytes) -> bytes:
        at = data.find(b"<t>") + len(b"<t>") if b"<t>" in data else re.search(rb"<[^?!][^>]*>", data).end()
        return dtd + data[:at] + reference + data[at:]
    return change


def _refused(result, name: str, code: str, out: Path) -> None:
    """Exit 1 with one coded diagnostic for the whole file, no traceback, nothing written, and
    nothing of /etc/passwd anywhere."""
    assert result.exit_code == 1, result.stderr
    assert f"{name}:1:1: {code}:" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert not out.exists()
    passwd = Path("/etc/passwd").read_text(encoding="utf-8", errors="replace") if Path("/etc/passwd").exists() else ""
    for line in [line for line in passwd.splitlines() if line.strip()][:5] + ["root:x:0"]:
        assert line not in result.stdout and line not in result.stderr


@pytest.mark.parametrize("member", ["xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml", SHARED_STRINGS,
                                    "xl/workbook.xml", "xl/styles.xml", "[Content_Types].xml",
                                    "xl/_rels/workbook.xml.rels"])
@pytest.mark.parametrize("dtd", [EXTERNAL_ENTITY, BILLION_LAUGHS], ids=["external-entity", "billion-laughs"])
def test_a_workbook_part_with_a_dtd_is_refused_unread(qi, exported, tmp_path, member, dtd):
    """Every part is checked, the Instructions sheet (sheet1, never read) and styles included."""
    book = _rewritten(exported, tmp_path / "hostile.xlsx", member, _with_dtd(*dtd))
    result = qi("cases", "import", book, "--out", tmp_path / "out")
    _refused(result, "hostile.xlsx", "unsafe_workbook", tmp_path / "out")
    assert f"the part {member!r} declares a DTD" in result.stderr


@pytest.mark.parametrize("member", ["xl/worksheets/sheet2.xml", SHARED_STRINGS, "xl/workbook.xml"])
def test_openpyxl_refuses_entities_itself_when_the_check_is_skipped(qi, exported, tmp_path, monkeypatch, member):
    """The second guard: openpyxl parses sheets and shared strings with defusedxml (when installed),
    and what it raises, opening the workbook or reading rows, is a diagnostic; lxml (workbook.xml)
    never resolves entities, so it may read the workbook, but without the file."""
    monkeypatch.setattr(workbook, "_check_parts", lambda path, shown: None)
    book = _rewritten(exported, tmp_path / "hostile.xlsx", member, _with_dtd(*EXTERNAL_ENTITY))
    result = qi("cases", "import", book, "--out", tmp_path / "out")
    if member == "xl/workbook.xml" and openpyxl.LXML and result.exit_code == 0:
        written = "".join(path.read_text(encoding="utf-8") for path in (tmp_path / "out").rglob("*.yaml"))
        assert "root:x:0" not in written and "root:x:0" not in result.stdout + result.stderr
        return
    _refused(result, "hostile.xlsx", "unsafe_workbook" if openpyxl.DEFUSEDXML else "unreadable_workbook",
             tmp_path / "out")


def test_openpyxl_parses_with_defusedxml():
    pytest.importorskip("defusedxml")
    assert openpyxl.DEFUSEDXML


def test_a_sheet_that_breaks_while_its_rows_are_read_is_a_diagnostic(qi, exported, tmp_path):
    """Read-only sheets are parsed row by row: an undefined entity in the last row fails there."""
    def change(data: bytes) -> bytes:
        at = data.rindex(b"<t>") + len(b"<t>")
        return data[:at] + b"&undefined;" + data[at:]
    book = _rewritten(exported, tmp_path / "broken.xlsx", "xl/worksheets/sheet2.xml", change)
    result = qi("cases", "import", book, "--out", tmp_path / "out")
    _refused(result, "broken.xlsx", "unreadable_workbook", tmp_path / "out")


def test_a_zip_bomb_is_refused_from_the_zip_directory(qi, exported, tmp_path):
    """A part whose entry in the zip's directory says it uncompresses to 4 GiB is refused unread."""
    data = bytearray(exported.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    at = int.from_bytes(data[end + 16:end + 20], "little")
    while data[at:at + 4] == b"PK\x01\x02":  # an entry: uncompressed size at 24, name length at 28, name at 46
        lengths = [int.from_bytes(data[at + n:at + n + 2], "little") for n in (28, 30, 32)]
        if data[at + 46:at + 46 + lengths[0]] == b"xl/worksheets/sheet2.xml":
            data[at + 24:at + 28] = (0xFFFF_FFFE).to_bytes(4, "little")
        at += 46 + sum(lengths)
    bomb = tmp_path / "bomb.xlsx"
    bomb.write_bytes(bytes(data))
    with zipfile.ZipFile(bomb) as archive:
        assert archive.getinfo("xl/worksheets/sheet2.xml").file_size == 0xFFFF_FFFE
    result = qi("cases", "import", bomb, "--out", tmp_path / "out")
    _refused(result, "bomb.xlsx", "unreadable_workbook", tmp_path / "out")
    assert "uncompresses to more than 1024 MiB" in result.stderr


def test_a_workbook_of_too_many_parts_is_refused(qi, exported, tmp_path, monkeypatch):
    monkeypatch.setattr(workbook, "MAX_WORKBOOK_PARTS", 5)
    result = qi("cases", "import", exported, "--out", tmp_path / "out")
    _refused(result, "nw.xlsx", "unreadable_workbook", tmp_path / "out")
    assert "parts, more than the 5 qi reads" in result.stderr


def _note_sample(tmp_path: Path, note: str, title: str | None = None) -> Path:
    copy = tmp_path / "sample"
    shutil.copytree(SAMPLE, copy)
    case = copy / "cases" / "NW-014.yaml"
    text = case.read_text(encoding="utf-8")
    case.write_text(text.replace('note: "One further shop theft in month 3; nothing since."',
                                 f"note: {json.dumps(note)}"), encoding="utf-8")
    if title is not None:
        manifest = copy / "sample.yaml"
        manifest.write_text(manifest.read_text(encoding="utf-8").replace(
            'title: "Quality & Impact inspection: Northwold (fictional area)"', f"title: {json.dumps(title)}"),
            encoding="utf-8")
    return copy


def _formulas(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return [name for name in archive.namelist() if name.endswith(".xml") and b"<f>" in archive.read(name)]


def test_a_formula_in_a_note_stays_text_in_xlsx_and_csv_and_round_trips(qi, tmp_path):
    sample = _note_sample(tmp_path, HYPERLINK)
    xlsx, csv_file = tmp_path / "c.xlsx", tmp_path / "c.csv"
    assert qi("cases", "export", sample, "--to", xlsx).exit_code == 0
    assert qi("cases", "export", sample, "--to", csv_file).exit_code == 0
    assert _formulas(xlsx) == []
    sheet = openpyxl.load_workbook(xlsx)["Cases"]
    cell = next(c for row in sheet.iter_rows() for c in row if c.value == HYPERLINK)
    assert cell.data_type == "s" and cell.quotePrefix
    rows = list(csv.reader(csv_file.open(encoding="utf-8-sig")))
    assert "'" + HYPERLINK in [v for row in rows for v in row]
    assert not any(v.startswith("=") for row in rows for v in row)
    for source_file, out in ((xlsx, "x"), (csv_file, "c")):
        assert qi("cases", "import", source_file, "--out", tmp_path / out).exit_code == 0
        assert json.dumps(HYPERLINK) in (tmp_path / out / "cases" / "NW-014.yaml").read_text(encoding="utf-8")


def test_run_export_neutralises_formulas_in_xlsx_and_csv(qi, tmp_path):
    sample = _note_sample(tmp_path, HYPERLINK, title=HYPERLINK)
    _run(qi, sample, tmp_path / "rep", tmp_path / "db")
    for target in ("run.xlsx", "run.csv"):
        result = qi("export", tmp_path / "rep", "--to", tmp_path / target)
        assert result.exit_code == 0, result.stderr
    assert _formulas(tmp_path / "run.xlsx") == []
    run_sheet = openpyxl.load_workbook(tmp_path / "run.xlsx")["Run"]
    assert [c.value for c in run_sheet["B"]].count(HYPERLINK) == 1
    rows = list(csv.reader((tmp_path / "run.run.csv").open(encoding="utf-8-sig")))
    assert ["sample.title", "'" + HYPERLINK] in rows


def test_run_export_has_findings_aggregates_and_gaps(qi, tmp_path):
    report = _run(qi, SAMPLE, tmp_path / "rep", tmp_path / "db")
    result = qi("export", report["run"]["id"], "--db", tmp_path / "db", "--to", tmp_path / "run.xlsx")
    assert result.exit_code == 0, result.stderr
    book = openpyxl.load_workbook(tmp_path / "run.xlsx")
    assert book.sheetnames == ["Findings", "Aggregates", "Gaps", "Ratings", "Run"]
    findings = list(book["Findings"].values)
    header = findings[0]
    row = next(r for r in findings if r[1] == "NW-014" and r[3] == "3.1")
    assert row[header.index("engine_finding")] == report["cases"][13]["findings"]["3.1"]["value"] == "insufficient"
    assert len(findings) - 1 == sum(len(c["findings"]) for c in report["cases"]) + sum(
        len(o["findings"]) for o in report["organisations"])
    aggregates = list(book["Aggregates"].values)
    all_31 = next(r for r in aggregates if r[0] == "3.1" and r[3] == "all")
    assert all_31[aggregates[0].index("percent")] == report["aggregates"]["targets"]["3.1"]["groups"]["all"]["percent"]
    gaps = list(book["Gaps"].values)
    provider = next(r for r in gaps if r[0] == "3.1" and r[2] == "provider")
    gap = report["aggregates"]["targets"]["3.1"]["gaps"]["provider"]
    assert provider[gaps[0].index("flagged")] is gap["flagged"]
    # the two groups side by side in their own columns, and the test's figures (no Python reprs)
    columns = gaps[0]
    assert provider[columns.index("higher.label")] == gap["groups"][0]["label"]
    assert provider[columns.index("lower.sufficient")] == gap["groups"][1]["sufficient"]
    assert provider[columns.index("test.p_value")] == gap["test"]["p_value"]
    assert "groups" not in columns and "test" not in columns
    assert not any("{" in str(cell) for row in gaps for cell in row)
    pair = next(r for r in gaps if r[0] == "3.1" and r[2] == "provider pair")
    assert pair[columns.index("points")] == report["aggregates"]["targets"]["3.1"]["comparisons"][0]["points"]


def test_case_new_prints_a_template_that_validates_once_filled_in(qi, tmp_path):
    result = qi("case", "new", "NW-099", "--provider", "NPS", "--set", "sentence.type=licence")
    assert result.exit_code == 0, result.stderr
    assert '\n  type: "licence"\n' in result.stdout and "\nmappa: null " in result.stdout
    fw = frameworks.load(frameworks.default_path())
    for item in fw.items():
        in_case = item.id in fw.item_ids("case")
        assert (f"  {item.id}: {{answer: null" in result.stdout) is in_case
    assert "yes | partly | no | not_applicable" in result.stdout
    blank = tmp_path / "blank" / "NW-099.yaml"
    blank.parent.mkdir()
    blank.write_text(result.stdout, encoding="utf-8")
    assert qi("validate", blank).exit_code == 1  # not valid until filled in
    filled = (result.stdout.replace("answer: null", 'answer: "yes"').replace("sources: []", "sources: [oasys]")
              .replace("start: null", "start: 2016-01-04").replace("risk_of_serious_harm: null", "risk_of_serious_harm: low"))
    case = tmp_path / "NW-099.yaml"
    case.write_text(filled, encoding="utf-8")
    checked = qi("validate", case)
    assert checked.exit_code == 0 and "0 errors, 0 warnings" in checked.stderr, checked.stderr
    assert qi("evaluate", case).exit_code == 0


def test_case_new_rejects_unknown_provider_field_value_and_reference(qi):
    assert "did you mean 'NPS'" in qi("case", "new", "X-1", "--provider", "NSP", "--set", "sentence.type=licence").stderr
    wrong_value = qi("case", "new", "X-1", "--provider", "NPS", "--set", "sentence.type=licnce")
    assert wrong_value.exit_code == 2 and "did you mean 'licence'" in wrong_value.stderr
    wrong_field = qi("case", "new", "X-1", "--provider", "NPS", "--set", "sentence.typ=licence")
    assert wrong_field.exit_code == 2 and "did you mean 'sentence.type'" in wrong_field.stderr
    # a list or a mapping is not set with one value; a pair needs its =
    assert qi("case", "new", "X-1", "--provider", "NPS", "--set", "flags=vulnerable").exit_code == 2
    assert qi("case", "new", "X-1", "--provider", "NPS", "--set", "mappa=1").exit_code == 2
    assert qi("case", "new", "X-1", "--provider", "NPS", "--set", "sentence.type").exit_code == 2
    assert qi("case", "new", "../x", "--provider", "NPS", "--set", "sentence.type=licence").exit_code == 2


def test_case_new_fills_in_a_numbered_value_and_the_mapping_it_belongs_to(qi, tmp_path):
    result = qi("case", "new", "X-1", "--provider", "NPS", "--set", "mappa.level=2")
    assert result.exit_code == 0, result.stderr
    assert "\nmappa:\n  category: null" in result.stdout and "\n  level: 2\n" in result.stdout
    assert qi("case", "new", "X-1", "--provider", "NPS", "--set", "mappa.level=7").exit_code == 2


# --- property: generated samples survive the round trip ----------------------------------------

_PROFILE = generate.load_profile(generate.default_profile())
_COMPILED = None


def _compiled():
    global _COMPILED
    if _COMPILED is None:
        _COMPILED = pipeline.compiled_rules(pipeline.rules_path(framework=("hmip-qi-adult", "2.0")))
    return _COMPILED


def _results(sample_dir: Path) -> bytes:
    loaded = samples.load(sample_dir)
    results = []
    for handle in loaded.cases:
        case = handle.load()
        result = pipeline.case_result(_compiled(), case)
        results.append({"case": result["case"], "model": case.model.model_dump(mode="json"),
                        "findings": {c: (f["value"], f["rules"]) for c, f in result["findings"].items()},
                        "enablers": [e["id"] for e in result["enablers"]],
                        "barriers": [b["id"] for b in result["barriers"]]})
    organisations = [o.model.model_dump(mode="json") for o in loaded.organisations]
    for entry in [e for r in results for e in r["model"]["evidence"].values()]:
        if not (entry["note"] or "").strip():
            entry["note"] = None  # an empty note is no note: a spreadsheet cell cannot tell them apart
    return json.dumps({"cases": results, "organisations": organisations}, sort_keys=True).encode()


_notes = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Co", "Zl", "Zp")) | st.sampled_from("\n\t"),
                 max_size=40) | st.sampled_from(
    [HYPERLINK, "+1", "-", "@here", "'quoted", "''=x", " padded ", "a, b; c"])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), count=st.integers(1, 4), note=_notes, as_csv=st.booleans())
def test_generated_samples_round_trip_with_identical_judgements(tmp_path_factory, seed, count, note, as_csv):
    folder = tmp_path_factory.mktemp("gen")
    profile, fw = _PROFILE
    generate.generate(profile, fw, count, seed, folder / "sample")
    first = sorted((folder / "sample" / "cases").iterdir())[0]
    text = first.read_text(encoding="utf-8")
    first.write_text(re.sub(r'"note": .*', lambda _: f'"note": {json.dumps(note, ensure_ascii=False)}', text, count=1),
                     encoding="utf-8")
    book = workbook.export(folder / "sample", folder / ("s.csv" if as_csv else "s.xlsx"))
    workbook.import_workbook(book, folder / "back", fw)
    if as_csv:  # a CSV carries the case rows alone
        shutil.copy(folder / "sample" / "sample.yaml", folder / "back" / "sample.yaml")
        shutil.copytree(folder / "sample" / "organisation", folder / "back" / "organisation")
    assert _results(folder / "sample") == _results(folder / "back")


def test_csv_escaping_is_exact():
    for text in [HYPERLINK, "'", "''", "'=", "+x", "plain", "-1", "@", "\tx", "'hello"]:
        assert spreadsheet.csv_text(spreadsheet.csv_value(text)) == text
        assert not str(spreadsheet.csv_value(text)).startswith(spreadsheet.FORMULA_STARTS)


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=x", "\r=x"])
def test_xlsx_cells_never_hold_formulas(tmp_path, value):
    book = openpyxl.Workbook()
    spreadsheet.set_cell(book.active["A1"], value)
    path = spreadsheet.save_workbook(book, tmp_path / "f.xlsx")
    assert _formulas(path) == []
    # without lxml, openpyxl writes a raw carriage return, which XML reads back as a line feed
    assert openpyxl.load_workbook(path).active["A1"].value in (value, value.replace("\r", "\n"))


def test_run_export_carries_inspector_reviewer_and_interval_fields_when_the_report_has_them(qi, tmp_path):
    """Columns follow report.json: fields a run adds (an inspector's finding and note, a reviewer's
    decision, an interval) become columns, and a formula in such a note stays text in xlsx and csv."""
    from engine.tools import export

    report = _run(qi, SAMPLE, tmp_path / "rep", tmp_path / "db")
    finding = report["cases"][13]["findings"]["3.1"]
    finding["inspector"] = {"finding": "sufficient", "note": HYPERLINK}
    finding["reviewer"] = {"decision": "challenge"}
    report["aggregates"]["targets"]["3.1"]["groups"]["all"]["interval"] = {"low": 38.8, "high": 83.7}
    tables = export.tables(report)
    header, *rows = tables["findings"]
    row = next(r for r in rows if r[1] == "NW-014" and r[3] == "3.1")
    assert row[header.index("inspector.finding")] == "sufficient" and row[header.index("inspector.note")] == HYPERLINK
    assert row[header.index("reviewer.decision")] == "challenge"
    aggregates = tables["aggregates"]
    assert {"interval.low", "interval.high"} <= set(aggregates[0])
    written = export.write(report, tmp_path / "t.xlsx") + export.write(report, tmp_path / "t.csv")
    assert _formulas(written[0]) == []
    rows = list(csv.reader(written[1].open(encoding="utf-8-sig")))
    assert "'" + HYPERLINK in [v for r in rows for v in r]


def test_causes_found_in_fieldwork_travel_in_the_organisations_sheet(qi, tmp_path):
    book = workbook.export(SAMPLE, tmp_path / "nw.xlsx")
    sheet = openpyxl.load_workbook(book)["Organisations"]
    headers = [c.value for c in sheet[1]]
    fw = frameworks.load(frameworks.default_path())
    assert {f"cause {c} {part}" for c in fw.vocabulary.ids("causes") for part in ("note", "sources")} <= set(headers)
    crc = next(row for row in sheet.iter_rows(min_row=2, values_only=True) if row[0] == "CRC")
    assert crc[headers.index("cause caseloads sources")] == "staff_survey, performance_data, manager_interview"
    assert qi("cases", "import", book, "--out", tmp_path / "back").exit_code == 0
    original = samples.load(SAMPLE).organisations
    back = samples.load(tmp_path / "back").organisations
    assert [o.model.causes for o in back] == [o.model.causes for o in original]
    assert any(o.model.causes for o in back)


def test_a_cause_without_a_note_or_with_an_unknown_source_is_reported_at_its_cell(qi, tmp_path):
    book = openpyxl.load_workbook(workbook.export(SAMPLE, tmp_path / "x.xlsx"))
    headers = {c.value: c.column_letter for c in book["Organisations"][1]}
    rows = {book["Organisations"][f"A{n}"].value: n for n in (2, 3)}
    crc, nps = rows["CRC"], rows["NPS"]
    path = _workbook_with(tmp_path, {
        f"{headers['cause caseloads note']}{crc}": None,  # sources kept, note cleared
        f"{headers['cause it_systems note']}{nps}": "The case system was down.",
        f"{headers['cause it_systems sources']}{nps}": "gossip",
    }, sheet="Organisations")
    result = qi("cases", "import", path, "--out", tmp_path / "back")
    assert result.exit_code == 1
    assert f"Organisations!{headers['cause caseloads note']}{crc}: missing_note: the cause caseloads" in result.stderr
    assert f"Organisations!{headers['cause it_systems sources']}{nps}: unknown_value: 'gossip'" in result.stderr
    assert not (tmp_path / "back").exists()
