"""Every input the fuzzer (``python -m tests.fuzz``) ever found a problem with, replayed: each is now
handled — a result or diagnostics, never another exception. Fixtures are
``tests/fixtures/fuzz/<target>-<id>.yaml``, with a ``.txt`` beside each saying what went wrong."""

from __future__ import annotations

import pytest

from tests import fuzz

FOUND = sorted(p for p in fuzz.FIXTURES.glob("*.yaml") if not p.name.startswith("."))


def test_there_are_fixtures_for_every_target():
    assert {path.name.split("-", 1)[0] for path in FOUND} >= {"case", "rules"}
    assert all(path.with_suffix(".txt").is_file() for path in FOUND)


@pytest.mark.parametrize("path", FOUND, ids=[p.stem for p in FOUND])
def test_fuzz_finding_is_handled(path):
    target = path.name.split("-", 1)[0]
    assert fuzz.outcome(target, path.read_bytes()) is None
