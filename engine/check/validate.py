"""Check stage: turn loaded documents into validated models, reporting problems with positions.

pydantic checks shape and vocabulary; this module tells which kind of file a document is, maps
each pydantic error back to the line and column it came from, and words it as a qi diagnostic
with a stable code and a hint.
"""

from __future__ import annotations

import datetime
import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.base.diagnostics import Diagnostic, InputError, did_you_mean
from engine.check import models
from engine.load import source

#: How to recognise each kind of file by its top-level keys, tried in order.
_SIGNATURES: list[tuple[str, str]] = [
    ("ruletests", "tests"),
    ("profile", "reference_prefix"),
    ("rules", "rules"),
    ("rules", "extends"),
    ("case", "case"),
    ("organisation", "organisation"),
    ("framework", "standards"),
    ("sample", "period"),
]

_EXPECTED = {
    "string_type": "text", "int_type": "a whole number", "float_type": "a number", "bool_type": "true or false",
    "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "date_type": "a date (YYYY-MM-DD)", "date_parsing": "a date (YYYY-MM-DD)", "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "a date without a time (YYYY-MM-DD)", "none_required": "nothing",
}


def kind_of(document: source.Document) -> str:
    """The kind of qi file this document is. Raises InputError when it cannot be told."""
    data = document.data
    if not isinstance(data, dict):
        raise InputError([document.diagnostic((), "not_a_mapping", f"the file holds {describe(data)}, not a mapping",
                                              "a qi file is a mapping of keys to values, e.g. 'case: NW-001'")])
    for kind, key in _SIGNATURES:
        if key in data and kind != "sample":
            return kind
    if Path(document.path).name in ("sample.yaml", "sample.yml") or "period" in data:
        return "sample"
    raise InputError([document.diagnostic((), "unknown_file_kind", "qi cannot tell what kind of file this is",
                                          "a case file starts with 'case:', organisation evidence with "
                                          "'organisation:', a sample manifest is named sample.yaml")])


def to_model(document: source.Document, kind: str | type[BaseModel], framework: models.Framework | None = None,
             *, data: Any = None, at: tuple = ()):
    """Validate ``document`` as ``kind`` (a kind of :data:`models.KINDS`, or the model class of a kind
    a later stage defines); returns the model. Raises InputError listing every problem.

    With ``data`` and ``at``: validate ``data`` (built from the part of the document at ``at``, e.g.
    a test's case with defaults filled in) and report problems at their place in the document."""
    model_class = kind if isinstance(kind, type) else models.model_of(kind, framework)
    subject = document.data if data is None else data
    try:
        model = model_class.model_validate(subject, context={"framework": framework})
        found: list[Diagnostic] = []
    except ValidationError as error:
        model = None
        found = [_diagnostic(document, model_class, e, subject, at) for e in error.errors()]
    if document.problems and data is None:
        # a value the reader already rejected is not reported a second time by the model
        reported = {(d.line, d.col) for d in document.problems}
        found = document.problems + [d for d in found if (d.line, d.col) not in reported]
    if found:
        raise InputError(found)
    return model


def _diagnostic(document: source.Document, model_class: type[BaseModel], error: dict, data: Any = None,
                at: tuple = ()) -> Diagnostic:
    """Word one pydantic error as a qi diagnostic at the position it came from."""
    relative = _document_loc(document.data if data is None else data, tuple(error["loc"]))
    loc = at + relative
    kind = error["type"]
    found = error.get("input")
    context = error.get("ctx") or {}
    if kind in ("unknown_condition", "unknown_conclusion"):
        return _unknown_form(document, loc, kind, found, context["conditions"].split(", "))
    if loc and loc[-1] == "[key]" and "hint" in context:  # qi's own check of a mapping key
        return document.diagnostic(loc[:-1], kind, error["msg"], context["hint"], key=True)
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
    if kind == "missing":
        field = loc[-1]
        return document.diagnostic(loc[:-1], "missing_field", f"required field '{field}' is missing",
                                   f"add '{field}:' here")
    if kind == "extra_forbidden":
        allowed = _fields_at(model_class, relative[:-1])
        return document.diagnostic(loc, "unknown_field", f"unknown field '{loc[-1]}'",
                                   did_you_mean(loc[-1], allowed, "fields here"), key=True)
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", context.get("expected", ""))
        return document.diagnostic(loc, "invalid_value", f"{_show(found)} is not allowed here", did_you_mean(found, allowed))
    if kind in _EXPECTED:
        hint = "write it in quotes" if kind == "string_type" and isinstance(found, (int, float, bool)) else ""
        hint = hint or ("add the value, or remove the key" if found is None else f"write {_EXPECTED[kind]}")
        return document.diagnostic(loc, "wrong_type", f"expected {_EXPECTED[kind]}, found {describe(found)}", hint)
    if kind == "string_pattern_mismatch":
        return document.diagnostic(loc, "invalid_value", f"{_show(found)} is not in the expected form",
                                   f"expected text matching {context.get('pattern', '')}")
    if kind in ("too_short", "string_too_short"):
        return document.diagnostic(loc, "invalid_value", "this must not be empty", "add at least one entry")
    if "hint" in context:  # raised by qi's own validators: the type is already a qi code
        return document.diagnostic(loc, kind, error["msg"], context["hint"])
    return document.diagnostic(loc, "invalid_value", error["msg"].lower(), "")


def _document_loc(data: Any, loc: tuple) -> tuple:
    """Drop the parts of a pydantic location that are not in the document (union tags such as
    ``function-after[...]`` or a tagged union's tag), keeping ``[key]`` markers."""
    kept: list = []
    node: Any = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if part == models.DECLARED_TAG:
            continue  # the tag of a key the framework declares: not in the document
        if part == "[key]" or not isinstance(node, (dict, list)):
            kept.append(part)  # a key marker, or below a leaf
        elif isinstance(node, dict) and part in node:
            kept.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            kept.append(part)
            node = node[part]
        elif last:
            kept.append(part)  # a missing or unknown field
    return tuple(kept)


def _unknown_form(document: source.Document, loc: tuple, kind: str, found: Any, names: list[str]) -> Diagnostic:
    what = "condition" if kind == "unknown_condition" else "conclusion"
    code = kind
    if isinstance(found, dict) and len(found) == 1:
        key = next(iter(found))
        return document.diagnostic(loc, code, f"unknown {what} {key!r}", did_you_mean(key, names, f"{what}s"))
    if isinstance(found, dict) and found:
        keys = ", ".join(map(str, found))
        return document.diagnostic(loc, code, f"a {what} has exactly one key; found {len(found)}: {keys}",
                                   "combine conditions with all: or any:" if what == "condition"
                                   else "write each conclusion as its own list entry")
    return document.diagnostic(loc, code, f"expected a {what}, found {describe(found)}",
                               f"a {what} is a mapping with one key: " + ", ".join(names[:8]) + ", …")


def describe(value: Any) -> str:
    """Words for what a YAML value turned out to be, for messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {_show(value)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime.date):
        return f"the date {value.isoformat()}"
    return type(value).__name__


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…'"


def _fields_at(model_class: type[BaseModel], loc: tuple) -> list[str]:
    """The field names allowed at ``loc`` in ``model_class``, for 'did you mean' hints."""
    annotation: Any = model_class
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    model = _model_in(annotation)
    return list(model.model_fields) if model else []


def _step(annotation: Any, part: Any) -> Any:
    model = _model_in(annotation)
    if model is not None and isinstance(part, str) and part in model.model_fields:
        return model.model_fields[part].annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _step(typing.get_args(annotation)[0], part)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            stepped = _step(option, part)
            if stepped is not None:
                return stepped
        return None
    if origin is list:
        return typing.get_args(annotation)[0]
    if origin is dict:
        return typing.get_args(annotation)[1]
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated or origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            found = _model_in(option)
            if found is not None:
                return found
    return None
