"""qi rules doc: the methodology handbook, generated from the rule set."""

from __future__ import annotations

import re

from engine.check import framework as frameworks
from tests.conftest import ROOT


def test_markdown_handbook_puts_framework_text_beside_rules(qi):
    result = qi("rules", "doc")
    assert result.exit_code == 0
    text = result.stdout
    fw = frameworks.load(frameworks.default_path())
    for item in fw.items():
        assert f"**{item.id}** {item.text}" in text
    section = text[text.index("### 3.1 Assessment establishes outcome priorities"):text.index("### 3.2 ")]
    assert "#### Risk of harm to children not identified (`children-risk-not-identified`)" in section
    assert "the case is flagged child_safeguarding" in section and "any of 3.1.a, 3.1.b is no" in section
    assert "#### 3.1 insufficient: a public protection line is not fully met (`3.1-protection-line-not-met`)" in section
    assert "- 3.1 is insufficient" in section and "the fact public_protection_priority holds" in section
    assert "insufficient beats sufficient" in text
    assert "Rating bands, best first: outstanding, good, requires_improvement, inadequate" in text
    assert "`band-good`" in text and "for each criterion" in text


def test_items_no_rule_reads_are_listed(qi, tmp_path):
    rules_text = (ROOT / "tests" / "fixtures" / "lint" / "warnings.yaml").read_text()
    path = tmp_path / "r.yaml"
    path.write_text(rules_text)
    text = qi("rules", "doc", path).stdout
    unread = text[text.index("## Items no rule reads"):]
    assert "1.1.a" in unread and "3.1.a," not in unread
    assert "*No rule concludes on this criterion.*" in text


def test_html_handbook_is_escaped_and_self_contained(qi, tmp_path):
    rules_text = (ROOT / "tests" / "fixtures" / "lint" / "warnings.yaml").read_text()
    path = tmp_path / "r.yaml"
    path.write_text(rules_text.replace("rationale: 3.1.a cannot be both yes and no.",
                                       "rationale: \"<script>alert(1)</script>\""))
    html = qi("rules", "doc", path, "--format", "html").stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert not re.search(r"https?://", html)
