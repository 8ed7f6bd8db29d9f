"""engine/ is machinery: it names no concept of the frameworks it carries.

The vocabulary of the bundled frameworks — sentence, risk, MAPPA, victim, the providers NPS and
CRC, the answer partly, the 2016 standard, criterion and item ids — belongs in framework/ and
rules/. This test finds those words in engine/'s code and templates and fails on any: knowledge
moved back into the engine (an example in a docstring included: examples use neutral ids).
"""

from __future__ import annotations

import re

from tests.conftest import ROOT

WORDS = re.compile(r"(?i)sentence|risk|mappa|victim|\bNPS\b|\bCRC\b|partly|\b[1-6]\.[1-3](?:\.[a-i])?\b")
SUFFIXES = (".py", ".j2", ".css", ".js", ".html")


def _counts() -> dict[str, int]:
    counts = {}
    for path in sorted((ROOT / "engine").rglob("*")):
        if path.suffix in SUFFIXES and "__pycache__" not in path.parts and path.is_file():
            found = len(WORDS.findall(path.read_text(encoding="utf-8")))
            if found:
                counts[path.relative_to(ROOT).as_posix()] = found
    return counts


def test_engine_names_no_framework_vocabulary():
    found = _counts()
    assert not found, f"framework vocabulary in engine/ (file: occurrences): {found}"


def test_the_words_are_found_where_they_are():
    sample = 'if flag == "domestic_abuse" and risk >= "high": ...  # NPS cases, 3.1.a partly met'
    assert len(WORDS.findall(sample)) == 4
