"""Shared fixtures: run the CLI as a user would, and locate the bundled data."""

from __future__ import annotations

import getpass
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "cases" / "north-west-2016"
#: Who a store without accounts records decisions and sign-offs under: the operating-system user.
ME = getpass.getuser()


def local(name: str = ME):
    """An operating-system user, as the review API takes one on a store without accounts."""
    from engine.store import accounts

    return accounts.Actor(name, None, accounts.OS_USER)
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _own_home(tmp_path_factory, monkeypatch):
    """Every test has a data folder of its own: a command run without --db records into a store in
    it, never the user's own (~/.local/share/qi/qi.db), and a validated-case cache of its own; no
    key, framework path or cache setting in the developer's environment leaks into a test."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))
    monkeypatch.setenv("QI_CACHE_DIR", str(tmp_path_factory.mktemp("cache") / "qi"))
    for variable in ("QI_DB", "QI_STORE_KEY", "QI_STORE_KEY_FILE", "QI_FRAMEWORK_PATH", "QI_CACHE",
                     "QI_CACHE_MAX_MB"):
        monkeypatch.delenv(variable, raising=False)


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


def sql(db, *statements, parameters: tuple = ()) -> None:
    """Run SQL on a store as someone with the database would: each statement, then commit
    (tests/stores.py, on either backend)."""
    from tests import stores

    stores.sql(db, *statements, parameters=parameters)


RULES_HEADER = """id: test-rules
title: Rules under test
version: "0.1"
framework: {id: hmip-qi-adult, version: "2.0"}
"""


@pytest.fixture
def compile_rules(tmp_path):
    """Compile rule-set YAML text (a header is added unless the text has an id)."""
    from engine.check import rules
    from engine.compile import compile as compiler

    counter = iter(range(1_000_000))

    def build(text: str):
        path = tmp_path / f"rules-{next(counter)}.yaml"
        path.write_text(text if text.startswith("id:") else RULES_HEADER + text, encoding="utf-8")
        return compiler.compile_rules(rules.load(path))

    return build


def case_yaml(reference: str = "T-1", provider: str = "CRC", sentence_type: str = "community_order",
              requirements=(), risk: str = "medium", mappa: str = "null", flags=(), diversity: str = "{}",
              evidence: dict | None = None) -> str:
    """A valid case file with only what a test cares about; evidence maps item -> answer."""
    lines = [f"case: {reference}", f"provider: {provider}",
             f"sentence: {{type: {sentence_type}, requirements: [{', '.join(requirements)}], start: 2016-01-04}}",
             f"risk_of_serious_harm: {risk}", f"mappa: {mappa}", f"flags: [{', '.join(flags)}]",
             f"diversity: {diversity}", "evidence:"]
    for item, answer in (evidence or {}).items():
        lines.append(f'  {item}: {{answer: "{answer}", note: "Note on {item}.", sources: [oasys]}}')
    if not evidence:
        lines[-1] = "evidence: {}"
    return "\n".join(lines) + "\n"


@pytest.fixture
def make_case(tmp_path):
    """Write a case file built by case_yaml and load it against a compiled rule set."""
    from engine.run import pipeline

    def build(compiled, **fields):
        path = tmp_path / f"{fields.get('reference', 'T-1')}.yaml"
        path.write_text(case_yaml(**fields), encoding="utf-8")
        return pipeline.load_case(path, compiled)

    return build


def walk(node):
    """Every mapping in a JSON tree (a trace, a result), parents first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def case_results(out: Path) -> list[dict]:
    """Every case's full result in a published report set: trace.jsonl's lines expanded with
    report.json's rule table, as a reader of the two files does."""
    import json

    from engine.judge import trace

    table = json.loads((out / "report.json").read_text(encoding="utf-8"))["traces"]["rules"]
    return [trace.expand(json.loads(line), table) for line in (out / "trace.jsonl").read_text(encoding="utf-8").splitlines()]
