"""Text from input files shown safely: characters that can move a terminal's cursor, clear it,
hide text or reorder it (C0 and C1 controls, DEL, bidirectional overrides) made visible as escapes.

The load stage refuses these characters in every value (after YAML escapes such as ``"\\e"`` are
decoded); text views and diagnostics escape them as well, since a file name, an argument or a
stored run can still carry one.

>>> printable("NW-\\x1b[2J.yaml")
'NW-\\\\x1b[2J.yaml'
"""

from __future__ import annotations

import re

#: Bidirectional formatting characters ("Trojan Source"): they reorder how text is displayed.
BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
#: Characters no value qi reads may hold: C0 controls but tab and newline, carriage return, DEL,
#: C1 controls (U+0080–U+009F, e.g. U+009B, the one-byte CSI), line/paragraph separators and BIDI.
UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{BIDI}]")
#: The same, as met in a file's raw text, where carriage returns end lines.
UNSAFE_RAW = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029{BIDI}]")
#: Line breaks of any kind: refused in one-line values (a reviewer's name), which could otherwise
#: pass for a line of output.
NEWLINES = re.compile("[\n\r\x85\u2028\u2029]")
_SHOWN = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029{BIDI}]")
_SHOWN_KEEPING_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{BIDI}]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, lines: bool = False) -> str:
    """``text`` with every control, separator and bidi character written as an escape
    (``\\x1b``, ``\\u202e``); tabs are kept, and with ``lines`` newlines too (multi-line views)."""
    return (_SHOWN_KEEPING_LINES if lines else _SHOWN).sub(_escape, text)


def a(word: str) -> str:
    """``word`` with its indefinite article, as messages say it: "an organisation", "a case"."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
