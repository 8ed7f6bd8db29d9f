"""Loading a rule set file: its document (positions, sha256), its framework, and the checks that
need no valid model (duplicate rule ids are reported even when other errors stop validation)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from engine.base.diagnostics import InputError
from engine.check import criteria as declarations
from engine.check import framework as frameworks
from engine.check import models, validate
from engine.check.rules import extending
from engine.check.rules.ruleset import RuleSet
from engine.load import source


@dataclasses.dataclass(frozen=True)
class LoadedRuleSet:
    """A validated rule set with the document it came from (positions, sha256) and its framework."""

    rules: RuleSet
    document: source.Document
    framework: models.Framework
    #: The framework file the rule set named, as found on the search path (None when the caller gave
    #: the framework).
    framework_path: Path | None = None

    @property
    def sha256(self) -> str:
        return self.document.sha256


def load(path: str | os.PathLike[str], framework: models.Framework | None = None) -> LoadedRuleSet:
    """Load and validate a rule set file against its framework. Raises InputError."""
    return from_document(source.load(path), framework)


def from_document(document: source.Document, framework: models.Framework | None = None) -> LoadedRuleSet:
    """Validate a loaded rule set document (its ``extends`` base merged in); its framework is the
    one it names unless given."""
    document = extending.resolve(document)
    if not isinstance(document.data, dict) or "rules" not in document.data:
        raise InputError([document.diagnostic((), "wrong_file_kind", "this is not a rule set",
                                              "a rule set has id, title, version, framework, facts and rules")])
    framework_path = None
    if framework is None:
        framework_path = frameworks.named_by(document)
        framework = frameworks.load(framework_path)
    document = declarations.expand(document, framework)
    try:
        return LoadedRuleSet(validate.to_model(document, RuleSet, framework), document, framework, framework_path)
    except InputError as error:
        # cross-rule checks run only on a valid model: give the ones that need no model in the same pass
        raise InputError(error.diagnostics + _raw_duplicates(document)) from None


def _raw_duplicates(document: source.Document) -> list:
    found = []
    seen: dict[str, int] = {}
    for section in ("rules", "organisation_rules", "sample_rules"):
        entries = document.data.get(section)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            rule_id = entry.get("id") if isinstance(entry, dict) else None
            if isinstance(rule_id, str):
                if rule_id in seen:
                    found.append(document.diagnostic((section, index, "id"), "duplicate_rule",
                                                     f"rule id {rule_id!r} is already used on line {seen[rule_id]}",
                                                     "give each rule its own id"))
                seen.setdefault(rule_id, document.where((section, index, "id"))[0])
    return found
