"""Rule-test results as JUnit XML (``qi rules test --junit FILE``), the format CI systems read:
one ``testsuite`` per test file, one ``testcase`` per test, a ``failure`` with the same text
``qi rules test`` prints, and each diagnostic (a test file that could not run) as an ``error``."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from engine.base.diagnostics import Diagnostic, sort
from engine.tools import spreadsheet


def document(outcomes: list, problems: list[Diagnostic]) -> ElementTree.ElementTree:
    suites = ElementTree.Element("testsuites", name="qi rules test")
    by_file: dict[str, list] = {}
    for outcome in outcomes:
        by_file.setdefault(outcome.path, []).append(outcome)
    for diagnostic in sort(problems):
        by_file.setdefault(diagnostic.path, [])
    total = failures = errors = 0
    for path in sorted(by_file):
        suite = ElementTree.SubElement(suites, "testsuite", name=path)
        file_failures = 0
        for outcome in by_file[path]:
            case = ElementTree.SubElement(suite, "testcase", name=outcome.note, classname=path,
                                          file=path, line=str(outcome.line))
            if not outcome.passed:
                file_failures += 1
                failure = ElementTree.SubElement(case, "failure", message="; ".join(outcome.failures))
                failure.text = outcome.render()
        file_errors = [d for d in problems if d.path == path and d.severity == "error"]
        for diagnostic in sort(file_errors):
            case = ElementTree.SubElement(suite, "testcase", name=f"{diagnostic.code} at line {diagnostic.line}",
                                          classname=path, file=path, line=str(diagnostic.line))
            error = ElementTree.SubElement(case, "error", message=diagnostic.message, type=diagnostic.code)
            error.text = diagnostic.render()
        count = len(by_file[path]) + len(file_errors)
        suite.set("tests", str(count))
        suite.set("failures", str(file_failures))
        suite.set("errors", str(len(file_errors)))
        total, failures, errors = total + count, failures + file_failures, errors + len(file_errors)
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    suites.set("errors", str(errors))
    ElementTree.indent(suites)
    return ElementTree.ElementTree(suites)


def write(outcomes: list, problems: list[Diagnostic], path: str | os.PathLike[str]) -> Path:
    """Write the JUnit XML file atomically."""
    tree = document(outcomes, problems)
    return spreadsheet.atomic_write(Path(path), lambda handle: tree.write(handle, encoding="utf-8",
                                                                           xml_declaration=True), binary=True)
