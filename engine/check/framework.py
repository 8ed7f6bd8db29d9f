"""The frameworks qi knows: the bundled ``framework/*.yaml`` files, loaded and validated once."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from engine.base.diagnostics import InputError, did_you_mean
from engine.base.resources import data_dir
from engine.check import models, validate
from engine.load import source


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, mtime_ns: int, size: int) -> models.Framework:
    document = source.load(path)
    kind = validate.kind_of(document)
    if kind != "framework":
        raise InputError([document.diagnostic((), "wrong_file_kind", f"this is a {kind} file, not a framework",
                                              "give a framework file, e.g. framework/hmip-qi-adult-2.0.yaml")])
    return validate.to_model(document, "framework")


def load(path: str | os.PathLike[str]) -> models.Framework:
    """Load and validate one framework file (cached per file content). Raises InputError."""
    try:
        stat = os.stat(path)
    except OSError:
        return _load_cached.__wrapped__(str(path), 0, 0)  # reports unreadable_file
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size)


def bundled() -> dict[tuple[str, str], Path]:
    """The bundled framework files by (id, version), read from each file's own header."""
    found: dict[tuple[str, str], Path] = {}
    for path in sorted(data_dir("framework").glob("*.yaml")):
        framework = load(path)
        found[(framework.id, framework.version)] = path
    return found


def named_by(document: source.Document) -> Path:
    """The bundled framework file a document names with ``framework: {id, version}`` (a rule set,
    a sample manifest, a generation profile). Raises InputError (``unknown_framework``)."""
    named = document.data.get("framework") if isinstance(document.data, dict) else None
    known = bundled()
    if isinstance(named, dict) and (named.get("id"), named.get("version")) in known:
        return known[(named["id"], named["version"])]
    shown = f"{named.get('id')} {named.get('version')}" if isinstance(named, dict) else repr(named)
    raise InputError([document.diagnostic(("framework",), "unknown_framework",
                                          f"framework {shown} is not known to qi",
                                          did_you_mean(shown, [f"{i} {v}" for i, v in sorted(known)],
                                                       "known frameworks"))])


def default_path() -> Path:
    """The bundled framework used when nothing names one: the newest bundled version."""
    frameworks = bundled()
    newest = max(frameworks, key=lambda key: (key[0], [int(p) for p in key[1].split(".") if p.isdigit()]))
    return frameworks[newest]


def as_json(framework: models.Framework, node_id: str | None = None) -> dict:
    """The framework (or one standard, criterion or item of it) as the documented JSON shape.

    ``{id, version, released, title, standards: [{id, title, scope, criteria: [{id, title,
    items: [{id, kind, text}]}]}]}``; one node renders as its own subtree.
    """
    def item(i: models.Item, kind: str) -> dict:
        return {"id": i.id, "kind": kind, "text": i.text}

    def criterion(c: models.Criterion, kind: str) -> dict:
        return {"id": c.id, "title": c.title, "items": [item(i, kind) for i in c.items]}

    def standard(s: models.Standard) -> dict:
        return {"id": s.id, "title": s.title, "scope": s.scope, "item_kind": s.item_kind,
                "criteria": [criterion(c, s.item_kind) for c in s.criteria]}

    if node_id is None:
        return {"id": framework.id, "version": framework.version, "released": framework.released.isoformat(),
                "title": framework.title, "publisher": framework.publisher,
                "introduction": framework.introduction.model_dump(),
                "standards": [standard(s) for s in framework.standards],
                "vocabulary": framework.vocabulary.model_dump()}
    node = framework.find(node_id)
    kind = framework.standard_of(node_id).item_kind
    if isinstance(node, models.Standard):
        return standard(node)
    if isinstance(node, models.Criterion):
        return criterion(node, kind)
    return item(node, kind)


def as_text(framework: models.Framework, node_id: str | None = None, width: int = 100) -> str:
    """The framework tree (or one node's subtree) as indented, wrapped text."""
    import textwrap

    lines: list[str] = []
    kinds = {k.id: k.label for k in framework.item_kinds}

    def add(indent: int, label: str, text: str) -> None:
        prefix = " " * indent + label.ljust(7)
        lines.extend(textwrap.wrap(text, width=width, initial_indent=prefix,
                                   subsequent_indent=" " * len(prefix)) or [prefix])

    def criterion(c: models.Criterion, indent: int) -> None:
        add(indent, c.id, c.title)
        for i in c.items:
            add(indent + 2, i.id, i.text)

    def standard(s: models.Standard) -> None:
        add(0, s.id, f"{s.title}  [{s.scope}; items are {kinds.get(s.item_kind, s.item_kind).lower()}]")
        for c in s.criteria:
            criterion(c, 2)

    if node_id is None:
        lines.append(f"{framework.title}")
        lines.append(f"{framework.id} {framework.version}, released {framework.released.isoformat()}, "
                     f"{framework.publisher}")
        lines.append(f"Working model: {framework.introduction.working_model}")
        lines.append("")
        for s in framework.standards:
            standard(s)
    else:
        node = framework.find(node_id)
        if isinstance(node, models.Standard):
            standard(node)
        elif isinstance(node, models.Criterion):
            criterion(node, 0)
        else:
            add(0, node.id, node.text)
    return "\n".join(lines) + "\n"
