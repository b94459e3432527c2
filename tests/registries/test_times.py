"""Timestamps from registry documents: anything that is not a representable time is no time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from custody.registries.times import parse_time


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T05:04:05+02:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02 03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ([2026, 11, 22, 2, 23, 33], datetime(2026, 11, 22, 2, 23, 33, tzinfo=UTC)),
        ("9999-12-31T23:59:59+00:00", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_times_become_utc(value: Any, expected: datetime) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "not a date",
        "9999-12-31T23:59:59-10:00",  # past the last representable instant once in UTC
        "0001-01-01T00:00:00+10:00",  # before the first
        [2024, 13, 1],
        [2**70, 1, 1],  # too large for C
        [10**4, 1, 1],
        None,
        3,
    ],
)
def test_unrepresentable_times_are_no_time(value: Any) -> None:
    assert parse_time(value) is None
