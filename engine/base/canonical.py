"""Canonical JSON: the one way qi encodes data it hashes or compares byte for byte.

Sorted keys, no whitespace, UTF-8 kept as is. Run ids, the audit store's hash chain, compiled
ruleset names and the spooled case results (each line of trace.jsonl) are all hashed over these
bytes, so two encodings of the same data can never give two hashes.

Encoded by orjson (in C: a case's full result with its traces encodes about seven times faster
than with the standard library, byte for byte the same on qi's data); dates and other values JSON
has no type for are written as their ``str``.
"""

from __future__ import annotations

import hashlib

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def canonical(data) -> bytes:
    """The canonical bytes of ``data``.

    >>> canonical({"b": 1, "a": "é"})
    b'{"a":"\\xc3\\xa9","b":1}'
    """
    return orjson.dumps(data, option=_OPTIONS, default=str)


def line(data) -> bytes:
    """One line of a JSON Lines file (trace.jsonl): the canonical bytes and a newline."""
    return orjson.dumps(data, option=_OPTIONS | orjson.OPT_APPEND_NEWLINE, default=str)


def canonical_sha256(data) -> str:
    """sha256 of :func:`canonical`."""
    return hashlib.sha256(canonical(data)).hexdigest()
