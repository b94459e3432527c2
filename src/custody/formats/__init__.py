"""Output formats for reports. Each takes a ``Report`` and returns text."""

from __future__ import annotations

from collections.abc import Callable

from custody.formats import json_format, markdown, sarif, text
from custody.report import Report

FORMATS: dict[str, Callable[[Report], str]] = {
    "text": text.render,
    "json": json_format.render,
    "markdown": markdown.render,
    "sarif": sarif.render,
}
