"""Timestamp parsing shared by the readers: every time becomes an aware UTC ``datetime``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 text (``Z`` or offset; naive means UTC), or devpi's ``[Y, M, D, h, m, s]``."""
    if isinstance(value, list | tuple):
        if 3 <= len(value) <= 7 and all(isinstance(v, int) for v in value):
            parts = [*value[:6], 0, 0, 0][:6]
            try:
                return datetime(
                    parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], tzinfo=UTC
                )
            except (TypeError, ValueError, OverflowError):
                return None
        return None
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip())
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: out of range once moved to UTC
        return None
