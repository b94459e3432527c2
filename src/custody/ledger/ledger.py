"""The ``Ledger``: Custody's memory between runs, in SQLite (default) or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType

from sqlalchemy import URL, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from custody.errors import InputError, LedgerError
from custody.ledger import approvals as proxy_reviews
from custody.ledger import cache, decisions, inventory, known_bad, observations, publishes
from custody.ledger.db import Database, resolve_url
from custody.ledger.decisions import DecisionRecord
from custody.ledger.inventory import InventoryEntry
from custody.ledger.migrations import migrate
from custody.ledger.observations import Fact
from custody.ledger.publishes import PublishEvent
from custody.model import Action, Ecosystem, LockedDependency, Observation
from custody.osv import KnownBadRecord
from custody.registries.base import CachedResponse, ResponseCache


def open_ledger(url: str | None = None, *, schema: str | None = None) -> Ledger:
    """Open (creating and migrating as needed) the ledger at ``url``.

    ``url`` defaults to ``CUSTODY_DATABASE_URL``, then to ``ledger.sqlite3`` in the user cache
    directory (``CUSTODY_CACHE_DIR`` overrides it). ``schema`` (PostgreSQL only) keeps the tables
    in that schema, created if missing: for sharing one database, and for isolating tests.
    Raises ``InputError`` for an invalid or unreachable database and ``SchemaVersionError`` for
    one written by a newer Custody. Once open, every method raises ``LedgerError`` (exit 2)
    for an error of the database: a full disk, corrupt pages, a lost connection."""
    resolved = resolve_url(url)
    try:
        db = Database(resolved, schema=schema)
    except SQLAlchemyError as exc:
        raise _cannot_open(resolved, exc) from None
    try:
        version = migrate(db)
    except SQLAlchemyError as exc:
        db.close()
        raise _cannot_open(resolved, exc) from None
    except LedgerError as exc:  # from Database.write: reported as at open, as before
        db.close()
        where = resolved.render_as_string(hide_password=True)
        raise InputError(f"cannot open the ledger database {where}: {exc.reason}") from None
    except BaseException:
        db.close()
        raise
    return Ledger(db, version)


def _cannot_open(url: URL, exc: SQLAlchemyError) -> InputError:
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    lines = str(orig if orig is not None else exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    if url.password:
        reason = reason.replace(str(url.password), "***")
    where = url.render_as_string(hide_password=True)
    return InputError(f"cannot open the ledger database {where}: {reason}")


class Ledger:
    """Response cache, observations, publish events, project inventory and the decision log.

    One Engine per Ledger, no ORM, every method batched (a handful of statements whatever the
    input size). Safe to share between threads; several processes (or replicas, on PostgreSQL)
    can use the same database at once. Implements ``ResponseCache``."""

    def __init__(self, db: Database, schema_version: int) -> None:
        self._db = db
        self.schema_version = schema_version

    @property
    def url_for_display(self) -> str:
        """The database URL with any password hidden."""
        return self._db.url_for_display

    @property
    def engine(self) -> Engine:
        """The one Engine behind this ledger (for tests and maintenance; prefer the methods)."""
        return self._db.engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return "postgresql" if self._db.is_postgres else "sqlite"

    # -- ResponseCache ------------------------------------------------------------------------

    def load(self, urls: Sequence[str], *, bodies: bool = True) -> dict[str, CachedResponse]:
        """See ``custody.ledger.cache.load``."""
        return cache.load(self._db, urls, bodies=bodies)

    def store(self, entries: Sequence[CachedResponse]) -> None:
        cache.store(self._db, entries)

    def touch(
        self, fetched: Mapping[str, datetime], fresh_for: Mapping[str, float | None] | None = None
    ) -> None:
        """See ``custody.ledger.cache.touch``."""
        cache.touch(self._db, fetched, fresh_for)

    # -- observations -------------------------------------------------------------------------

    def observe(
        self, looks: Mapping[tuple[Ecosystem, str], tuple[datetime, Iterable[Fact]]]
    ) -> dict[tuple[Ecosystem, str], list[Observation]]:
        """Record each package's look ``(seen_at, facts)``: the facts the registry showed and
        when it answered. Writes nothing when the looks change nothing. See
        ``custody.ledger.observations.observe``."""
        return observations.observe(self._db, looks)

    def observations(
        self, ecosystem: Ecosystem, packages: Sequence[str]
    ) -> dict[str, list[Observation]]:
        return observations.observations_for(self._db, ecosystem, packages)

    # -- publish events -----------------------------------------------------------------------

    def record_publishes(self, events: Iterable[tuple[Ecosystem, str, str, str, datetime]]) -> None:
        """Events are ``(ecosystem, package, version, publisher_id, published_at)``."""
        publishes.record_publishes(self._db, events)

    def publishes_by(
        self, publisher_id: str, since: datetime, until: datetime
    ) -> list[PublishEvent]:
        """Inclusive on both ends, oldest first."""
        return publishes.publishes_by(self._db, publisher_id, since, until)

    def publishes_within(
        self, spans: Mapping[str, tuple[datetime, datetime]]
    ) -> dict[str, list[PublishEvent]]:
        """``publishes_by`` for many publishers (each with its own inclusive span) at once."""
        return publishes.publishes_within(self._db, spans)

    def publish_counts(
        self, packages: Iterable[tuple[Ecosystem, str]], since: datetime
    ) -> dict[tuple[Ecosystem, str], int]:
        """See ``custody.ledger.publishes.publish_counts``."""
        return publishes.publish_counts(self._db, packages, since)

    # -- known-bad records (OSV malicious packages) -------------------------------------------

    def store_known_bad(
        self,
        records: Iterable[KnownBadRecord],
        imported_at: datetime,
        withdrawn_ids: Iterable[str] = (),
    ) -> known_bad.StoreResult:
        """See ``custody.ledger.known_bad.store_records``."""
        return known_bad.store_records(self._db, records, imported_at, withdrawn_ids)

    def known_bad_for(
        self, packages: Iterable[tuple[Ecosystem, str]]
    ) -> dict[tuple[Ecosystem, str], list[KnownBadRecord]]:
        """Records naming any of ``packages``, in one query (see ``known_bad.records_for``)."""
        return known_bad.records_for(self._db, packages)

    def count_known_bad(self) -> int:
        return known_bad.count_records(self._db)

    # -- inventory ----------------------------------------------------------------------------

    def record_inventory(
        self,
        project: str,
        lockfile: str,
        deps: Iterable[LockedDependency],
        scanned_at: datetime,
    ) -> None:
        inventory.record_inventory(self._db, project, lockfile, deps, scanned_at)

    def where(
        self, ecosystem: Ecosystem, name: str, version: str | None = None
    ) -> list[InventoryEntry]:
        return inventory.where(self._db, ecosystem, name, version)

    def inventory(self) -> list[InventoryEntry]:
        """Every recorded lockfile entry of every project (``custody watch``)."""
        return inventory.all_entries(self._db)

    # -- decision log -------------------------------------------------------------------------

    def record_decisions(self, records: Iterable[DecisionRecord]) -> None:
        decisions.record_decisions(self._db, records)

    def decisions(
        self,
        *,
        ecosystem: Ecosystem | None = None,
        package: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[DecisionRecord]:
        return decisions.recent_decisions(
            self._db, ecosystem=ecosystem, package=package, since=since, limit=limit
        )

    # -- registry firewall: reviews and holds (custody proxy) ---------------------------------

    def add_review(
        self,
        *,
        at: datetime,
        ecosystem: Ecosystem,
        package: str,
        version: str,
        verdict: str,
        by: str,
        reason: str,
    ) -> proxy_reviews.Review:
        """Record an approval (``verdict="approve"``) or denial (``"deny"``) of one release."""
        return proxy_reviews.add_review(
            self._db,
            at=at,
            ecosystem=ecosystem,
            package=package,
            version=version,
            verdict=verdict,
            by=by,
            reason=reason,
        )

    def reviews_since(self, after_id: int = 0) -> list[proxy_reviews.Review]:
        """Reviews with an id above ``after_id``, oldest first."""
        return proxy_reviews.reviews_since(self._db, after_id)

    def proxy_state_marker(self) -> proxy_reviews.StateMarker:
        """See ``custody.ledger.approvals.state_marker``."""
        return proxy_reviews.state_marker(self._db)

    def replace_holds(
        self,
        ecosystem: Ecosystem,
        package: str,
        held: Sequence[tuple[str, Action, tuple[str, ...], str]],
        seen_at: datetime,
    ) -> None:
        """See ``custody.ledger.approvals.replace_holds``."""
        proxy_reviews.replace_holds(self._db, ecosystem, package, held, seen_at)

    def held_releases(
        self, *, ecosystem: Ecosystem | None = None, package: str | None = None
    ) -> list[proxy_reviews.HeldRelease]:
        return proxy_reviews.held_releases(self._db, ecosystem=ecosystem, package=package)

    def first_seen(self, ecosystem: Ecosystem, package: str, now: datetime) -> datetime:
        """When the proxy first saw the package (any replica); records ``now`` if never."""
        return proxy_reviews.first_seen(self._db, ecosystem, package, now)

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Ledger {self.url_for_display} v{self.schema_version}>"


def _is_response_cache(ledger: Ledger) -> ResponseCache:
    return ledger  # mypy checks that Ledger implements the protocol
