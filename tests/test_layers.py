"""The layout is the pipeline: a stage may import only the stages before it (or itself).

engine/base → load → check → compile → evaluate → judge → aggregate → report → store → run →
tools → serve. An import against that order is an architecture defect, reported with file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parent.parent / "engine"
ORDER = ["base", "load", "check", "compile", "evaluate", "judge", "aggregate", "report", "store", "run", "tools", "serve"]


def _imports(path: Path):
    """(line, stage imported) for every import of an engine stage in the module."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "engine" and len(parts) > 1:
                yield node.lineno, parts[1]
                break


def _violations(root: Path = ENGINE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if len(relative.parts) < 2:
            continue
        stage = relative.parts[0]
        for line, imported in _imports(path):
            if imported not in ORDER:
                found.append(f"engine/{relative}:{line}: imports engine.{imported}, which is not a stage")
            elif ORDER.index(imported) > ORDER.index(stage):
                found.append(f"engine/{relative}:{line}: {stage} imports the later stage {imported}")
    return found


def test_every_module_lives_in_a_stage_folder():
    loose = [p.name for p in ENGINE.glob("*.py") if p.name != "__init__.py"]
    assert loose == []
    assert sorted(p.name for p in ENGINE.iterdir() if p.is_dir() and not p.name.startswith("_")) == sorted(ORDER)


def test_stages_import_only_earlier_stages():
    assert _violations() == []


def test_the_layer_check_catches_an_inversion(tmp_path):
    """The check itself can fail: a base module importing the store is reported with its line."""
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "bad.py").write_text("import json\nfrom engine.store import store\n")
    assert _violations(tmp_path) == ["engine/base/bad.py:2: base imports the later stage store"]


@pytest.mark.parametrize("stage", ORDER)
def test_each_stage_says_what_it_does(stage):
    doc = ast.get_docstring(ast.parse((ENGINE / stage / "__init__.py").read_text()))
    assert doc and len(doc) > 20
