"""The frameworks qi knows, loaded and validated once per file content.

A document names its framework by id and version (``framework: {id, version}`` in a rule set, a
sample manifest or a generation profile); the file is found along a search path, first match wins:

1. files given with ``--framework FILE`` (:func:`prefer`), for this process;
2. the folder of the document naming it (a sample folder, a rule set's folder);
3. each folder (or file) of ``$QI_FRAMEWORK_PATH`` (separated by ``os.pathsep``);
4. the frameworks bundled with qi.

So a methodology team keeps its own framework file beside its samples or rule sets, or in a shared
folder on ``$QI_FRAMEWORK_PATH``, with no change to qi. A run records the sha256 of the file used.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from engine.base import text as texts
from engine.base.diagnostics import InputError, did_you_mean
from engine.base.resources import data_dir
from engine.check import models, validate
from engine.load import source


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, mtime_ns: int, size: int) -> models.Framework:
    document = source.load(path)
    kind = validate.kind_of(document)
    if kind != "framework":
        raise InputError([document.diagnostic((), "wrong_file_kind", f"this is {texts.a(kind)} file, not a framework",
                                              "give a framework file, e.g. framework/hmip-qi-adult-2.0.yaml")])
    return validate.to_model(document, "framework")


def load(path: str | os.PathLike[str]) -> models.Framework:
    """Load and validate one framework file (cached per file content). Raises InputError."""
    try:
        stat = os.stat(path)
    except OSError:
        return _load_cached.__wrapped__(str(path), 0, 0)  # reports unreadable_file
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size)


#: The environment variable naming further folders (or files) to find frameworks in.
PATH_VARIABLE = "QI_FRAMEWORK_PATH"
_preferred: list[Path] = []


def prefer(path: str | os.PathLike[str]) -> None:
    """Put a framework file first on the search path for this process (``--framework FILE``)."""
    path = Path(path)
    if path not in _preferred:
        _preferred.insert(0, path)


def forget_preferred() -> None:
    """Forget the files :func:`prefer` put first (each command starts from the plain search path)."""
    _preferred.clear()


def search_path(near: Path | None = None) -> list[Path]:
    """Where frameworks are looked for, in order: preferred files, ``near`` (a folder), the entries
    of ``$QI_FRAMEWORK_PATH``, the bundled folder."""
    entries = list(_preferred) + ([near] if near is not None else [])
    entries += [Path(e) for e in os.environ.get(PATH_VARIABLE, "").split(os.pathsep) if e.strip()]
    return entries + [data_dir("framework")]


def available(near: Path | None = None) -> dict[tuple[str, str], Path]:
    """Every framework file along the search path by (id, version), read from each file's own
    header; the first found of an id and version wins. A YAML file that is not a framework is
    passed over; one that is a framework but invalid raises its diagnostics."""
    found: dict[tuple[str, str], Path] = {}
    for entry in search_path(near):
        for path in _candidates(entry):
            framework = _framework_at(path)
            if framework is not None:
                found.setdefault((framework.id, framework.version), path)
    return found


def _candidates(entry: Path) -> list[Path]:
    if entry.is_file():
        return [entry]
    if entry.is_dir():
        return sorted(p for p in entry.glob("*.yaml") if p.is_file())
    return []


def _framework_at(path: Path) -> models.Framework | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    if not _is_framework_file(str(path), stat.st_mtime_ns, stat.st_size):
        return None
    return load(path)  # a framework file, so its problems are reported


@functools.lru_cache(maxsize=256)
def _is_framework_file(path: str, mtime_ns: int, size: int) -> bool:
    """Whether a YAML file on the search path is a framework file (by its signature), cached per
    file content: a folder of rule sets is read once, not at every lookup."""
    try:
        return validate.kind_of(source.load(path)) == "framework"
    except InputError:
        return False  # unreadable, not YAML, or not a kind qi knows: not a framework file


def bundled() -> dict[tuple[str, str], Path]:
    """The bundled framework files by (id, version), read from each file's own header."""
    found: dict[tuple[str, str], Path] = {}
    for path in sorted(data_dir("framework").glob("*.yaml")):
        framework = load(path)
        found[(framework.id, framework.version)] = path
    return found


def named_by(document: source.Document) -> Path:
    """The framework file a document names with ``framework: {id, version}`` (a rule set, a sample
    manifest, a generation profile), found along the search path from the document's own folder.
    Raises InputError (``unknown_framework``)."""
    named = document.data.get("framework") if isinstance(document.data, dict) else None
    return find(named, document.location.parent if document.origin else None,
                lambda code, message, hint: document.diagnostic(("framework",), code, message, hint))


def find(named, near: Path | None, diagnostic) -> Path:
    """The file of framework ``named`` (``{id, version}``) along the search path from ``near``;
    ``diagnostic(code, message, hint)`` makes the error when there is none."""
    known = available(near)
    if isinstance(named, dict) and (named.get("id"), named.get("version")) in known:
        return known[(named["id"], named["version"])]
    shown = f"{named.get('id')} {named.get('version')}" if isinstance(named, dict) else repr(named)
    looked = ", ".join(str(e) for e in search_path(near)[:-1]) or f"no folder (set ${PATH_VARIABLE})"
    raise InputError([diagnostic("unknown_framework", f"framework {shown} is not known to qi",
                                 did_you_mean(shown, [f"{i} {v}" for i, v in sorted(known)], "known frameworks")
                                 + f"; looked in {looked} and the bundled frameworks")])


def default_path() -> Path:
    """The bundled framework used when nothing names one: the most recently released of those that
    are not illustrations (an illustration is used only when named)."""
    frameworks = {path: load(path) for path in bundled().values()}
    return max((f.released, f.id, f.version, path) for path, f in frameworks.items() if not f.illustration)[3]


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
