"""qi rules doc: the methodology handbook, generated from the rule set."""

from __future__ import annotations

import re

import yaml

from engine.check import framework as frameworks
from tests.conftest import ROOT

RULES = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"


def test_markdown_handbook_puts_framework_text_beside_rules(qi):
    result = qi("rules", "doc")
    assert result.exit_code == 0
    text = result.stdout
    fw = frameworks.load(frameworks.default_path())
    for item in fw.items():
        assert f"**{item.id}** {item.text}" in text
    section = text[text.index("### 3.1 Assessment establishes outcome priorities"):text.index("### 3.2 ")]
    assert "#### Risk of harm to children not identified (`children-risk-not-identified`)" in section
    assert "the case is flagged child_safeguarding" in section and "any of 3.1.a, 3.1.b is partly or no" in section
    assert "#### 3.1 insufficient: a public protection line is not fully met (`3.1-protection-line-not-met`)" in section
    assert "- 3.1 is insufficient" in section and "the fact public_protection_priority holds" in section
    assert "insufficient beats sufficient" in text
    assert "Rating bands" not in text and "`band-good`" not in text  # the default rule set issues no bands


def test_banded_handbook_lists_bands_and_how_they_are_derived(qi):
    banded = ROOT / "rules" / "hmip-qi-adult-2.0-banded.yaml"
    result = qi("rules", "doc", banded)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "Rating bands, best first: outstanding, good, requires_improvement, inadequate" in text
    assert "`band-good`" in text and "for each criterion" in text
    assert "How the bands are derived: Bands are a methodology choice" in text
    assert "fewer than 5 applicable cases is not rated" in text


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


def test_each_declared_criterion_has_its_method_in_plain_words(qi, tmp_path):
    declared = {d["criterion"]: d for d in yaml.safe_load(RULES.read_text())["criteria"]}
    text = qi("rules", "doc").stdout
    for criterion, d in declared.items():
        section = text[text.index(f"\n### {criterion} "):]
        method = section[section.index("**Method.**"):section.index("\n\n", section.index("**Method.**") + 200)]
        assert f"Counted in every case: {', '.join(d['core'])}." in method
        assert f"at least {d['threshold']:g}% of the applicable lines" in method
        for item in d.get("expected_when", {}):
            assert f"{item} is expected where " in method
        assert (f"a no on a key line ({', '.join(d.get('key', []))})" in method) == bool(d.get("key"))
        assert (f"protection line ({', '.join(d.get('protection', []))})" in method) == bool(d.get("protection"))
    edited = tmp_path / "rules.yaml"
    edited.write_text(RULES.read_text().replace("    threshold: 66\n\n  - criterion: \"3.2\"",
                                                "    threshold: 80\n\n  - criterion: \"3.2\"", 1))
    changed = qi("rules", "doc", edited).stdout
    section = changed[changed.index("\n### 3.1 "):changed.index("\n### 3.2 ")]
    assert "at least 80% of the applicable lines" in section


def test_the_methodology_note_table_matches_the_declarations():
    """docs/methodology.md's per-criterion table says what the rule file declares."""
    declared = {d["criterion"]: d for d in [*yaml.safe_load(RULES.read_text())["criteria"],
                                            *yaml.safe_load(RULES.read_text()).get("organisation_criteria", [])]}
    note = (ROOT / "docs" / "methodology.md").read_text()
    rows = [line.split("|")[1:-1] for line in note.splitlines() if re.match(r"^\| \d\.\d \|", line)]
    assert {r[0].strip() for r in rows} == set(declared)
    for criterion, core, expected, key, protection in ([c.strip() for c in r] for r in rows):
        d = declared[criterion]
        assert _items(criterion, core) == d.get("core", []), criterion
        assert [e.split(":")[0].strip() for e in expected.split(";") if e.strip()] == list(d.get("expected_when", {}))
        # "3.1.a, b; 3.1.i where custody": the declared list, then the lines decisive only in some cases
        key, _, key_when = key.partition(";")
        protection, _, decisive_when = protection.partition(";")
        assert _items(criterion, key) == d.get("key", []), criterion
        assert _items(criterion, protection) == d.get("protection", []), criterion
        assert re.findall(r"\d\.\d\.[a-z]", key_when) == list(d.get("key_when", {})), criterion
        assert re.findall(r"\d\.\d\.[a-z]", decisive_when) == list(d.get("decisive_when", {})), criterion


def _items(criterion: str, cell: str) -> list[str]:
    """'3.1.a, d–h' -> ['3.1.a', '3.1.d', ..., '3.1.h']."""
    found = []
    for token in (t.strip() for t in cell.split(",") if t.strip()):
        letters = token.rsplit(".", 1)[-1]
        first, _, last = letters.partition("–")
        found += [f"{criterion}.{chr(c)}" for c in range(ord(first), ord(last or first) + 1)]
    return found
