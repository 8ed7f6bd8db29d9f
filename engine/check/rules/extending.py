"""A rule set that extends another: ``extends: <file>`` names a base rule set, and the file adds to
it, so that an option (such as rating bands) is a small file beside the default, not a copy of it.

The merge is plain and the same for every key:

* list sections (facts, criteria, rules, organisation_rules, sample_rules, ...): the base's entries,
  then the extending file's;
* ``sample``: the base's settings, each key the extending file gives replacing the base's;
* any other key (id, title, version, description, ...): the extending file's value replaces the base's.

Every node keeps its position in the file it came from, so a problem anywhere is reported at
``file:line:col`` in that file. The merged document's sha256 covers both files' bytes, in order.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from engine.base import resources
from engine.base.diagnostics import InputError
from engine.load import source

KEY = "extends"
#: Sections whose entries are added to the base's.
LISTS = ("facts", "criteria", "organisation_criteria", "rules", "organisation_rules", "sample_rules")
#: Sections whose keys are merged into the base's.
MAPPINGS = ("sample",)
#: Longest chain of extending files (a chain is short: an option on a default).
MAX_DEPTH = 4


def resolve(document: source.Document, _chain: tuple[str, ...] = ()) -> source.Document:
    """The document with its ``extends`` base merged in (recursively); unchanged without one.
    Raises InputError at the ``extends`` key for a missing, unreadable, circular or non-rule-set base."""
    data = document.data
    if not isinstance(data, dict) or KEY not in data:
        return document
    named = data[KEY]
    if not isinstance(named, str) or not named.strip():
        raise InputError([document.diagnostic((KEY,), "invalid_value", "extends must name a rule set file",
                                              "e.g. extends: hmip-qi-adult-2.0.yaml (relative to this file)")])
    here = document.location.parent if document.origin else Path(".")
    base_path = _base(here, named)
    chain = _chain + (str(document.location.resolve()) if document.origin else "-",)
    if str(base_path.resolve()) in chain:
        raise InputError([document.diagnostic((KEY,), "circular_extends",
                                              f"{named} extends this file again (directly or through others)",
                                              "a base rule set must not extend the files built on it")])
    if len(chain) > MAX_DEPTH:
        raise InputError([document.diagnostic((KEY,), "extends_too_deep",
                                              f"more than {MAX_DEPTH} rule sets extend one another",
                                              "extend the default rule set directly")])
    try:
        base = source.load(base_path)
    except InputError as error:
        raise InputError([document.diagnostic((KEY,), "unreadable_base", f"cannot read the base rule set {named}",
                                              d.message) for d in error.diagnostics[:1]]
                         + list(error.diagnostics)) from None
    if not isinstance(base.data, dict) or "rules" not in base.data:
        raise InputError([document.diagnostic((KEY,), "wrong_file_kind", f"{named} is not a rule set",
                                              "extends names a rule set file (one with rules:)")])
    return merge(resolve(base, chain), document)


def _base(here: Path, named: str) -> Path:
    """The base file ``extends`` names: beside the extending file; else, for a bundled rule set
    named by its file name or its place (``rules/…``), the bundled file, wherever qi is installed —
    so a team's own rule set extends the default from any folder."""
    beside = here / named
    if os.path.lexists(beside) or Path(named).is_absolute():
        return beside
    for candidate in (resources.locate(named), resources.data_dir("rules") / named):
        if os.path.lexists(candidate):
            return candidate
    return beside


def merge(base: source.Document, child: source.Document) -> source.Document:
    """``child`` laid over ``base`` as the module says, every position kept with its file."""
    data = dict(base.data)
    marks = {loc: (mark if mark.path else _in(mark, base.path)) for loc, mark in base.marks.items()}
    for key, value in child.data.items():
        if key == KEY:
            continue
        own = {loc: mark for loc, mark in child.marks.items() if loc[:1] == (key,)}
        if key in LISTS and isinstance(value, list) and isinstance(data.get(key), list):
            offset = len(data[key])
            data[key] = data[key] + value
            for loc, mark in own.items():
                if len(loc) > 1 and isinstance(loc[1], int):
                    marks[(key, loc[1] + offset, *loc[2:])] = mark
        elif key in MAPPINGS and isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
            for name in value:
                marks = {loc: m for loc, m in marks.items() if loc[:2] != (key, name)}
            marks.update({loc: mark for loc, mark in own.items() if len(loc) > 1})
        else:
            data[key] = value
            marks = {loc: m for loc, m in marks.items() if loc[:1] != (key,)}
            marks.update(own)
    marks[()] = child.marks.get((), source.Mark(1, 1, 1, 1))
    digest = hashlib.sha256(f"{base.sha256}\n{child.sha256}\n".encode()).hexdigest()
    return source.Document(child.path, data, marks, digest, list(base.problems) + list(child.problems),
                           origin=child.origin)


def _in(mark: source.Mark, path: str) -> source.Mark:
    return source.Mark(mark.key_line, mark.key_col, mark.line, mark.col, path)
