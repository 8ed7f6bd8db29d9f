"""State is explicit: importing a module changes nothing elsewhere, and stages hand each other
what they need instead of reaching for it."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT

_KINDS = """
from engine.check import models
before = sorted(models.KINDS)
import cli  # imports every stage and tool
from engine.tools import files
print(before == sorted(models.KINDS), sorted(files.SCHEMAS))
"""


def test_importing_modules_does_not_fill_in_the_file_kinds():
    result = subprocess.run([sys.executable, "-c", _KINDS], cwd=ROOT, capture_output=True, text=True, check=True)
    unchanged, schemas = result.stdout.split(" ", 1)
    assert unchanged == "True"
    for kind in ("case", "framework", "organisation", "profile", "rules", "ruletests", "sample"):
        assert repr(kind) in schemas


def test_schema_offers_the_kinds_later_stages_define(qi):
    import json
    for kind, field in (("ruletests", "tests"), ("profile", "reference_prefix"), ("rules", "rules")):
        result = qi("schema", kind)
        assert result.exit_code == 0 and field in json.loads(result.stdout)["properties"]


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_traces_do_not_depend_on_how_samples_are_loaded():
    assert not any(name.startswith("engine.check.sample") for name in _imports(ROOT / "engine/judge/trace.py"))


def test_evaluation_holds_no_module_level_engine_state():
    """The host, what is registered on it and the assert under way belong to an Engine object."""
    tree = ast.parse((ROOT / "engine/evaluate/evaluate.py").read_text())
    assigned = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
    assert not {"_host", "_recorder", "_registered", "_sessions"} & assigned
    assert not any(isinstance(node, ast.Global) for node in ast.walk(tree))
