"""Canonical JSON: the one way qi encodes data it hashes or compares byte for byte.

Sorted keys, no whitespace, UTF-8 kept as is. Run ids, the audit store's hash chain, compiled
ruleset names and the spooled case results are all hashed over these bytes, so two encodings of
the same data can never give two hashes.
"""

from __future__ import annotations

import hashlib
import json

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical(data) -> bytes:
    """The canonical bytes of ``data``.

    >>> canonical({"b": 1, "a": "é"})
    b'{"a":"\\xc3\\xa9","b":1}'
    """
    return _ENCODER.encode(data).encode()


def canonical_sha256(data) -> str:
    """sha256 of :func:`canonical`, encoded a piece at a time (no copy of a large report)."""
    digest = hashlib.sha256()
    for chunk in _ENCODER.iterencode(data):
        digest.update(chunk.encode())
    return digest.hexdigest()
