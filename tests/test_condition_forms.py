"""The registry of condition forms: every form is complete and documented, and a new form is one
new file — proved by dropping a form into a copy of the engine and using it end to end."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from engine.check import rules
from engine.check.rules import form
from tests.conftest import ROOT

LEAVES = [cls for cls in form.REGISTRY if not issubclass(cls, form.Combinator)]


@pytest.mark.parametrize("cls", form.REGISTRY, ids=lambda cls: cls.key)
def test_every_form_describes_and_lowers_itself(cls):
    assert cls.levels, f"{cls.key} says where it may appear"
    assert cls.describe is not form.Form.describe and cls.lower is not form.Form.lower
    assert cls.__doc__ and cls.__doc__ != form.Form.__doc__


@pytest.mark.parametrize("cls", [c for c in LEAVES if c.levels & {form.CASE, form.ORGANISATION}],
                         ids=lambda cls: cls.key)
def test_every_case_form_says_what_it_saw(cls):
    assert cls.seen is not form.Form.seen


def test_every_form_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("Conditions — each a mapping with one key:"):readme.index("**How rules run.**")]
    sample = readme[readme.index("Sample conditions:"):readme.index("Rating bands are never hard-coded")]
    for key in rules.forms(form.CASE):
        assert re.search(rf"`{key}:", table), f"{key} is not in the README's rule-language table"
    for key in rules.forms(form.SAMPLE):
        assert f"`{key}`" in sample or f"`{key}:" in table, f"sample condition {key} is not in the README"


NOTED = '''
"""``noted``: the inspector wrote a note on the item."""

from __future__ import annotations

import functools
from typing import ClassVar

from engine.check.rules.form import CASE, Form
from engine.check.rules.terms import ItemId


def _has_note(item, model):
    entry = model.evidence.get(item)
    return bool(entry and entry.note)


def _words(item, value):
    return f"a note on {item}" if value else f"no note on {item}"


class NotedCondition(Form):
    """The inspector wrote a note on the item."""

    key: ClassVar[str] = "noted"
    levels: ClassVar[frozenset[str]] = frozenset({CASE})
    noted: ItemId

    def items(self):
        return [(("noted",), self.noted)]

    def describe(self, bindings=None):
        return f"there is a note on {self.noted}"

    def lower(self, low):
        attribute = low.extra("noted_" + low.names.safe(self.noted), (True, False),
                              functools.partial(_has_note, self.noted), functools.partial(_words, self.noted))
        return low.test(attribute, [True])

    def seen(self, view):
        entry = view.model.evidence.get(self.noted)
        return {f"{self.noted} note": entry.note if entry else None}
'''

USE = '''
import json, pathlib
from click.testing import CliRunner
import cli
rules = pathlib.Path("r.yaml")
rules.write_text("""id: r
title: T
version: "1"
framework: {id: hmip-qi-adult, version: "2.0"}
rules:
  - {id: with-note, title: T, rationale: x, cites: [3.1.a], when: {noted: 3.1.a},
     then: [{finding: {criterion: "3.1", value: sufficient}}]}
  - {id: without-note, title: T, rationale: x, cites: [3.1.a], when: {not: {noted: 3.1.a}},
     then: [{finding: {criterion: "3.1", value: insufficient}}]}
""")
case = pathlib.Path("C-1.yaml")
case.write_text("case: C-1\\nprovider: NPS\\nsentence: {type: licence, requirements: [], start: 2016-01-04}\\n"
                "risk_of_serious_harm: low\\nmappa: null\\nflags: []\\ndiversity: {}\\n"
                "evidence:\\n  3.1.a: {answer: \\"yes\\", note: Seen in OASys.}\\n")
run = lambda *args: CliRunner().invoke(cli.cli, list(args))
result = json.loads(run("evaluate", str(case), "--rules", str(rules), "--format", "json").stdout)
node = result["findings"]["3.1"]["trace"]["because"][0]["condition"]
print(json.dumps({"value": result["findings"]["3.1"]["value"], "text": node["text"], "seen": node["seen"],
                  "doc": "there is a note on 3.1.a" in run("rules", "doc", str(rules)).stdout,
                  "schema": "noted" in run("schema", "rules").stdout,
                  "lint": run("rules", "lint", str(rules)).stderr,
                  "bad": run("validate", str(rules).replace("r.yaml", "bad.yaml")).exit_code}))
'''


def test_a_new_form_is_one_new_file(tmp_path):
    copy = tmp_path / "qi"
    for name in ("engine", "framework", "rules"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "cli.py", copy / "cli.py")
    (copy / "engine" / "check" / "rules" / "conditions" / "noted.py").write_text(textwrap.dedent(NOTED))
    (copy / "bad.yaml").write_text("id: r\ntitle: T\nversion: '1'\nframework: {id: hmip-qi-adult, version: '2.0'}\n"
                                   "rules:\n  - {id: a, title: T, rationale: x, when: {noted: 9.9.z},\n"
                                   "     then: [{finding: {criterion: '3.1', value: sufficient}}]}\n")
    done = subprocess.run([sys.executable, "-c", USE], cwd=copy, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    import json
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["value"] == "sufficient"
    assert seen["text"] == "there is a note on 3.1.a" and seen["seen"] == {"3.1.a note": "Seen in OASys."}
    assert seen["doc"] and seen["schema"] and seen["bad"] == 1
    assert "conflicting_rules" not in seen["lint"] and "rule_never_fires" not in seen["lint"]
