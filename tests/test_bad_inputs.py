"""One bad fixture per diagnostic code: each is reported with its code, file and line, no traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.load import source
from tests.conftest import FIXTURES

BAD = sorted((FIXTURES / "bad").glob("*.yaml")) + sorted((FIXTURES / "bad_rules").glob("*.yaml"))
_EXPECT = re.compile(r"^# expect: (?P<code>\w+) at (?P<line>\d+)(?P<warning> \(warning\))?")


def _expectation(path: Path) -> tuple[str, int, bool]:
    match = _EXPECT.match(path.read_text(encoding="utf-8").splitlines()[0])
    assert match, f"{path.name} has no '# expect: CODE at LINE' header"
    return match["code"], int(match["line"]), bool(match["warning"])


@pytest.mark.parametrize("path", BAD, ids=[f"{p.parent.name}-{p.stem}" for p in BAD])
def test_bad_fixture_reports_code_file_and_line(qi, path):
    code, line, warning = _expectation(path)
    result = qi("validate", path)
    assert result.exit_code == (0 if warning else 1), result.stderr
    assert "Traceback" not in result.stderr
    pattern = rf"^{re.escape(str(path))}:{line}:\d+: {code}: .+\(.+\)$"
    assert re.search(pattern, result.stderr, re.M), result.stderr


@pytest.mark.parametrize("path", BAD, ids=[f"{p.parent.name}-{p.stem}" for p in BAD])
def test_bad_fixture_json_diagnostics(qi, path):
    code, line, warning = _expectation(path)
    result = qi("validate", "--format", "json", path)
    report = json.loads(result.stdout)
    matching = [d for d in report["diagnostics"] if d["code"] == code and d["line"] == line]
    assert matching and matching[0]["path"] == str(path) and matching[0]["hint"]
    assert matching[0]["severity"] == ("warning" if warning else "error")


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name, data, code, line, col", [
    ("not_utf8.yaml", b"case: NW-1\nprovider: \xff\xfeCRC\n", "not_utf8", 2, 11),
    ("latin1.yaml", "case: NW-1\nnote: caf\u00e9\n".encode("latin-1"), "not_utf8", 2, 10),
    ("control.yaml", b"case: NW-1\nprovider: C\x07RC\n", "control_character", 2, 12),
    ("nul.yaml", b"case: NW-1\x00\n", "control_character", 1, 11),
    ("too_large.yaml", b"case: NW-1\n" + b"# padding\n" * (source.MAX_FILE_BYTES // 10 + 1), "file_too_large", 1, 1),
    ("blank.yaml", b"", "empty_file", 1, 1),
    ("whitespace.yaml", b"  \n\n\t\n", "empty_file", 1, 1),
])
def test_generated_bad_bytes(qi, tmp_path, name, data, code, line, col):
    path = _write(tmp_path, name, data)
    result = qi("validate", path)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path}:{line}:{col}: {code}: "), result.stderr


def test_missing_file_is_unreadable_not_a_crash(qi, tmp_path):
    result = qi("validate", tmp_path / "nowhere.yaml")
    assert result.exit_code == 1
    assert f"{tmp_path / 'nowhere.yaml'}:1:1: unreadable_file:" in result.stderr


def test_every_error_of_a_file_in_one_pass(qi, tmp_path):
    path = _write(tmp_path, "NW-9.yaml", b"""case: NW-9
provider: NSP
sentence: {type: custody, requirements: [flying], start: 2016-01-01}
risk_of_serious_harm: extreme
flags: [kids]
colour: blue
evidence:
  3.1.a: {answer: maybe}
  6.1.a: {answer: "yes"}
""")
    result = qi("validate", path)
    assert result.exit_code == 1
    codes = re.findall(rf"^{re.escape(str(path))}:(\d+):\d+: (\w+):", result.stderr, re.M)
    assert codes == [("2", "unknown_value"), ("3", "unknown_value"), ("4", "unknown_value"), ("5", "unknown_value"),
                     ("6", "unknown_field"), ("8", "invalid_value"), ("9", "wrong_scope")]
    assert "did you mean 'NPS'" in result.stderr


def test_errors_are_capped_per_file(qi, tmp_path):
    lines = ["case: NW-9", "provider: CRC", "sentence: {type: custody, start: 2016-01-01}", "risk_of_serious_harm: low",
             "evidence:"] + [f"  9.9.{chr(97 + i // 26)}{chr(97 + i % 26)}: {{answer: \"yes\"}}" for i in range(150)]
    path = _write(tmp_path, "many.yaml", "\n".join(lines).encode())
    result = qi("validate", path)
    assert result.stderr.count("unknown_item") == 100
    assert "too_many_errors: 50 more problems" in result.stderr
