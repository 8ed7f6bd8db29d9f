"""Hostile input, one regression test per attack class of issue 11: each is refused with exit 1 and
a diagnostic naming the file and position, no traceback, and nothing written (no reports, no store).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import pytest

from engine.base.diagnostics import InputError
from engine.load import source
from tests.conftest import ROOT, SAMPLE


def _refused(result, tmp_path, pattern: str) -> None:
    """Exit 1, a diagnostic matching ``pattern`` (path:line:col: code: ...), no traceback, nothing written."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert re.search(pattern, result.stderr, re.M), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "qi.db").exists()


def _run(qi, sample, tmp_path, *extra):
    return qi("run", sample, "--out", tmp_path / "out", "--db", tmp_path / "qi.db", *extra)


def _subprocess_qi(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    """qi in its own process, so that a hang is a test failure rather than a stuck suite."""
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


# --- control characters, after YAML escapes are decoded ---------------------------------------------

@pytest.mark.parametrize("escape, code_point", [
    ("\\e[2J\\e[H", "001B"), ("\\0", "0000"), ("\\x9b2J", "009B"), ("\\u202e", "202E"), ("\\u2066", "2066"),
    ("\\r", "000D"), ("\\x07", "0007"),
])
def test_control_characters_written_as_escapes_are_refused(qi, sample_copy, tmp_path, escape, code_point):
    case = sample_copy / "cases" / "NW-001.yaml"
    text = case.read_text()
    lines = text.splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "note:" in t)
    lines[line - 1] = re.sub(r'note: ".*?"', lambda _: f'note: "Seen at home.{escape} All well."', lines[line - 1],
                             count=1)
    assert lines[line - 1] != text.splitlines()[line - 1]
    case.write_text("\n".join(lines) + "\n")
    _refused(_run(qi, sample_copy, tmp_path), tmp_path,
             rf"^{re.escape(str(case))}:{line}:\d+: control_character: .*U\+{code_point}")
    explained = qi("explain", case, "--criterion", "3.1")
    assert explained.exit_code == 1 and "\x1b" not in explained.stdout + explained.stderr


def test_tabs_and_newlines_written_as_escapes_are_text():
    assert source.parse(b'note: "one\\ttwo\\nthree"\n', "t.yaml").data == {"note": "one\ttwo\nthree"}


def test_a_raw_bidi_override_in_a_file_is_refused():
    with pytest.raises(InputError) as caught:
        source.parse("note: \"abc\u202edef\"\n".encode(), "t.yaml")
    assert [(d.code, d.line, d.col) for d in caught.value.diagnostics] == [("control_character", 1, 11)]


def test_control_characters_in_a_key_are_refused():
    with pytest.raises(InputError) as caught:
        source.parse(b'"\\e[31mcase": NW-1\n', "t.yaml")
    assert [(d.code, d.line, d.col) for d in caught.value.diagnostics] == [("control_character", 1, 1)]


# --- the depth limit holds after alias expansion -----------------------------------------------------

def _alias_chain(levels: int) -> str:
    return "\n".join(["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, levels)]) + "\n"


def test_an_alias_chain_deeper_than_the_limit_is_refused():
    with pytest.raises(InputError) as caught:
        source.parse(_alias_chain(250).encode(), "t.yaml")
    assert [(d.code, d.line) for d in caught.value.diagnostics] == [("too_deep", source.MAX_DEPTH)]


def test_the_alias_depth_limit_is_exact():
    """The root mapping is level 1, so a chain of MAX_DEPTH - 1 nested lists is the deepest allowed."""
    data = source.parse(_alias_chain(source.MAX_DEPTH - 1).encode(), "t.yaml").data
    node, depth = data[f"a{source.MAX_DEPTH - 2}"], 1
    while isinstance(node[0], list):
        node, depth = node[0], depth + 1
    assert depth == source.MAX_DEPTH - 1 and node == ["x"]
    with pytest.raises(InputError) as caught:
        source.parse(_alias_chain(source.MAX_DEPTH).encode(), "t.yaml")
    assert caught.value.diagnostics[0].code == "too_deep"


def test_an_alias_chain_as_the_rule_set_is_a_diagnostic_not_a_recursion_error(qi, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("id: deep\ntitle: T\nversion: '1'\nframework: {id: hmip-qi-adult, version: '2.0'}\n"
                     "rules: []\n" + _alias_chain(250).replace("a0: &a0 [x]", "a0: &a0 [{not: {fact: x}}]"))
    _refused(_run(qi, SAMPLE, tmp_path, "--rules", rules), tmp_path, rf"^{re.escape(str(rules))}:\d+:\d+: too_deep:")


# --- FIFOs, devices and sockets are refused without being opened --------------------------------------

def test_a_fifo_in_a_sample_and_as_the_rule_set_is_refused_without_hanging(sample_copy, tmp_path):
    fifo = sample_copy / "cases" / "NW-099.yaml"
    os.mkfifo(fifo)
    result = _subprocess_qi("validate", sample_copy)
    assert result.returncode == 1 and f"{fifo}:1:1: not_a_regular_file: this is a named pipe" in result.stderr
    os.unlink(fifo)
    rules = tmp_path / "rules.yaml"
    os.mkfifo(rules)
    result = _subprocess_qi("run", sample_copy, "--rules", rules, "--out", tmp_path / "out", "--db", tmp_path / "qi.db")
    assert result.returncode == 1 and f"{rules}:1:1: not_a_regular_file:" in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "qi.db").exists()


def test_devices_and_sockets_are_refused(qi, tmp_path):
    server = socket.socket(socket.AF_UNIX)
    path = tmp_path / "s.yaml"
    server.bind(str(path))
    try:
        result = qi("validate", "/dev/zero", path)
    finally:
        server.close()
    assert result.exit_code == 1
    assert "/dev/zero:1:1: not_a_regular_file: this is a character device" in result.stderr
    assert f"{path}:1:1: not_a_regular_file: this is a socket" in result.stderr


# --- symlinks -------------------------------------------------------------------------------------------

def test_a_case_linked_to_a_file_outside_the_sample_is_refused_with_its_path(qi, sample_copy, tmp_path):
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    link = sample_copy / "cases" / "NW-050.yaml"
    link.symlink_to(secret)
    result = _run(qi, sample_copy, tmp_path)
    _refused(result, tmp_path, rf"^{re.escape(str(link))}:1:1: outside_sample: this links to {re.escape(str(secret))}")
    assert "root:x:0:0" not in result.stderr + result.stdout


def test_a_case_from_another_sample_is_not_included(qi, sample_copy, tmp_path):
    link = sample_copy / "cases" / "NW-050.yaml"
    link.symlink_to(SAMPLE / "cases" / "NW-003.yaml")
    (sample_copy / "cases" / "NW-003.yaml").unlink()
    _refused(_run(qi, sample_copy, tmp_path), tmp_path, rf"^{re.escape(str(link))}:1:1: outside_sample:")


def test_a_cases_folder_linked_outside_the_sample_is_refused(qi, sample_copy, tmp_path):
    import shutil
    shutil.rmtree(sample_copy / "cases")
    (sample_copy / "cases").symlink_to(SAMPLE / "cases")
    _refused(_run(qi, sample_copy, tmp_path), tmp_path, rf"^{re.escape(str(sample_copy / 'cases'))}:1:1: outside_sample:")


def test_links_inside_the_sample_are_followed(qi, sample_copy, tmp_path):
    (sample_copy / "store").mkdir()
    (sample_copy / "cases" / "NW-003.yaml").rename(sample_copy / "store" / "NW-003.yaml")
    (sample_copy / "cases" / "NW-003.yaml").symlink_to(sample_copy / "store" / "NW-003.yaml")
    result = qi("validate", sample_copy)
    assert result.exit_code == 0, result.stderr


def test_symlink_loops_are_diagnostics(qi, sample_copy, tmp_path):
    (sample_copy / "cases" / "NW-060.yaml").symlink_to("NW-061.yaml")
    (sample_copy / "cases" / "NW-061.yaml").symlink_to("NW-060.yaml")
    (sample_copy / "organisation" / "loop").symlink_to("loop")
    result = _run(qi, sample_copy, tmp_path)
    _refused(result, tmp_path, r"NW-060\.yaml:1:1: symlink_loop:")
    assert "NW-061.yaml:1:1: symlink_loop:" in result.stderr


def test_a_looping_cases_folder_is_a_diagnostic(qi, sample_copy, tmp_path):
    import shutil
    shutil.rmtree(sample_copy / "cases")
    (sample_copy / "cases").symlink_to("cases")
    _refused(_run(qi, sample_copy, tmp_path), tmp_path, r"cases:1:1: symlink_loop:")


def test_an_unreadable_folder_is_a_diagnostic(qi, sample_copy, tmp_path, monkeypatch):
    folder = sample_copy / "organisation"
    if os.geteuid() == 0:  # root reads any folder: make listing this one fail as it would for a user
        from pathlib import Path
        listing = Path.iterdir

        def refuse(self):
            if self == folder:
                raise PermissionError(13, "Permission denied")
            return listing(self)
        monkeypatch.setattr(Path, "iterdir", refuse)
    else:
        folder.chmod(0)
    try:
        result = _run(qi, sample_copy, tmp_path)
    finally:
        folder.chmod(0o755)
    _refused(result, tmp_path, rf"^{re.escape(str(folder))}:1:1: unreadable_folder: cannot list the folder: permission denied")


# --- check stage -----------------------------------------------------------------------------------------

def test_integer_dates_are_refused(qi, sample_copy, tmp_path):
    manifest = sample_copy / "sample.yaml"
    manifest.write_text(re.sub(r"start: [0-9-]+", "start: 0", manifest.read_text(), count=1))
    case = sample_copy / "cases" / "NW-001.yaml"
    case.write_text(re.sub(r"start: [0-9-]+", "start: 1451606400", case.read_text(), count=1))
    result = _run(qi, sample_copy, tmp_path)
    _refused(result, tmp_path, rf"^{re.escape(str(manifest))}:\d+:\d+: wrong_type: expected a date \(YYYY-MM-DD\), "
                               "found the number 0")
    assert re.search(rf"^{re.escape(str(case))}:\d+:\d+: wrong_type: .*1451606400", result.stderr, re.M)


def _rules_with(tmp_path, when: str, header: str = "") -> str:
    text = (ROOT / "rules" / "hmip-qi-adult-2.0.yaml").read_text(encoding="utf-8")
    probe = ("  - id: hostile-probe\n    title: Probe\n    rationale: R\n"
             f"    when: {when}\n    then: [{{finding: {{criterion: \"3.1\", value: insufficient}}}}]\n")
    path = tmp_path / "rules.yaml"
    path.write_text(text.replace("\nrules:\n", "\nrules:\n" + probe, 1).replace("in_force:", header + "in_force:", 1)
                    if header else text.replace("\nrules:\n", "\nrules:\n" + probe, 1))
    return path


def test_an_integer_date_in_a_rule_set_is_refused(qi, tmp_path):
    text = (ROOT / "rules" / "hmip-qi-adult-2.0.yaml").read_text(encoding="utf-8")
    path = tmp_path / "rules.yaml"
    path.write_text(re.sub(r"in_force: \{from: [0-9-]+", "in_force: {from: 0", text, count=1))
    assert path.read_text() != text
    _refused(_run(qi, SAMPLE, tmp_path, "--rules", path), tmp_path, r"rules\.yaml:\d+:\d+: wrong_type: expected a date")


@pytest.mark.parametrize("when, message", [
    ("{diversity: {field: gendr, in: [female]}}", "'gendr' is not a diversity characteristic"),
    ("{diversity: {field: gender, in: [male, femail]}}", "'femail' is not a value of gender"),
])
def test_diversity_fields_and_values_in_rules_are_checked(qi, tmp_path, when, message):
    path = _rules_with(tmp_path, when)
    result = qi("validate", path)
    assert result.exit_code == 1 and re.search(rf"rules\.yaml:\d+:\d+: unknown_value: {message}", result.stderr)
    _refused(_run(qi, SAMPLE, tmp_path, "--rules", path), tmp_path, rf"unknown_value: {message}")


def test_case_references_are_unique_ignoring_case(qi, sample_copy, tmp_path):
    original = (sample_copy / "cases" / "NW-001.yaml").read_text()
    twin = sample_copy / "cases" / "nw-001b.yaml"
    twin.write_text(original.replace("case: NW-001", "case: nw-001"))
    _refused(_run(qi, sample_copy, tmp_path), tmp_path,
             rf"^{re.escape(str(twin))}:\d+:\d+: duplicate_case: case 'nw-001' is already in the sample \(as 'NW-001'")


def test_file_names_are_shown_with_control_characters_escaped(qi, sample_copy, tmp_path):
    hostile = sample_copy / "cases" / "NW-\x1b[2J\x9b\u202e.yaml"
    hostile.write_text("case: [not, a, reference]\n")
    result = _run(qi, sample_copy, tmp_path)
    assert result.exit_code == 1
    assert "NW-\\x1b[2J\\x9b\\u202e.yaml:1:1: control_character: the file's path holds" in result.stderr
    assert not re.search("[\x1b\x9b\u202e]", result.stderr + result.stdout)


def test_at_least_with_too_many_combinations_is_refused_before_it_is_built(qi, tmp_path):
    from engine.check import framework as frameworks
    items = frameworks.load(frameworks.default_path()).item_ids("case")[:32]
    path = _rules_with(tmp_path, f"{{at_least: {{n: 16, in: [no], items: [{', '.join(items)}]}}}}")
    started = time.monotonic()
    result = _subprocess_qi("run", SAMPLE, "--rules", path, "--out", tmp_path / "out", "--db", tmp_path / "qi.db",
                            timeout=60)
    assert time.monotonic() - started < 30 and result.returncode == 1
    assert re.search(r"rules\.yaml:\d+:\d+: rule_too_complex: at least 16 of 32 items can hold in 601,080,390 ways",
                     result.stderr), result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "qi.db").exists()


@pytest.mark.parametrize("mark", ["\x1b[2J", "\u202e"])
def test_a_sample_folder_whose_path_holds_a_control_character_is_refused(qi, tmp_path, mark):
    """Paths reach every report and trace (the answers to check, the evidence's file:line): a path
    that could clear a terminal or reorder text is refused like such a value, before anything is
    written."""
    import shutil

    folder = tmp_path / f"sample{mark}x"
    shutil.copytree(SAMPLE, folder)
    out = tmp_path / "out"
    result = qi("run", folder, "--out", out, "--db", tmp_path / "qi.db")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "control_character: the file's path holds control character" in result.stderr
    assert mark not in result.stderr and not out.exists()
    evaluated = qi("evaluate", folder / "cases" / "NW-001.yaml")
    assert evaluated.exit_code == 1 and "control_character" in evaluated.stderr
