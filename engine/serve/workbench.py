"""The "try a change" bench: a rule set edited in the browser, linted, tested and diffed on a
sample — always on temporary copies, never over the bundled rules.

Each try works in a fresh temporary folder holding copies of the bundled rule sets (with the
edited one replaced by the text from the browser) and of the bundled rule tests, so the tests'
relative ``rules:`` paths reach the edited copy. Messages name files as the bundled ones
(``rules/…``), not the temporary folder. The folder is removed when the try ends.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
from pathlib import Path

from engine.base import diagnostics
from engine.base.diagnostics import Diagnostic, InputError
from engine.base.resources import data_dir, display
from engine.check import rules
from engine.tools import diff as differ
from engine.tools import lint, ruletest

#: durable_rules keeps one host per process, and its recorder is not thread-safe: one try at a time.
_engine = threading.Lock()


def rule_sets() -> dict[str, Path]:
    """The bundled rule sets a try can start from, by file name."""
    return {path.name: path for path in sorted(data_dir("rules").glob("*.yaml"))}


def bundled_samples(extra: list[Path] = ()) -> dict[str, Path]:
    """Samples a change can be tried on: the bundled examples and any given to ``qi serve
    --sample``, by a name shown in the form (a folder holding sample.yaml)."""
    found: dict[str, Path] = {}
    for folder in [*sorted(p for p in data_dir("cases").iterdir() if (p / "sample.yaml").is_file()), *extra]:
        found.setdefault(display(folder), Path(folder))
    return found


@dataclasses.dataclass
class Outcome:
    """What a try found: lint diagnostics; rule-test results and coverage; the diff (or why not)."""

    diagnostics: list[Diagnostic]
    tests: list[ruletest.Outcome] | None = None
    test_problems: list[Diagnostic] = dataclasses.field(default_factory=list)
    coverage: str = ""
    diff: dict | None = None
    diff_problems: list[Diagnostic] = dataclasses.field(default_factory=list)
    unchanged: bool = False

    @property
    def errors(self) -> bool:
        return diagnostics.has_errors(self.diagnostics)

    @property
    def failed(self) -> list[ruletest.Outcome]:
        return [t for t in self.tests or [] if not t.passed]


def attempt(name: str, text: str, sample_dir: Path | None) -> Outcome:
    """Lint the edited rule set ``name``; if it has no errors, run its rule tests and diff it
    against the bundled one on ``sample_dir``. Raises KeyError for an unknown rule set."""
    original = rule_sets()[name]
    with _engine, tempfile.TemporaryDirectory(prefix="qi-try-") as scratch:
        folder = Path(scratch) / "rules"
        edited = _copies(folder, name, text)
        rename = _renamer(folder)
        outcome = Outcome([rename(d) for d in diagnostics.sort(lint.lint(edited))])
        if outcome.errors:
            return outcome
        tests = [path for path in ruletest.discover([folder / "tests"]) if _tests_rules(path) == edited.resolve()]
        measured = ruletest.Coverage()
        outcome.tests, problems = ruletest.run_all(tests, measured) if tests else ([], [])
        for test in outcome.tests:
            test.path = rename.text(test.path)
        outcome.test_problems = [rename(d) for d in problems]
        outcome.coverage = rename.text(measured.table()) if tests else ""
        if sample_dir is not None:
            try:
                outcome.diff = differ.compare(original, edited, sample_dir)
                outcome.diff["new"] = {**outcome.diff["new"], "file": f"{display(original)} (your edit)"}
                outcome.unchanged = differ.unchanged(outcome.diff)
            except InputError as error:
                outcome.diff_problems = [rename(d) for d in diagnostics.sort(error.diagnostics)]
        return outcome


def _copies(folder: Path, name: str, text: str) -> Path:
    """Copies of the bundled rule sets and their tests in ``folder``, ``name`` holding ``text``."""
    folder.mkdir(mode=0o700)
    for path in rule_sets().values():
        shutil.copyfile(path, folder / path.name)
    tests = data_dir("rules") / "tests"
    if tests.is_dir():
        shutil.copytree(tests, folder / "tests")
    edited = folder / name
    descriptor = os.open(edited, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return edited


def _tests_rules(path: Path) -> Path | None:
    """The rule set a rule-test file names, or None if the file cannot be read."""
    try:
        _, tests = ruletest.load(path)
    except InputError:
        return None
    return (path.parent / tests.rules).resolve()


class _renamer:
    """Messages name the temporary copies as the bundled files they stand for."""

    def __init__(self, folder: Path) -> None:
        self.prefixes = sorted({str(folder), str(folder.resolve())}, key=len, reverse=True)
        self.bundled = display(data_dir("rules"))

    def text(self, value: str) -> str:
        for prefix in self.prefixes:
            value = value.replace(prefix, self.bundled)
        return value

    def __call__(self, diagnostic: Diagnostic) -> Diagnostic:
        return dataclasses.replace(diagnostic, path=self.text(diagnostic.path), message=self.text(diagnostic.message),
                                   hint=self.text(diagnostic.hint))


def load_text(name: str) -> str:
    """The bundled rule set's text, as the form starts from."""
    return rule_sets()[name].read_text(encoding="utf-8")


def handbook_source(name: str) -> rules.LoadedRuleSet:
    return rules.load(rule_sets()[name])
