"""The firewall's reviews (approvals and denials) in memory, kept in step with the ledger.

Every replica polls the ledger's newest review id every ``sync_interval`` (one indexed
look-up) and reads only the reviews after the one it has. A review made through this replica's
admin API is applied at once; one made through another replica within one poll interval."""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from custody.ledger.approvals import Review
from custody.model import Ecosystem
from custody.proxy.judging import ReviewNote, version_key

PackageKey = tuple[Ecosystem, str]
_EMPTY: MappingProxyType[str, ReviewNote] = MappingProxyType({})


class Reviews:
    def __init__(self) -> None:
        self.last_id = 0
        self._by_package: dict[PackageKey, dict[str, ReviewNote]] = {}
        self._stamps: dict[PackageKey, int] = {}

    def apply(self, reviews: Iterable[Review]) -> set[PackageKey]:
        """Take in reviews (in id order); the packages whose reviews changed."""
        changed: set[PackageKey] = set()
        for r in reviews:
            if r.id <= self.last_id:
                continue
            self.last_id = r.id
            key = (r.ecosystem, r.package)
            notes = self._by_package.setdefault(key, {})
            notes[version_key(r.ecosystem, r.version)] = ReviewNote(r.verdict, r.by, r.reason, r.at)
            self._stamps[key] = r.id
            changed.add(key)
        return changed

    def for_package(self, ecosystem: Ecosystem, package: str) -> MappingProxyType[str, ReviewNote]:
        notes = self._by_package.get((ecosystem, package))
        return MappingProxyType(notes) if notes else _EMPTY

    def stamp(self, ecosystem: Ecosystem, package: str) -> int:
        """Changes whenever a review of the package arrives (0: never reviewed)."""
        return self._stamps.get((ecosystem, package), 0)

    def latest(self, ecosystem: Ecosystem, package: str, version: str) -> ReviewNote | None:
        notes = self._by_package.get((ecosystem, package))
        return notes.get(version_key(ecosystem, version)) if notes else None
