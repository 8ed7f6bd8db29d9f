"""Hostile text reaching outputs: report.md escapes Markdown and HTML in every user-supplied string,
text views escape control characters, and an internal error never prints case content, even at
``--log-level debug``."""

from __future__ import annotations

import json
import re
import sys

import pytest
from markdown_it import MarkdownIt

from engine.report import views
from tests.conftest import ROOT, SAMPLE

HOSTILE = ("Close the service\n\n## Recommendations\n\n1. Fake <script>alert(1)</script> "
           "![t](https://track.example/pixel.png) [report](javascript:alert(1)) <javascript:alert(2)> "
           "| fake | cell | &lt;b&gt; *emphasis* `code`")


def _yaml(text: str) -> str:
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def _rendered(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").enable("strikethrough").render(markdown)


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile-md")
    import shutil

    from click.testing import CliRunner

    import cli
    sample = folder / "sample"
    shutil.copytree(SAMPLE, sample)
    manifest = sample / "sample.yaml"
    text = manifest.read_text()
    text = re.sub(r"^title: .*$", lambda _: "title: " + _yaml("North West " + HOSTILE), text, count=1, flags=re.M)
    text = re.sub(r"^area: .*$", lambda _: "area: " + _yaml("<img src=x onerror=alert(1)> # Area"), text, count=1,
                  flags=re.M)
    manifest.write_text(text)
    rules_text = (ROOT / "rules" / "hmip-qi-adult-2.0.yaml").read_text()
    hostile_rules = rules_text.replace("should make sure that assessments", "should " + HOSTILE.replace("\n", " ")
                                       .replace('"', "'") + " make sure that assessments", 1)
    assert hostile_rules != rules_text
    rules = folder / "rules.yaml"
    rules.write_text(hostile_rules)
    out = folder / "out"
    result = CliRunner().invoke(cli.cli, ["run", str(sample), "--rules", str(rules), "--out", str(out),
                                          "--db", str(folder / "qi.db")], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return (out / "report.md").read_text()


def test_report_md_renders_no_html_links_or_images_from_input(hostile_report):
    html = _rendered(hostile_report)
    assert "<script" not in html and "<img" not in html and "<a " not in html  # no raw HTML, image or link
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the text is still there, as text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "[report](javascript:alert(1))" in html


def test_report_md_titles_cannot_add_sections_list_items_or_table_cells(hostile_report):
    headings = [line for line in hostile_report.splitlines() if line.startswith("#")]
    assert sum(h == "## Recommendations" for h in headings) == 1
    assert headings[0].startswith("# North West Close the service") and len(headings[0].splitlines()) == 1
    html = _rendered(hostile_report)
    assert len(re.findall(r"<h2>Recommendations</h2>", html)) == 1
    assert "<em>emphasis</em>" not in html and "<code>" not in html and "*emphasis* `code`" in html
    assert not re.search(r"(?<!\\)\| fake", hostile_report)  # no table cell of its own


def test_report_md_of_ordinary_text_reads_as_before(hostile_report):
    assert re.search(r"^## Recommendations$", hostile_report, re.M) and re.search(r"^## Key facts$", hostile_report, re.M)
    assert re.search(r"\| \d+% \(\d+ of \d+; 95% interval \d+–\d+%\) \|", hostile_report)  # figures are not escaped


# --- text views ---------------------------------------------------------------------------------------

CONTROL = "\x1b[2J\x1b]0;owned\x07\x9b31m\u202egnp.exe\r"


def test_text_views_escape_control_characters(tmp_path):
    factor = {"text": f"Barrier {CONTROL}", "criterion": "3.1", "key": "barrier:x<case:NW-1>", "because": [
        {"rule": "r", "title": "T", "fired": True, "at": f"rules{CONTROL}.yaml:1",
         "ruleset": {"id": "x", "version": "1", "sha256": "0" * 64},
         "condition": {"condition": "answer", "text": "3.1.a is no", "holds": True, "at": "x:1",
                       "seen": {"3.1.a": "no"},
                       "evidence": [{"item": "3.1.a", "answer": "no", "note": f"note {CONTROL}", "at": "c:1"}]}}]}
    shown = views.tree_text(factor)
    result = {"case": "NW-1", "provider": "NPS", "ruleset": {"id": "x", "version": "1"},
              "findings": {"3.1": {"value": "insufficient", "rules": ["r"], "trace": {"title": f"T{CONTROL}"}}},
              "enablers": [], "barriers": [{"criterion": "3.1", "text": CONTROL, "id": "b", "rules": ["r"]}]}
    shown += views.result_text(result)
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", shown), repr(shown)
    assert shown.count("\\x1b[2J") == 5 and "\\u202e" in shown and "\\x9b" in shown


def test_runs_show_escapes_control_characters(qi, tmp_path):
    out, db = tmp_path / "out", tmp_path / "qi.db"
    assert qi("run", SAMPLE, "--out", out, "--db", db).exit_code == 0
    report = json.loads((out / "report.json").read_text())
    report["sample"]["title"] = f"North West {CONTROL}"
    report["sample_judgement"]["recommendations"][0]["text"] = CONTROL
    shown = views.run_text(report) + views.headline_text(report)
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", shown), repr(shown)
    assert shown.count("\\x1b[2J") == 2


# --- internal errors ---------------------------------------------------------------------------------------

NOTE = "Risk to the partner's children not considered"


@pytest.mark.parametrize("log_format", ["human", "json"])
def test_an_internal_error_at_debug_level_prints_no_case_content(monkeypatch, capsys, log_format):
    import cli
    from engine.check import sample

    def broken(loaded):
        evidence = {"3.1.a": NOTE}  # a local variable holding case content
        raise ValueError(f"cannot handle {evidence}")

    monkeypatch.setattr(sample, "warnings_for", broken)
    monkeypatch.setattr(sys, "argv", ["qi", "--log-level", "debug", "--log-format", log_format, "validate", str(SAMPLE)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    captured = capsys.readouterr()
    assert exit_.value.code == 70
    assert NOTE not in captured.err + captured.out and "evidence" not in captured.err
    assert "Traceback" not in captured.err
    assert "qi: internal error: ValueError at tests/test_hostile_output.py:" in captured.err
    assert "in broken" in captured.err and "engine/check/sample.py:" in captured.err  # the frames, at debug
