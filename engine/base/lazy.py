"""Heavy libraries imported when first used: scipy and statsmodels take over a second to import,
and most commands (validate, evaluate, explain, the workspace's pages) never compute a figure."""

from __future__ import annotations

import importlib
from types import ModuleType


class Module:
    """Stands for the module ``name``, importing it at the first attribute read."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str):
        if attribute.startswith("_"):  # not the module's: copying, pickling, introspection
            raise AttributeError(attribute)
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)
