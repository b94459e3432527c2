"""Release ordering shared by the readers: oldest first by publish time, version order otherwise."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from custody.model import Release

_EPOCH = datetime.min.replace(tzinfo=UTC)


def order_releases(
    releases: Iterable[Release], version_key: Callable[[str], Any]
) -> tuple[Release, ...]:
    """Sort by publish time; a release without a time keeps its place in version order (it takes
    the time of the release before it in version order), so partial data never scrambles it."""
    by_version = sorted(releases, key=lambda r: version_key(r.version))
    floor = _EPOCH
    keyed: list[tuple[datetime, int, Release]] = []
    for index, release in enumerate(by_version):
        if release.published_at is not None:
            floor = release.published_at
        keyed.append((floor, index, release))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return tuple(item[2] for item in keyed)
