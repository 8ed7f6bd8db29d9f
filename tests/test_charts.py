"""Charts drawn by matplotlib into the report (issue 22, 17): % sufficient per criterion and
provider with interval whiskers, as inline SVG in report.html and a picture in report.docx, the
same figures in the tables beside it, and the same bytes for the same report."""

from __future__ import annotations

import json
import re
import zipfile

from engine.report import charts, draft
from tests.conftest import SAMPLE


def _run(qi, tmp_path):
    out = tmp_path / "out"
    assert qi("run", SAMPLE, "--out", out, "--db", tmp_path / "qi.db", "--jobs", "1").exit_code == 0
    return out


def test_the_html_report_inlines_one_chart_with_its_words_and_no_script(qi, tmp_path):
    out = _run(qi, tmp_path)
    html = (out / "report.html").read_text(encoding="utf-8")
    figures = re.findall(r'<figure class="chart" role="img" aria-label="([^"]+)"><svg', html)
    assert len(figures) == 6 and all("95% intervals" in f for f in figures)  # the criteria, then each standard's lines
    svg = html[html.index("<figure class=\"chart\""):html.index("</figure>")]
    assert "<script" not in svg.lower() and "<figcaption>" in svg
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    criteria = [c["id"] for s in report["standards"] if s["scope"] == "case" for c in s["criteria"]]
    labels = re.findall(r"<text [^>]*>([^<]*)</text>", svg)
    assert [label for label in labels if label in criteria] == criteria  # a row per criterion, in order
    lines = [f for f in re.findall(r"<figure class=\"chart\".*?</figure>", html, flags=re.S)][1:]
    items = [i for s in report["standards"] if s["scope"] == "case" for c in s["criteria"] for i in report["aggregates"]["lines"]
             if report["aggregates"]["lines"][i]["criterion"] == c["id"]]
    drawn = [label for chart in lines for label in re.findall(r"<text [^>]*>([^<]*)</text>", chart) if label in items]
    assert drawn == items  # every line of enquiry, once, standard by standard
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # six inline charts, no id shared
    assert "The chart itself is drawn in report.html and report.docx" in (out / "report.md").read_text(encoding="utf-8")


def test_the_word_report_carries_the_chart_as_a_picture(qi, tmp_path):
    out = _run(qi, tmp_path)
    with zipfile.ZipFile(out / "report.docx") as docx:
        pictures = [n for n in docx.namelist() if n.startswith("word/media/")]
        body = docx.read("word/document.xml").decode("utf-8")
    assert len(pictures) == 6 and all(p.endswith(".png") for p in pictures)
    assert "as whiskers" in body  # the chart's words follow it


def test_a_chart_is_drawn_the_same_every_time_and_skips_missing_figures():
    chart = charts.Chart(title="T", axis="%", alt="A", columns=["All", "EAST"],
                         rows=[("1.1", [(50.0, 30.0, 70.0), None]), ("1.2", [(100.0, 80.0, 100.0), (0.0, 0.0, 20.0)])])
    assert charts.svg(chart) == charts.svg(chart) and charts.png(chart) == charts.png(chart)
    assert charts.png(chart).startswith(b"\x89PNG")
    # nothing to draw: no chart at all
    report = {"aggregates": {"targets": {}, "confidence": 0.95}, "standards": [], "framework": {}}
    assert draft.criteria_chart(report, ["all"], str) is None
