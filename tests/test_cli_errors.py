"""CLI errors go through click's own exception types (``Failed`` and ``Invalid``, both
ClickException subclasses rendering qi's diagnostics), never an ad-hoc ``sys.exit`` in a command."""

from __future__ import annotations

import ast
import subprocess
import sys

import cli
from tests.conftest import ROOT


def test_only_the_entry_point_exits():
    tree = ast.parse((ROOT / "cli.py").read_text(encoding="utf-8"))
    exits = [node for function in ast.walk(tree) if isinstance(function, ast.FunctionDef)
             for node in ast.walk(function)
             if isinstance(node, ast.Call) and ast.unparse(node.func) in ("sys.exit", "exit", "ctx.exit")
             and function.name != "main"]
    assert not exits, [f"cli.py:{node.lineno}" for node in exits]


def test_invalid_input_is_a_click_exception_that_renders_the_diagnostics(tmp_path, capsys):
    bad = tmp_path / "BAD-1.yaml"
    bad.write_text("case: BAD-1\nprovider: NPZ\n", encoding="utf-8")
    try:
        cli.cli.main(["validate", str(bad)], standalone_mode=False)
    except cli.Failed as error:
        assert error.exit_code == 1 and isinstance(error, cli.click.ClickException)
    else:
        raise AssertionError("an invalid file passed validation")
    error = capsys.readouterr().err
    assert f"{bad}:2:11: unknown_value: 'NPZ' is not a known provider" in error


def test_as_a_user_runs_it(tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text("id: r\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "rules", "doc", str(bad)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"{bad}:1:1: wrong_file_kind: this is not a rule set" in done.stderr
    assert "Traceback" not in done.stderr and "Error:" not in done.stderr
    assert done.stderr.rstrip().endswith("checked 1 file: 1 error, 0 warnings")
