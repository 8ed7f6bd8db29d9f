"""Shared fixtures: run the CLI as a user would, and locate the bundled data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "cases" / "north-west-2016"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def qi():
    """Run ``qi ARGS...``; returns click's Result with separate stdout and stderr."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(cli.cli, [str(a) for a in args], input=input, catch_exceptions=False)

    return run


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A writable copy of the example sample, to break in a test."""
    target = tmp_path / "sample"
    shutil.copytree(SAMPLE, target)
    return target
