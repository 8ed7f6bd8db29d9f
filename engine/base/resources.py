"""Where qi's bundled data lives: ``framework/``, ``rules/`` and ``cases/``.

In a source checkout they sit beside ``engine/``; an installed wheel carries them inside the
package as ``engine/_data/`` (see ``pyproject.toml``), so ``qi`` finds them from any directory.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # engine/


def data_dir(name: str) -> Path:
    """The bundled folder ``name`` (``framework``, ``rules`` or ``cases``)."""
    installed = _PACKAGE / "_data" / name
    return installed if installed.is_dir() else _PACKAGE.parent / name


def display(path: str | Path) -> str:
    """How to name a file in messages and outputs: bundled data by its path in the repository
    (``rules/…``), so outputs do not depend on where qi is installed; anything else as given."""
    text = str(path)
    if text == "-":
        return text
    absolute = Path(path).resolve()
    for name in ("framework", "rules", "cases"):
        root = data_dir(name).resolve()
        if absolute.is_relative_to(root):
            return str(Path(name) / absolute.relative_to(root))
    return text


def locate(path: str | Path) -> Path:
    """The file a name given by a user or recorded in a run stands for: the path itself when it
    exists, else — for a name as :func:`display` gives it (``rules/…``, ``framework/…``,
    ``cases/…``) — the bundled file of that name, so a name copied from a trace or a report opens
    wherever qi is installed. A name that is neither is returned unchanged (reading it then reports
    that it is missing)."""
    given = Path(path)
    if str(path) == "-" or os.path.lexists(given) or given.is_absolute() or not given.parts:
        return given
    head, *rest = given.parts
    if head in ("framework", "rules", "cases") and ".." not in rest:
        bundled = data_dir(head).joinpath(*rest)
        if os.path.lexists(bundled):
            return bundled
    return given
