"""The CLI's rough edges, each as a user meets it: files qi does not read, wrong paths, tabs, N/A,
missing sources, options after the subcommand, JSON and JUnit output, progress, and packaging."""

from __future__ import annotations

import json
import re
import shutil
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from tests.conftest import ROOT, SAMPLE, case_yaml


@pytest.mark.parametrize("folder", ["cases", "organisation"])
def test_a_file_qi_does_not_read_is_warned_about(qi, sample_copy, folder):
    (sample_copy / folder / "NW-099.csv").write_text("case,provider\nNW-099,NPS\n")
    (sample_copy / folder / "notes.txt").write_text("to do")
    result = qi("validate", sample_copy)
    assert result.exit_code == 0
    assert (f"{sample_copy / folder / 'NW-099.csv'}:1:1: not_yaml: warning: this file is not YAML, so qi does not "
            f"read it (turn a spreadsheet into case files with: qi cases import") in result.stderr
    assert f"{sample_copy / folder / 'notes.txt'}:1:1: not_yaml: warning:" in result.stderr
    assert "2 warnings" in result.stderr


def test_a_sample_whose_only_case_is_a_spreadsheet_says_so(qi, tmp_path, sample_copy):
    for path in (sample_copy / "cases").iterdir():
        path.unlink()
    (sample_copy / "cases" / "all.xlsx").write_bytes(b"PK")
    result = qi("validate", sample_copy)
    assert result.exit_code == 1
    assert "no_cases" in result.stderr and "qi cases import" in result.stderr


def test_a_missing_path_says_so(qi):
    result = qi("validate", SAMPLE / "cases" / "NW-01.yaml")
    assert result.exit_code == 1
    assert "NW-01.yaml:1:1: unreadable_file: there is no such file or folder (did you mean" in result.stderr
    assert "NW-014.yaml" in result.stderr or "NW-010.yaml" in result.stderr
    result = qi("run", "no/such/sample")
    assert result.exit_code == 2 and "no/such/sample does not exist" in result.stderr


def test_run_on_a_case_file_suggests_evaluate_and_on_cases_suggests_the_sample(qi):
    case = SAMPLE / "cases" / "NW-014.yaml"
    result = qi("run", case)
    assert result.exit_code == 2 and f"run: qi evaluate {case}" in result.stderr
    result = qi("run", SAMPLE / "cases")
    assert result.exit_code == 2 and f"qi run {SAMPLE}" in result.stderr


def test_tab_indentation_says_tab(qi, tmp_path):
    path = tmp_path / "T-1.yaml"
    path.write_text(case_yaml().replace("provider: CRC", "provider: CRC\nsentence_x:\n\ttype: x"))
    result = qi("validate", path)
    assert result.exit_code == 1
    assert f"{path}:4:1: tab_indentation: this line is indented with a tab" in result.stderr
    assert "indent with spaces" in result.stderr


@pytest.mark.parametrize("written", ["N/A", "n/a", "NA"])
def test_n_a_suggests_not_applicable(qi, tmp_path, written):
    path = tmp_path / "T-1.yaml"
    path.write_text(case_yaml(evidence={"3.1.a": written}))
    result = qi("validate", path)
    assert result.exit_code == 1
    assert f"invalid_value: '{written}' is not a known answer (write not_applicable)" in result.stderr


def test_an_answer_without_sources_warns(qi, tmp_path):
    path = tmp_path / "T-1.yaml"
    path.write_text(case_yaml(evidence={"3.1.a": "yes"}).replace(", sources: [oasys]", ""))
    result = qi("validate", path)
    assert result.exit_code == 0
    assert "missing_sources: warning: the answer on 3.1.a has no sources" in result.stderr


@pytest.mark.parametrize("position", ["before", "after"])
def test_logging_options_work_before_or_after_the_subcommand(qi, position):
    def call(*options):
        args = [*options, "validate", SAMPLE] if position == "before" else ["validate", SAMPLE, *options]
        return qi(*args)

    assert "validated" not in call().stderr
    assert "validated" in call("-v").stderr
    assert "validated" in call("--log-level", "info").stderr
    assert "validated" not in call("-v", "-q").stderr
    assert '"event": "validated"' in call("--log-format", "json", "--log-level", "debug").stderr


def test_run_runs_verify_and_rules_test_speak_json(qi, tmp_path):
    result = qi("run", SAMPLE, "--out", tmp_path / "out", "--db", tmp_path / "db", "--format", "json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["cases"] == 14 and summary["sample_id"] == "north-west-2016"
    assert [s["standard"] for s in summary["headline"]] == ["1", "2", "3", "4", "5"]
    assert set(summary["headline"][0]["groups"]) == {"all", "NPS", "CRC"}
    assert summary["reports"][0].endswith("report.json")
    verified = qi("runs", "verify", "--db", tmp_path / "db", "--format", "json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["verified"] is True
    tested = qi("rules", "test", "--format", "json")
    data = json.loads(tested.stdout)
    assert tested.exit_code == 0 and data["failed"] == 0 and data["passed"] == len(data["tests"]) > 0


def test_rules_test_writes_junit_with_failures(qi, tmp_path):
    (tmp_path / "rules" / "tests").mkdir(parents=True)
    (tmp_path / "rules" / "hmip-qi-adult-2.0.yaml").write_bytes((ROOT / "rules" / "hmip-qi-adult-2.0.yaml").read_bytes())
    failing = tmp_path / "rules" / "tests" / "tests.yaml"
    bundled = (ROOT / "rules" / "tests" / "criteria.yaml").read_text(encoding="utf-8")
    failing.write_text(bundled.replace("\"3.1\": sufficient", "\"3.1\": insufficient", 1), encoding="utf-8")
    assert bundled != failing.read_text(encoding="utf-8")
    result = qi("rules", "test", failing, "--junit", tmp_path / "junit.xml")
    assert result.exit_code == 1
    suites = ElementTree.parse(tmp_path / "junit.xml").getroot()
    assert suites.tag == "testsuites" and int(suites.get("failures")) >= 1
    failure = suites.find(".//testcase/failure")
    assert failure is not None and "expected 3.1 insufficient" in failure.text
    passing = qi("rules", "test", "--junit", tmp_path / "ok.xml")
    assert passing.exit_code == 0
    assert ElementTree.parse(tmp_path / "ok.xml").getroot().get("failures") == "0"


def test_progress_is_shown_while_validating_and_writing_reports(tmp_path):
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "120"}
    result = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "run", str(SAMPLE), "--out",
                             str(tmp_path / "out"), "--db", str(tmp_path / "db")], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "validating cases" in result.stderr and "writing reports" in result.stderr


def test_quick_benchmark_never_overwrites_the_full_results():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import benchmark
    finally:
        sys.path.remove(str(ROOT / "bench"))
    assert benchmark.output_path(False, None).endswith("bench/results.json")
    assert benchmark.output_path(True, None).endswith("bench/results-quick.json")
    with pytest.raises(SystemExit):
        benchmark.output_path(True, str(ROOT / "bench" / "results.json"))


def test_gitignore_help_and_readme(qi):
    assert "qi-reports/" in (ROOT / ".gitignore").read_text().splitlines()
    assert "$XDG_DATA_HOME" in qi("run", "--help").stdout
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "_QI_COMPLETE=bash_source" in readme and "qi cases import" in readme


def test_shell_completion_works(tmp_path):
    env = {**os.environ, "_QI_COMPLETE": "bash_complete", "COMP_WORDS": "qi cases ex", "COMP_CWORD": "2"}
    result = subprocess.run([sys.executable, "-c", "import cli; cli.cli.main(prog_name='qi')"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert "export" in result.stdout


def test_quiet_counts_input_warnings_instead_of_showing_them(qi, tmp_path):
    loud = qi("run", SAMPLE, "--out", tmp_path / "loud", "--db", tmp_path / "qi.db")
    shown = [line for line in loud.stderr.splitlines() if ": warning" in line or " warning:" in line
             or re.search(r":\d+:\d+: \w+:", line)]
    assert loud.exit_code == 0 and shown
    quiet = qi("run", SAMPLE, "--out", tmp_path / "quiet", "--db", tmp_path / "qi.db", "-q")
    assert quiet.exit_code == 0 and not re.search(r":\d+:\d+: \w+:", quiet.stderr)
    count = len(json.loads((tmp_path / "quiet" / "report.json").read_text())["warnings"])
    assert f"{count} warnings not shown (-q)" in quiet.stderr


def test_a_file_of_the_wrong_kind_is_named_with_its_article(qi, tmp_path):
    sample = tmp_path / "sample"
    shutil.copytree(SAMPLE, sample)
    shutil.copyfile(SAMPLE / "organisation" / "NPS.yaml", sample / "cases" / "NPS.yaml")
    refused = qi("validate", sample)
    assert refused.exit_code == 1 and "this is an organisation file" in refused.stderr
    assert "a organisation" not in refused.stderr


def test_rules_diff_counts_the_files_it_checked(qi, tmp_path):
    sample = tmp_path / "sample"
    shutil.copytree(SAMPLE, sample)
    case = sample / "cases" / "NW-001.yaml"
    case.write_text(case.read_text(encoding="utf-8").replace("case: NW-001\n", "case: NW-001\nbogus: 1\n"),
                    encoding="utf-8")
    rules = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"
    files = len([p for p in sample.rglob("*.yaml")])
    bad_case = qi("rules", "diff", rules, rules, "--sample", sample)
    assert bad_case.exit_code == 1 and f"checked {files + 2} files: 1 error" in bad_case.stderr
    (tmp_path / "bad.yaml").write_text("x: 1\n")
    bad_rules = qi("rules", "diff", tmp_path / "bad.yaml", rules, "--sample", SAMPLE)  # the sample is read too
    assert bad_rules.exit_code == 1 and f"checked {files + 2} files: 1 error" in bad_rules.stderr
