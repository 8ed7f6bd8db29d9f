"""The report as an inspector's draft: organised as the 2016 reports were, plain labels, honest
figures, practice examples chosen by rule (and removed by --redact unless the rule set allows them,
see tests/test_publication.py), and a Word document."""

from __future__ import annotations

import json
import re
from pathlib import Path

import docx
import markupsafe
import pytest
from click.testing import CliRunner

import cli

from engine.base import render
from engine.report import draft
from tests.conftest import SAMPLE, case_results, walk


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The example sample run twice through the CLI: in full and redacted."""
    root = tmp_path_factory.mktemp("draft")
    for name, extra in (("full", []), ("redacted", ["--redact"])):
        result = CliRunner().invoke(cli.cli, ["run", str(SAMPLE), "--out", str(root / name), "--db",
                                              str(root / "qi.db"), *extra])
        assert result.exit_code == 0, result.output
    return root


def _docx_text(path: Path) -> str:
    document = docx.Document(str(path))
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    return "\n".join([p.text for p in document.paragraphs] + cells)


def _headings(path: Path) -> list[tuple[int, str]]:
    document = docx.Document(str(path))
    return [(int(p.style.name.split()[-1]), p.text) for p in document.paragraphs
            if p.style.name.startswith("Heading ")]


def test_docx_opens_with_real_headings_in_the_2016_order(runs):
    headings = _headings(runs / "full" / "report.docx")
    top = [text for level, text in headings if level == 1]
    assert top[:4] == ["Key facts", "Recommendations", "Outcomes", "Standards and criteria"]
    outcomes = headings[headings.index((1, "Outcomes")) + 1:headings.index((1, "Standards and criteria"))]
    assert [text for level, text in outcomes if level == 2] == [
        "1.1 Reoffending is reduced", "1.2 The public is protected from harm", "1.3 Individuals abide by their sentence"]
    standards = [text for level, text in headings if level == 2 and text.startswith("Standard ")]
    assert standards[0].startswith("Standard 2:") and standards[-1].startswith("Standard 6:")
    document = docx.Document(str(runs / "full" / "report.docx"))
    assert document.tables[0].rows[0].cells[0].text == "Standard"
    assert [c.text for c in document.tables[0].rows[0].cells[1:]] == ["All cases", "NPS", "CRC"]


def test_markdown_and_html_follow_the_same_order(runs):
    markdown = (runs / "full" / "report.md").read_text()
    positions = [markdown.index(f"## {title}\n") for title in
                 ("Key facts", "Recommendations", "Outcomes", "Standards and criteria")]
    assert positions == sorted(positions)
    html = (runs / "full" / "report.html").read_text()
    toc = html[html.index('<nav class="toc"'):html.index("</nav>")]
    assert [a for a in re.findall(r'href="#([\w.-]+)"', toc)][:4] == ["key-facts", "recommendations", "outcomes",
                                                                       "criterion-1.1"]
    assert "@media print" in html


def test_practice_examples_quote_the_notes_behind_a_finding_and_redaction_removes_them(runs):
    report = json.loads((runs / "full" / "report.json").read_text())
    # chosen by rule: for 3.1, the first insufficient case in reference order per provider
    insufficient = [e for e in report["examples"]["3.1"] if e["finding"] == "insufficient"]
    first_per_provider = {}
    for case in report["cases"]:
        if case["findings"]["3.1"]["value"] == "insufficient":
            first_per_provider.setdefault(case["provider"], case["case"])
    assert {e["provider"]: e["case"] for e in insufficient} == first_per_provider
    trace = next(result for result in case_results(runs / "full") if result["case"] == insufficient[0]["case"])
    notes = [e["note"] for node in walk(trace["findings"]["3.1"]["trace"]) for e in node.get("evidence", [])]
    assert insufficient[0]["note"] in notes and insufficient[0]["answer"] in ("no", "partly")
    quoted = [e["note"] for found in report["examples"].values() for e in found]
    for view in ("report.md", "report.html"):
        full_text = (runs / "full" / view).read_text()
        assert all(_as_written(view, note) in full_text for note in quoted), view
    assert all(note in _docx_text(runs / "full" / "report.docx") for note in quoted)
    redacted = json.loads((runs / "redacted" / "report.json").read_text())
    assert redacted["examples"] == {}
    assert not (runs / "redacted" / "trace.jsonl").exists()  # a redacted run writes no case traces
    for view in ("report.md", "report.html", "report.json"):
        text = (runs / "redacted" / view).read_text()
        assert not [note for note in quoted if _as_written(view, note) in text or note in text], view
    docx_text = _docx_text(runs / "redacted" / "report.docx")
    assert not [note for note in quoted if note in docx_text]


def test_redaction_does_not_name_suppressed_groups(runs):
    full = json.loads((runs / "full" / "report.json").read_text())
    redacted = json.loads((runs / "redacted" / "report.json").read_text())
    suppressed = set(full["aggregates"]["group_sizes"]) - set(redacted["aggregates"]["group_sizes"])
    assert suppressed  # the example sample has small diversity groups
    assert not suppressed & set(redacted["labels"])
    for key in suppressed:
        label = full["labels"][key]
        for view in ("report.md", "report.docx"):
            text = _docx_text(runs / "redacted" / view) if view.endswith("docx") else (runs / "redacted" / view).read_text()
            assert f"{label}:" not in text, (key, view)


def test_plain_labels_come_from_the_framework_vocabulary(runs):
    labels = json.loads((runs / "full" / "report.json").read_text())["labels"]
    assert labels["gender:female"] == "women" and labels["ethnicity:black"] == "Black"
    assert labels["age_band:18-24"] == "aged 18–24" and labels["disability:yes"] == "disabled people"
    assert labels["provider:NPS"] == "NPS" and labels["all"] == "all cases"
    assert labels["marital_status:not_given"] == "Marriage and civil partnership: not given"


@pytest.mark.parametrize(("group", "expected"), [
    ({"counts": {"sufficient": 5}, "applicable": 6, "percent": 83.3}, "5 of 6"),
    ({"counts": {"sufficient": 15}, "applicable": 19, "percent": 78.9}, "15 of 19"),
    ({"counts": {"sufficient": 16}, "applicable": 20, "percent": 80.0}, "80% (16 of 20)"),
    ({"counts": {"sufficient": 5}, "applicable": 6, "percent": 83.3, "interval": {"low": 43.6, "high": 97.0}},
     "5 of 6 (95% interval 44–97%)"),
    ({"counts": {"sufficient": 16}, "applicable": 20, "percent": 80.0, "interval": [58.4, 91.9]},
     "80% (16 of 20; 95% interval 58–92%)"),
    ({"counts": {"sufficient": 0}, "applicable": 0, "percent": None}, "no applicable cases"),
    (None, "no applicable cases"),
])
def test_figures_have_no_false_precision(group, expected):
    assert draft.figure(group) == expected


def test_markdown_escapes_every_string_from_an_input_file(sample_copy, tmp_path):
    """A hostile title or note cannot add a section, a link, an image or raw HTML to report.md."""
    manifest = sample_copy / "sample.yaml"
    text = manifest.read_text()
    text = re.sub(r"^title: .*$", 'title: "X\\n## Recommendations\\n[click](javascript:alert(1)) '
                                  '![t](http://evil/t.png) <script>alert(1)</script>"', text, flags=re.M)
    manifest.write_text(text)
    result = CliRunner().invoke(cli.cli, ["run", str(sample_copy), "--out", str(tmp_path / "out"),
                                           "--db", str(tmp_path / "qi.db")])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert markdown.count("## Recommendations") == 1
    assert not re.search(r"(?<!\\)\]\(javascript:", markdown)  # no link: the bracket is escaped
    assert not re.search(r"(?<!\\)!(?<!\\)\[", markdown) and "<script>" not in markdown
    assert "\\[click\\](javascript:alert(1))" in markdown and "&lt;script&gt;" in markdown


def _as_written(view: str, note: str) -> str:
    """A note as the Markdown or HTML view writes it (escaped so that it stays text)."""
    return render.markdown_text(note) if view.endswith(".md") else str(markupsafe.escape(note))


def test_html_of_a_1000_case_run_stays_under_5_mb_with_every_case_listed(tmp_path):
    """Traces of a large run stay in trace.jsonl; the page lists every case, folded, in compact form."""
    runner = CliRunner()
    generated = runner.invoke(cli.cli, ["sample", "generate", "--cases", "1000", "--seed", "3",
                                        "--out", str(tmp_path / "big")])
    assert generated.exit_code == 0, generated.output
    result = runner.invoke(cli.cli, ["run", str(tmp_path / "big"), "--out", str(tmp_path / "out"),
                                     "--db", str(tmp_path / "qi.db"), "--jobs", "2"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "out" / "report.html").read_text()
    assert len(html.encode()) < 5 * 1024 * 1024
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    last = report["cases"][-1]["case"]
    assert html.count(f'href="#case-{last}"') >= 15  # in every criterion's folded list
    case_section = html.split(f'id="case-{last}"')[1].split("</details>")[0]
    assert "sufficient" in case_section
    assert 'class="drill"' not in case_section  # no inline traces above the limit


#: What must never reach a reader: internal attribute names (``gap__c1_1__gender``), Python reprs of
#: values and containers, and group keys (``disability:yes``) where a plain label belongs.
INTERNAL = [re.compile(p) for p in (r"\b[a-z]\w*__\w+", r"[:=(\[,] ?(None|True|False)\b", r"\['", r"\{'")]


def _visible(view: str, path: Path) -> str:
    if view == "report.docx":
        return _docx_text(path)
    text = path.read_text()
    if view == "report.html":
        text = re.sub(r"<[^>]+>", " ", text)  # attributes (ids, classes) are not read
        text = markupsafe.Markup(text).unescape()
    return text


@pytest.mark.parametrize("view", ["report.md", "report.html", "report.docx"])
def test_no_view_shows_internal_names_or_reprs(runs, view):
    labels = json.loads((runs / "full" / "report.json").read_text())["labels"]
    for variant in ("full", "redacted"):
        text = _visible(view, runs / variant / view)
        found = [m.group(0) for pattern in INTERNAL for m in pattern.finditer(text)]
        assert found == [], (variant, found[:10])
        keys = [key for key in labels if key != "all" and key in text]
        assert keys == [], (variant, keys)


def test_report_json_holds_no_python_reprs(runs):
    for variant in ("full", "redacted"):
        strings = [s for s in _strings(json.loads((runs / variant / "report.json").read_text()))]
        assert [s for s in strings if s in ("None", "True", "False") or "['" in s or "{'" in s] == []


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def test_docx_carries_the_consistency_section_with_each_disagreement(runs):
    report = json.loads((runs / "full" / "report.json").read_text())
    disagreements = [(m["case"], m["criterion"]) for m in report["consistency"]["moderation"]]
    assert disagreements  # the example sample carries a disagreement
    headings = _headings(runs / "full" / "report.docx")
    assert (1, "Consistency: engine and inspectors") in headings
    text = _docx_text(runs / "full" / "report.docx")
    section = text[text.index("Consistency: engine and inspectors"):]
    for case, criterion in disagreements:
        assert f"{case}, {criterion}: engine" in section
    overall = report["consistency"]["engine_inspector"]["overall"]
    assert f"{overall['agreed']} of {overall['n']}" in section


def test_answers_that_disagree_with_the_case_context_are_listed_for_the_inspectors(runs):
    report = json.loads((runs / "full" / "report.json").read_text())
    warned = [w for w in report["warnings"] if w["code"] in ("expected_not_applicable", "answered_not_expected")]
    assert warned  # the example sample has some: 3.1.b answered where no MAPPA or child flag calls for it
    markdown = (runs / "full" / "report.md").read_text().replace("\\", "")  # Markdown escapes
    section = markdown[markdown.index("## Answers to check\n"):markdown.index("## How these findings were reached")]
    for w in warned:
        assert f"{w['path']}:{w['line']}: {w['message']}." in section
    assert "answers-to-check" in (runs / "full" / "report.html").read_text()
    assert "Answers to check" in _docx_text(runs / "full" / "report.docx")
