"""The command line as a user meets it: help, exit codes, stdout for data, stderr for the rest."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import cli
from tests.conftest import ROOT, SAMPLE


def test_every_command_has_help(qi):
    def walk(group, prefix):
        for name, command in group.commands.items():
            yield prefix + [name], command
            if hasattr(command, "commands"):
                yield from walk(command, prefix + [name])

    for path, command in walk(cli.cli, []):
        result = qi(*path, "--help")
        assert result.exit_code == 0 and command.help and "Usage:" in result.stdout, path


def test_usage_errors_exit_2(qi):
    assert qi("validate").exit_code == 2
    assert qi("nonsense").exit_code == 2
    assert qi("validate", "--format", "xml", SAMPLE).exit_code == 2
    assert qi("schema", "cases").exit_code == 2


@pytest.mark.parametrize("kind", ["case", "organisation", "sample", "framework"])
def test_schema_is_json_schema_with_vocabulary(qi, kind):
    result = qi("schema", kind)
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert all(p.get("description") or "$ref" in p or "anyOf" in p for p in schema["properties"].values())


def test_case_schema_lists_allowed_values(qi):
    schema = json.loads(qi("schema", "case").stdout)
    assert schema["properties"]["provider"]["enum"] == ["NPS", "CRC"]
    assert "domestic_abuse" in schema["properties"]["flags"]["items"]["enum"]
    evidence_keys = schema["properties"]["evidence"]["propertyNames"]["enum"]
    assert "3.1.a" in evidence_keys and "6.1.a" not in evidence_keys
    answer = schema["$defs"]["Evidence"]["properties"]["answer"]
    assert answer["enum"] == ["yes", "partly", "no", "not_applicable"]


def test_json_logs_go_to_stderr_and_stdout_stays_data(qi):
    result = qi("--log-format", "json", "--log-level", "info", "validate", "--format", "json", SAMPLE)
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["errors"] == 0 and report["checked"] == 19  # manifest, 14 cases, 2 organisations, 2 second markings
    log_lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(line["event"] == "validated" and line["level"] == "info" for line in log_lines)


def test_logs_never_carry_case_content(qi):
    result = qi("--log-level", "debug", "validate", SAMPLE)
    assert "OASys" not in result.stderr and "NW-0" not in result.stderr


def test_validate_output_is_deterministic(qi, tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("case: ../x\nprovider: NSP\n")
    first = qi("validate", "--format", "json", bad, SAMPLE).stdout
    assert first == qi("validate", "--format", "json", bad, SAMPLE).stdout


def test_console_script_runs_from_another_directory(tmp_path):
    """The installed entry point works from any working directory, and finds the bundled data."""
    result = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "framework", "show", "1.2"],
                            cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "The public is protected from harm" in result.stdout


def _plain(value):
    """YAML data as JSON would carry it (dates as text), for checking against a JSON Schema."""
    import datetime

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.isoformat() if isinstance(value, datetime.date) else value


@pytest.mark.parametrize("kind, paths", [
    ("case", sorted((SAMPLE / "cases").glob("*.yaml"))),
    ("organisation", sorted((SAMPLE / "organisation").glob("*.yaml"))),
    ("sample", [SAMPLE / "sample.yaml"]),
    ("rules", [ROOT / "rules" / "hmip-qi-adult-2.0.yaml"]),
    ("framework", [ROOT / "framework" / "hmip-qi-adult-2.0.yaml"]),
])
def test_bundled_files_validate_against_the_exported_schema(qi, kind, paths):
    """What an editor would check as people type agrees with qi on the bundled files."""
    import jsonschema

    from engine.load import source

    schema = json.loads(qi("schema", kind).stdout)
    for path in paths:
        jsonschema.validate(_plain(source.load(path).data), schema)


def test_schema_rejects_what_qi_rejects(qi):
    import jsonschema

    schema = json.loads(qi("schema", "case").stdout)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"case": "X-1", "provider": "NSP", "sentence": {"type": "custody", "start": "2016-01-01"},
                             "risk_of_serious_harm": "low"}, schema)


def test_validate_knows_every_kind_of_qi_file(qi):
    paths = [ROOT / "rules" / "hmip-qi-adult-2.0.yaml", ROOT / "framework" / "hmip-qi-adult-2.0.yaml",
             *sorted((ROOT / "rules" / "tests").glob("*.yaml")), *sorted((ROOT / "cases" / "profiles").glob("*.yaml")),
             SAMPLE / "sample.yaml", SAMPLE / "cases" / "NW-001.yaml", SAMPLE / "organisation" / "NPS.yaml"]
    result = qi("validate", *paths)
    assert result.exit_code == 0, result.stderr
    assert f"checked {len(paths)} files: 0 errors" in result.stderr


def test_every_command_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    def walk(group, prefix):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from walk(command, prefix + [name])
            else:
                yield " ".join(["qi", *prefix, name])

    missing = [command for command in walk(cli.cli, []) if command not in readme]
    assert missing == []
