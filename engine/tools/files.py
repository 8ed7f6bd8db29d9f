"""Any file qi reads, checked as ``qi validate`` checks it: data files through the check stage,
rule sets compiled as well (a rule set must also compile to be usable), generation profiles
through their own loader."""

from __future__ import annotations

import os
from pathlib import Path

from engine.check import models, rules, sample, validate
from engine.compile import compile as compiler
from engine.load import source
from engine.tools import generate, ruletest

#: Every kind of file qi reads, by the name ``qi schema`` knows it: the check stage's kinds, and the
#: kinds later stages define.
SCHEMAS = {**models.KINDS, "rules": rules.RuleSet, "ruletests": ruletest.RuleTestFile, "profile": generate.Profile}


def check_any(path: str | os.PathLike[str], framework_path: str | os.PathLike[str] | None = None) -> sample.Loaded:
    """Load and validate one file of any kind. Raises InputError with every problem found."""
    document = source.load(path)
    kind = validate.kind_of(document)
    if kind == "rules":
        loaded = rules.from_document(document)
        compiler.compile_rules(loaded)
        return sample.Loaded(document, loaded.rules)
    if kind == "profile":
        return sample.Loaded(document, generate.load_profile(path)[0])
    if kind == "ruletests":
        return sample.Loaded(document, validate.to_model(document, ruletest.RuleTestFile))
    return sample.check_document(document, framework_path, location=Path(path))
