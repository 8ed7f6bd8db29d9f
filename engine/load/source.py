"""Load stage: read a YAML file safely into plain data, keeping the line and column of every node.

qi builds its data straight from the YAML event stream (libyaml's parser through PyYAML, fast and
non-recursive), resolving plain scalars by the rules of YAML's core schema (ruamel.yaml's resolver, so an unquoted
``yes`` is the word, not a boolean), so that it can enforce its limits while it reads: file size, nesting depth, total nodes after alias expansion (which stops
"billion laughs" alias bombs), duplicate keys, and one document per file. Every problem becomes a
:class:`~engine.base.diagnostics.Diagnostic`; nothing here raises anything else.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import hashlib
import math
import os
import stat
import sys
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver
from yaml import events
from yaml.error import MarkedYAMLError, YAMLError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it

from engine.base import resources, text as texts
from engine.base.diagnostics import Diagnostic, InputError

#: Largest file qi reads, in bytes. Case files are a few kilobytes; a rule set tens of kilobytes.
MAX_FILE_BYTES = 1024 * 1024
#: Deepest nesting of mappings and sequences accepted.
MAX_DEPTH = 32
#: Most nodes in one document, counting every alias expansion.
MAX_NODES = 50_000

Loc = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")}
_COLLECTION_TAGS = {f"{_TAG}map", f"{_TAG}seq", f"{_TAG}omap"}
_RESOLVER = VersionedResolver(version=(1, 2))


@dataclasses.dataclass(frozen=True, slots=True)
class Mark:
    """Where a node is: its key (for mapping values) and its value, 1-based."""

    key_line: int
    key_col: int
    line: int
    col: int
    #: The file the node is in, when it is not the document's own (a rule set's ``extends`` base).
    path: str | None = None


@dataclasses.dataclass
class Document:
    """A loaded YAML file: plain data, where each node came from, and the file's sha256."""

    path: str
    data: Any
    marks: dict[Loc, Mark]
    sha256: str
    #: Problems found while reading that still let the data be checked further (a duplicate key,
    #: a malformed date); the check stage reports them with its own.
    problems: list[Diagnostic] = dataclasses.field(default_factory=list)
    #: Where the file was read from, for reading what it names (a base rule set, its sample folder).
    #: ``path`` is how messages and outputs name it (``rules/…`` for bundled data), which need not
    #: be a path that opens from the current directory. Empty when it was not read from a file.
    origin: str = ""

    @property
    def location(self) -> Path:
        """The real path of the file, for resolving paths written in it (relative to its folder)."""
        return Path(self.origin or self.path)

    def slim(self) -> Document:
        """The document once validated: positions of top-level keys and of their entries (what
        traces cite), without the raw data — so a large sample stays small in memory."""
        return Document(self.path, None, {loc: mark for loc, mark in self.marks.items() if len(loc) <= 2},
                        self.sha256, origin=self.origin)

    def where(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """Line and column of ``loc``, or of its nearest ancestor that exists in the file."""
        loc = tuple(loc)
        while loc not in self.marks and loc:
            loc = loc[:-1]
        mark = self.marks.get(loc)
        if mark is None:
            return (1, 1)
        return (mark.key_line, mark.key_col) if key else (mark.line, mark.col)

    def file_of(self, loc: Loc) -> str:
        """The file ``loc`` (or its nearest ancestor) is in: the document's own, or the base file
        it came from when the document merges several (a rule set's ``extends``)."""
        loc = tuple(loc)
        while loc not in self.marks and loc:
            loc = loc[:-1]
        mark = self.marks.get(loc)
        return mark.path if mark is not None and mark.path else self.path

    def at(self, loc: Loc) -> str:
        """``file:line`` of ``loc``, as traces and listings cite it."""
        return f"{self.file_of(loc)}:{self.where(loc)[0]}"

    def diagnostic(self, loc: Loc, code: str, message: str, hint: str = "", *,
                   key: bool = False, severity: str = "error") -> Diagnostic:
        line, col = self.where(loc, key=key)
        return Diagnostic(self.file_of(loc), line, col, code, message, hint, severity)  # type: ignore[arg-type]


def load(path: str | os.PathLike[str], display: str | None = None) -> Document:
    """Read and load one YAML file (``-`` is standard input). Raises InputError.

    Only regular files are read: a FIFO, device or socket is refused from its metadata, without
    being opened (opening a FIFO blocks; reading a device may never end)."""
    shown = display or resources.display(path)
    return loaded(path, shown, read(path, shown))


def read(path: str | os.PathLike[str], shown: str) -> bytes:
    """The bytes of one file (``-`` is standard input), as :func:`load` reads them (at most one
    byte over the limit, regular files only). Raises InputError."""
    try:
        if str(path) == "-":
            return sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        return _read_regular(path, shown)
    except OSError as error:
        raise InputError([_unreadable(shown, error)]) from None


def loaded(path: str | os.PathLike[str], shown: str, raw: bytes) -> Document:
    """The document of bytes :func:`read` read from ``path``. Raises InputError."""
    document = parse(raw, shown)
    document.origin = "" if str(path) == "-" else str(path)
    return document


def _read_regular(path: str | os.PathLike[str], shown: str) -> bytes:
    _refuse_special(os.stat(path).st_mode, shown)
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with open(descriptor, "rb") as handle:
        _refuse_special(os.fstat(descriptor).st_mode, shown)  # replaced since it was looked at
        return handle.read(MAX_FILE_BYTES + 1)


_SPECIAL = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
            (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _refuse_special(mode: int, shown: str) -> None:
    if stat.S_ISDIR(mode):
        raise InputError([Diagnostic(shown, 1, 1, "unreadable_file", "cannot read the file: it is a folder",
                                     "give a YAML file, or the sample folder to qi run")])
    for test, what in _SPECIAL:
        if test(mode):
            raise InputError([Diagnostic(shown, 1, 1, "not_a_regular_file", f"this is {what}, not a file; "
                                         "qi did not open it", "give a regular YAML file")])
    if not stat.S_ISREG(mode):
        raise InputError([Diagnostic(shown, 1, 1, "not_a_regular_file", "this is not a regular file; "
                                     "qi did not open it", "give a regular YAML file")])


def _unreadable(shown: str, error: OSError) -> Diagnostic:
    if error.errno == errno.ELOOP:
        return Diagnostic(shown, 1, 1, "symlink_loop", "the path is a loop of symbolic links",
                          "point the link at a real file")
    reason = error.strerror or type(error).__name__
    return Diagnostic(shown, 1, 1, "unreadable_file", f"cannot read the file: {reason.lower()}",
                      "check the path and its permissions")


def parse(raw: bytes, path: str) -> Document:
    """Load YAML bytes into a Document. Raises InputError with every problem found."""
    if len(raw) > MAX_FILE_BYTES:
        raise InputError([Diagnostic(path, 1, 1, "file_too_large",
                                     f"the file is larger than {MAX_FILE_BYTES // 1024} KiB",
                                     "split it, or check that it is the file you meant")])
    unsafe = texts.UNSAFE.search(str(path))
    if unsafe:  # a path is shown in every report and trace: it must not reorder or hide text either
        raise InputError([Diagnostic(path, 1, 1, "control_character",
                                     f"the file's path holds control character U+{ord(unsafe.group()):04X}",
                                     "rename the file or its folder")])
    text = _decode(raw, path)
    if not text.strip() or all(line.lstrip().startswith("#") or not line.strip() for line in text.splitlines()):
        raise InputError([Diagnostic(path, 1, 1, "empty_file", "the file is empty",
                                     "write the document, or remove the file")])
    _reject_control_characters(text, path)
    builder = _Builder(path)
    try:
        data = builder.build(yaml.parse(text, Loader=_Loader))
    except _Abort:
        builder.fatal = True  # a limit was passed; the builder recorded why
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (error.problem or error.context or "invalid YAML").strip()
        if "\\t" in problem or "'\t'" in problem or _tab_indented(text, line):
            raise InputError([Diagnostic(path, line, col, "tab_indentation",
                                         "this line is indented with a tab, which YAML does not allow",
                                         "indent with spaces instead of the tab")]) from None
        if "nesting depth" in problem:  # libyaml's own limit, met before qi's
            raise InputError([Diagnostic(path, line, col, "too_deep",
                                         f"the document is nested more than {MAX_DEPTH} levels deep",
                                         "flatten the structure")]) from None
        raise InputError([Diagnostic(path, line, col, "yaml_syntax", f"invalid YAML: {problem}",
                                     "check indentation, colons and quotes near here")]) from None
    except YAMLError as error:
        raise InputError([Diagnostic(path, 1, 1, "yaml_syntax", f"invalid YAML: {error}",
                                     "check the file is YAML")]) from None
    if builder.fatal or builder.unsafe:
        raise InputError(builder.problems)
    return Document(path, data, builder.marks, hashlib.sha256(raw).hexdigest(), builder.problems)


def _tab_indented(text: str, line: int) -> bool:
    """Whether line ``line`` (1-based), or the one before it, starts with a tab."""
    lines = text.splitlines()
    return any(0 < n <= len(lines) and lines[n - 1][:len(lines[n - 1]) - len(lines[n - 1].lstrip())].count("\t")
               for n in (line, line - 1))


def _decode(raw: bytes, path: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise InputError([Diagnostic(path, line, col, "not_utf8",
                                     f"byte 0x{raw[error.start]:02x} is not valid UTF-8",
                                     "save the file as UTF-8")]) from None


def _reject_control_characters(text: str, path: str) -> None:
    problems = []
    for match in texts.UNSAFE_RAW.finditer(text):
        before = text[: match.start()]
        line = before.count("\n") + 1
        col = match.start() - (before.rfind("\n") + 1) + 1
        problems.append(Diagnostic(path, line, col, "control_character",
                                   f"control character U+{ord(match.group()):04X} is not allowed",
                                   "delete it; it is invisible in most editors"))
        if len(problems) > 100:
            break
    if problems:
        raise InputError(problems)


class _Builder:
    """Builds plain data and marks from parser events, enforcing depth, size and key rules."""

    def __init__(self, path: str):
        self.path = path
        self.marks: dict[Loc, Mark] = {}
        self.problems: list[Diagnostic] = []
        #: anchor -> (value, nodes it expands to, levels of nesting it adds where it is used)
        self.anchors: dict[str, tuple[Any, int, int]] = {}
        self.nodes = 0
        self.deepest = 0  # the deepest nesting reached so far, counting alias expansions
        self.fatal = False
        self.unsafe = False  # a value holds a control character: never passed on

    def _problem(self, event: events.Event, code: str, message: str, hint: str) -> None:
        mark = event.start_mark
        self.problems.append(Diagnostic(self.path, mark.line + 1, mark.column + 1, code, message, hint))

    def build(self, stream) -> Any:
        """Consume the whole event stream; returns the single document's data."""
        documents = []
        iterator = iter(stream)
        for event in iterator:
            if isinstance(event, events.DocumentStartEvent):
                if documents:
                    self._problem(event, "multiple_documents", "the file holds more than one YAML document",
                                  "keep one document per file; remove the '---' line")
                    self.fatal = True
                    return documents[0]
                self.anchors.clear()
                documents.append(self._node(next(iterator), iterator, (), None, 1))
        return documents[0] if documents else None

    def _count(self, weight: int, event: events.Event) -> bool:
        self.nodes += weight
        if self.nodes > MAX_NODES:
            self._problem(event, "too_many_nodes",
                          f"the document expands to more than {MAX_NODES} nodes",
                          "remove repeated aliases ('*name'); qi files never need that many")
            raise _Abort
        return True

    def _node(self, event, iterator, loc: Loc, key_event, depth: int) -> Any:
        mark = event.start_mark
        key_mark = key_event.start_mark if key_event is not None else mark
        self.marks[loc] = Mark(key_mark.line + 1, key_mark.column + 1, mark.line + 1, mark.column + 1)
        if isinstance(event, events.AliasEvent):
            if event.anchor not in self.anchors:
                self._problem(event, "yaml_syntax", f"unknown alias '*{event.anchor}'", "define the anchor first")
                return None
            value, weight, height = self.anchors[event.anchor]
            self._count(weight, event)
            if height and depth + height - 1 > MAX_DEPTH:
                self._problem(event, "too_deep", f"the document is nested more than {MAX_DEPTH} levels deep "
                              f"once the alias '*{event.anchor}' is expanded", "flatten the structure")
                raise _Abort
            self.deepest = max(self.deepest, depth + height - 1)
            return value
        before = self.nodes
        self._count(1, event)
        height = 0
        if isinstance(event, events.ScalarEvent):
            value = self._scalar(event)
        elif isinstance(event, (events.MappingStartEvent, events.SequenceStartEvent)):
            if depth > MAX_DEPTH:
                self._problem(event, "too_deep", f"the document is nested more than {MAX_DEPTH} levels deep",
                              "flatten the structure")
                raise _Abort
            outer, self.deepest = self.deepest, depth
            if event.tag and event.tag not in _COLLECTION_TAGS:
                self._problem(event, "yaml_tag", f"the tag '{event.tag}' is not supported", "remove the tag")
            if isinstance(event, events.MappingStartEvent):
                value = self._mapping(iterator, loc, depth)
            else:
                value = self._sequence(iterator, loc, depth)
            height = self.deepest - depth + 1
            self.deepest = max(outer, self.deepest)
        else:  # pragma: no cover - the parser never yields other events here
            raise _Abort
        if getattr(event, "anchor", None):
            self.anchors[event.anchor] = (value, self.nodes - before, height)
        return value

    def _mapping(self, iterator, loc: Loc, depth: int) -> dict:
        result: dict = {}
        first_seen: dict = {}
        while True:
            key_event = next(iterator)
            if isinstance(key_event, events.MappingEndEvent):
                return result
            if not isinstance(key_event, events.ScalarEvent):
                self._problem(key_event, "yaml_complex_key", "a mapping key must be a plain value",
                              "write the key as text")
                self._node(key_event, iterator, loc + ("<key>",), None, depth + 1)
                self._node(next(iterator), iterator, loc + ("<key>",), None, depth + 1)
                continue
            key = self._scalar(key_event)
            if isinstance(key, (dict, list)) or key is None:
                key = "" if key is None else str(key)
            if key in first_seen:
                line = first_seen[key]
                self._problem(key_event, "duplicate_key", f"the key '{key}' appears twice in this mapping",
                              f"it was first given on line {line}; keep one")
                self._node(next(iterator), iterator, loc + ("<duplicate>",), None, depth + 1)
                continue
            first_seen[key] = key_event.start_mark.line + 1
            result[key] = self._node(next(iterator), iterator, loc + (key,), key_event, depth + 1)

    def _sequence(self, iterator, loc: Loc, depth: int) -> list:
        result: list = []
        while True:
            event = next(iterator)
            if isinstance(event, events.SequenceEndEvent):
                return result
            result.append(self._node(event, iterator, loc + (len(result),), None, depth + 1))

    def _scalar(self, event: events.ScalarEvent) -> Any:
        text = event.value
        unsafe = texts.UNSAFE.search(text)  # after escapes such as "\e", "\0" or "\x9b" are decoded
        if unsafe:
            self._problem(event, "control_character",
                          f"the value holds control character U+{ord(unsafe.group()):04X}",
                          "delete it, or the escape that writes it; it can hide or rewrite text on screen")
            self.unsafe = True
        if event.tag and event.tag != "!":
            tag = event.tag
            if tag not in _SCALAR_TAGS:
                self._problem(event, "yaml_tag", f"the tag '{tag}' is not supported", "remove the tag")
                return text
        elif event.style or (event.implicit and not event.implicit[0]):
            return text  # quoted: always text
        else:
            tag = str(_RESOLVER.resolve(ScalarNode, text, (True, False)))
        try:
            return _construct(tag, text)
        except ValueError:
            name = tag.removeprefix(_TAG).replace("timestamp", "date")
            self._problem(event, "invalid_value", f"'{text}' is not a valid {name}",
                          "correct it, or quote it to keep it as text")
            return text


class _Abort(Exception):
    """Stops building when a limit is passed; the problem is already recorded."""


def _construct(tag: str, text: str) -> Any:
    name = tag.removeprefix(_TAG)
    if name == "null":
        return None
    if name == "bool":
        return text.lower() == "true"
    if name == "int":
        digits = text.replace("_", "")
        try:
            return int(digits, 0)
        except ValueError:
            return int(digits, 10)
    if name == "float":
        lowered = text.lower().replace("_", "")
        if lowered.endswith(".inf"):
            return -math.inf if lowered.startswith("-") else math.inf
        if lowered == ".nan":
            return math.nan
        return float(lowered)
    if name == "timestamp":
        if len(text) == 10:
            return datetime.date.fromisoformat(text)
        return datetime.datetime.fromisoformat(text.replace(" ", "T", 1))
    return text
