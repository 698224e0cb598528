"""lxml, imported on first use.

Importing lxml costs about 10 ms; commands that never read or write XML
(``virtkit list``, ``dominfo``...) should not pay it. ``etree`` here stands
in for ``lxml.etree`` until an attribute is first read, then imports it.
"""

from __future__ import annotations

from typing import Any


class _LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Any = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            import importlib

            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)


#: Stands in for ``lxml.etree``.
etree: Any = _LazyModule("lxml.etree")
