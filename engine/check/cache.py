"""The validated-case cache: each case file parsed and validated once, found again by its content.

Reading a case file's YAML with positions and validating it costs more than judging it. An entry
holds what that produced — the positions of the file's nodes and the validated model — under a
key made of the sha256 of qi's version and engine code, of the framework file and of the case
file itself, so editing the case or the framework, or running other qi code, never finds a stale
entry. Only files that
validate get one; a file with problems is read afresh each time, to report them.

Entries are JSON, never pickles, so a planted entry cannot run code; on a hit the model is still
validated from its JSON against the framework, and the entry's first line is the sha256 of the
rest, so a changed or truncated entry is a miss (and removed), never trusted. The folder must be
the user's own and writable by nobody else, or the cache is not used: an entry is trusted as far
as the folder it is in, like the case files themselves. Entries are 0600, written through a
temporary file and a rename; its size is
bounded (least recently used entries go first) and ``qi cache info`` / ``qi cache clear`` manage
it. A cache that cannot be written (a read-only or full disk) only costs speed.

Beside the case entries, a diff keeps *evaluation* entries: the labels of the rules a rule set
fired on a case, keyed by the sha256 of qi's version, the rule set (bases included), the framework
file and the case file — a pure function of those — so trying change after change against one
baseline evaluates the baseline once.

Where: ``$QI_CACHE_DIR``, else ``$XDG_CACHE_HOME/qi``, else ``~/.cache/qi``; ``QI_CACHE=off``
turns it off; ``$QI_CACHE_MAX_MB`` bounds it (default 512).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from engine.base import logs
from engine.base import text as texts
from engine.check import models
from engine.load import source

FOLDER_VARIABLE = "QI_CACHE_DIR"
SWITCH_VARIABLE = "QI_CACHE"
LIMIT_VARIABLE = "QI_CACHE_MAX_MB"
DEFAULT_LIMIT_MB = 512
#: The entry format: part of every key, so a change of format never reads an old entry.
FORMAT = "1"
_SUFFIX = ".json"

log = logs.get(__name__)


def folder() -> Path | None:
    """The cache's folder of case entries, or None when the cache is off."""
    if os.environ.get(SWITCH_VARIABLE, "").strip().lower() in ("off", "0", "no", "false"):
        return None
    base = os.environ.get(FOLDER_VARIABLE) or str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qi")
    return Path(base) / "cases"


def limit_bytes() -> int:
    """The most the entries may take, from ``$QI_CACHE_MAX_MB`` (a bad value is the default)."""
    try:
        megabytes = float(os.environ.get(LIMIT_VARIABLE, DEFAULT_LIMIT_MB))
    except ValueError:
        megabytes = DEFAULT_LIMIT_MB
    if not math.isfinite(megabytes) or megabytes > 1024 * 1024 * 1024:  # nan, inf, or past any disk
        megabytes = DEFAULT_LIMIT_MB
    return max(0, int(megabytes * 1024 * 1024))


@functools.lru_cache(maxsize=32)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def framework_sha256(path: str | os.PathLike[str]) -> str:
    """The framework file's sha256 (read once while the file is unchanged)."""
    stat = os.stat(path)
    return _file_sha256(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1)
def _qi_version() -> str:
    """qi's version and a sha256 of the engine's own source files: a version number alone is
    shared by every build of it (a checkout run from source, an unbumped rebuild), and an entry
    made by different code must never be found."""
    from importlib import metadata

    try:
        version = metadata.version("qi-engine")
    except metadata.PackageNotFoundError:
        version = "0+source"
    digest = hashlib.sha256()
    root = Path(models.__file__).resolve().parent.parent  # the engine package
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{version}+{digest.hexdigest()[:24]}"


def key(framework_sha: str, file_sha: str) -> str:
    """The entry key of a case file (its sha256) under a framework file (its sha256)."""
    return hashlib.sha256(f"qi-case-cache {FORMAT} {_qi_version()} {framework_sha} {file_sha}".encode()).hexdigest()


def validated_case(path: str | os.PathLike[str], shown: str, framework: models.Framework,
                   framework_path: str | os.PathLike[str],
                   validate: Callable[[source.Document], Any]) -> tuple[source.Document, Any]:
    """The document and validated model of the case file at ``path`` (named ``shown``): from the
    cache when it holds this content under this framework, else read and checked by ``validate``
    (which raises InputError for a file that is not a valid case) and stored. Raises InputError."""
    raw = source.read(path, shown)
    where = folder()
    if where is not None and not _usable(where):
        where = None
    if where is None or len(raw) > source.MAX_FILE_BYTES or texts.UNSAFE.search(shown):
        document = source.loaded(path, shown, raw)
        return document, validate(document)
    file_sha = hashlib.sha256(raw).hexdigest()
    entry_key = key(framework_sha256(framework_path), file_sha)
    found = _read(where, entry_key, framework)
    if found is not None:
        marks, model = found
        return source.Document(shown, None, marks, file_sha, origin="" if str(path) == "-" else str(path)), model
    document = source.loaded(path, shown, raw)
    model = validate(document)
    _write(where, entry_key, document, model)
    return document, model


@functools.lru_cache(maxsize=8)
def _usable_folder(where: str) -> bool:
    base = Path(where).parent
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        stat = base.stat()
    except OSError as error:
        log.debug("cache_unusable", reason=error.strerror or type(error).__name__)
        return False
    if stat.st_uid != os.getuid() or stat.st_mode & 0o022:
        log.warning("cache_unusable", folder=str(base),
                    reason="not your own folder, or others may write to it: the cache is not used")
        return False
    return True


def _usable(where: Path) -> bool:
    """Whether the cache folder (``where``'s parent) may be used: the user's own, writable by
    nobody else (made 0700 if missing). An entry is trusted no further than the folder it is in."""
    return _usable_folder(str(where))


def _entry(where: Path, entry_key: str) -> Path:
    return where / entry_key[:2] / (entry_key + _SUFFIX)


def _read_body(where: Path, entry_key: str) -> tuple[Path, str] | None:
    """An entry's body, verified against the sha256 on its first line (a changed or truncated
    entry is removed and None returned)."""
    path = _entry(where, entry_key)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    digest, _, body = text.partition("\n")
    if hashlib.sha256(body.encode("utf-8")).hexdigest() != digest:
        log.debug("cache_entry_refused", entry=path.name, reason="its content does not match its sha256")
        _remove(path)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: pruned last
    return path, body


def _read(where: Path, entry_key: str, framework: models.Framework):
    found = _read_body(where, entry_key)
    if found is None:
        return None
    path, body = found
    try:
        marks_text, _, model_text = body.partition("\n")
        marks = {tuple(loc): source.Mark(*where_) for loc, *where_ in orjson.loads(marks_text)}
        model = models.model_of("case", framework).model_validate_json(model_text, context={"framework": framework})
    except Exception as error:  # a well-formed entry qi cannot use (it never should): read the file
        log.debug("cache_entry_refused", entry=path.name, reason=type(error).__name__)
        _remove(path)
        return None
    return marks, model


def _write(where: Path, entry_key: str, document: source.Document, model) -> None:
    marks = json.dumps([[list(loc), m.key_line, m.key_col, m.line, m.col, m.path] for loc, m in document.marks.items()],
                       separators=(",", ":"))
    _write_body(where, entry_key, marks + "\n" + model.model_dump_json(by_alias=True))


def _write_body(where: Path, entry_key: str, body: str) -> None:
    """Write an entry (the sha256 of its body, then the body) through a temporary file and a
    rename; a cache that cannot be written only costs speed."""
    path = _entry(where, entry_key)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".entry-", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(hashlib.sha256(body.encode("utf-8")).hexdigest() + "\n" + body)
            os.replace(temporary, path)
        except BaseException:
            _remove(Path(temporary))
            raise
    except OSError as error:
        log.debug("cache_not_written", reason=error.strerror or type(error).__name__)


# --- evaluations: the rules a rule set fires on a case -----------------------------------------------


def evaluations_folder() -> Path | None:
    """The folder of evaluation entries (beside the case entries), or None when the cache is off."""
    where = folder()
    return None if where is None else where.parent / "evaluations"


def _evaluation_key(ruleset_sha: str, framework_sha: str, file_sha: str) -> str:
    return hashlib.sha256(f"qi-fired {FORMAT} {_qi_version()} {ruleset_sha} {framework_sha} {file_sha}".encode()
                          ).hexdigest()


def fired(ruleset_sha: str, framework_path: str | os.PathLike[str], file_sha: str) -> list[str] | None:
    """The labels of the rules the rule set (its sha256, bases included) fired on the case file
    (its sha256) under the framework file, as stored by :func:`store_fired`; None when not stored.
    What a diff reuses of the old rule set's evaluation: a pure function of the three files."""
    where = evaluations_folder()
    if where is None or not _usable(where):
        return None
    found = _read_body(where, _evaluation_key(ruleset_sha, framework_sha256(framework_path), file_sha))
    if found is None:
        return None
    path, body = found
    try:
        labels = json.loads(body)
        if isinstance(labels, list) and all(isinstance(label, str) for label in labels):
            return labels
    except ValueError:
        pass
    _remove(path)
    return None


def store_fired(ruleset_sha: str, framework_path: str | os.PathLike[str], file_sha: str, labels: list[str]) -> None:
    """Keep the labels of the rules fired on a case (see :func:`fired`)."""
    where = evaluations_folder()
    if where is None or not _usable(where):
        return
    _write_body(where, _evaluation_key(ruleset_sha, framework_sha256(framework_path), file_sha),
                json.dumps(list(labels), separators=(",", ":")))


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


_HEX = frozenset("0123456789abcdef")


def _is_shard(name: str) -> bool:
    return len(name) == 2 and set(name) <= _HEX


def _is_entry(name: str) -> bool:
    stem = name[:-len(_SUFFIX)] if name.endswith(_SUFFIX) else ""
    return len(stem) == 64 and set(stem) <= _HEX


def _entries(where: Path) -> list[tuple[float, int, Path]]:
    """The cache's own entries in ``where``: files named by a 64-digit key in two-digit shard
    folders, as qi writes them. Nothing else in the folder is ever counted, pruned or cleared."""
    found = []
    if not where.is_dir() or where.is_symlink():
        return found
    for shard in os.scandir(where):
        if not _is_shard(shard.name) or not shard.is_dir(follow_symlinks=False):
            continue
        for entry in os.scandir(shard.path):
            if _is_entry(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    stat = entry.stat(follow_symlinks=False)
                    found.append((stat.st_mtime, stat.st_size, Path(entry.path)))
    return found


def _folders() -> list[Path]:
    """The folders of case and evaluation entries, when the cache is on and its folder usable."""
    where = folder()
    if where is None or not _usable(where):
        return []
    return [where, where.parent / "evaluations"]


def prune() -> int:
    """Remove the least recently used entries (case and evaluation entries alike) until the cache
    is within its limit; returns how many were removed."""
    entries = sorted((e for where in _folders() for e in _entries(where)), key=lambda e: (e[0], str(e[2])))
    total, budget, removed = sum(size for _, size, _ in entries), limit_bytes(), 0
    for _, size, path in entries:
        if total <= budget:
            break
        _remove(path)
        total -= size
        removed += 1
    return removed


def info() -> dict:
    """Where the cache is, whether it is used, how many case and evaluation entries it holds,
    their size and its limit."""
    where = folder()
    empty = {"entries": 0, "evaluations": 0, "bytes": 0, "limit_bytes": limit_bytes()}
    if where is None:
        return {"folder": None, "enabled": False, "usable": False, **empty}
    if not _usable(where):
        return {"folder": str(where), "enabled": True, "usable": False, **empty}
    cases, evaluations = (_entries(f) for f in _folders())
    return {"folder": str(where), "enabled": True, "usable": True, "entries": len(cases),
            "evaluations": len(evaluations), "bytes": sum(size for _, size, _ in cases + evaluations),
            "limit_bytes": limit_bytes()}


def clear() -> int:
    """Remove every entry, case and evaluation entries alike (and any temporary file an interrupted
    write left in a shard); returns how many entries were removed. Files qi did not write stay."""
    removed = 0
    for where in _folders():
        if not where.is_dir() or where.is_symlink():
            continue
        for shard in os.scandir(where):
            if not _is_shard(shard.name) or not shard.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(shard.path):
                if not entry.is_file(follow_symlinks=False):
                    continue
                if _is_entry(entry.name):
                    _remove(Path(entry.path))
                    removed += 1
                elif entry.name.startswith(".entry-") and entry.name.endswith(".tmp"):
                    _remove(Path(entry.path))
            with contextlib.suppress(OSError):
                os.rmdir(shard.path)  # only when empty
    return removed
