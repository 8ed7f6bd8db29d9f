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
from engine.check.rules import extending, form
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
        reserved = reserved_shorthands(framework, framework_path)
        if reserved:
            raise InputError(reserved)
    document = declarations.expand(document, framework)
    try:
        return LoadedRuleSet(validate.to_model(document, RuleSet, framework), document, framework, framework_path)
    except InputError as error:
        # cross-rule checks run only on a valid model: give the ones that need no model in the same pass
        raise InputError(error.diagnostics + _raw_duplicates(document)) from None


def reserved_shorthands(framework: models.Framework, path: str | os.PathLike[str]) -> list:
    """A shorthand a framework declares under the key of one of qi's own conditions would never be
    read (qi's condition is): an error at the key, in the framework file."""
    own = {cls.key for cls in form.REGISTRY}
    taken = [(i, j, s.key) for i, f in enumerate(framework.vocabulary.context) for j, s in enumerate(f.shorthands)
             if s.key in own]
    if not taken:
        return []
    document = source.load(path)
    return [document.diagnostic(("vocabulary", "context", i, "shorthands", j, "key"), "reserved_key",
                                f"{key!r} is a condition of qi's own: rules writing it would never read this field",
                                "give the shorthand another key") for i, j, key in taken]


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
