"""Output formats for reports. Each takes a ``Report`` and returns text.

``FORMATS`` imports a format's module when it is first asked for: the text format needs Rich
(about 40 ms to import), which a ``--format json`` run in CI never uses."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from custody.report import Report

_MODULES = {"text": "text", "json": "json_format", "markdown": "markdown", "sarif": "sarif"}


class _Formats(Mapping[str, "Callable[[Report], str]"]):
    """Format name → its module's ``render``."""

    def __getitem__(self, name: str) -> Callable[[Report], str]:
        render: Callable[[Report], str] = importlib.import_module(
            f"custody.formats.{_MODULES[name]}"
        ).render
        return render

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


FORMATS: Mapping[str, Callable[[Report], str]] = _Formats()
