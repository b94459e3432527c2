"""The ledger's tables as the current code queries them, and the column types they share.

Migrations (``migrations.py``) create these tables; a test checks that the migrated database
matches this metadata, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


def as_utc(value: datetime, what: str = "time") -> datetime:
    """``value`` in UTC; naive datetimes are refused (Custody's times are always tz-aware)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A tz-aware UTC ``datetime`` on every backend.

    PostgreSQL: ``timestamptz``. SQLite has no date type and SQLAlchemy's ``DateTime`` drops the
    zone there, so it is stored as fixed-width ISO 8601 text in UTC
    (``2024-01-02T03:04:05.000006+00:00``): readable in the sqlite3 shell, and string order is
    time order, so range queries work. This format is part of the on-disk contract: never change
    it without a migration."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = as_utc(value)
        if dialect.name == "sqlite":
            return value.isoformat(timespec="microseconds")
        return value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        if value.tzinfo is None:  # written by something else; the contract says UTC
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def id_column() -> Column[int]:
    """A surrogate key: ``bigserial`` on PostgreSQL, the rowid alias on SQLite."""
    return Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

http_cache = Table(
    "http_cache",
    metadata,
    Column("url", Text, primary_key=True),
    Column("status", Integer, nullable=False),
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("content_type", Text),
    Column("body", LargeBinary, nullable=False),  # zlib level 1
    Column("body_size", Integer, nullable=False),  # uncompressed
    Column("derived", LargeBinary),  # as encoded (msgpack), not compressed
    Column("derived_size", Integer),
    Column("derived_version", Text),
    Column("fresh_for", Float),  # seconds the registry said the body stays fresh; NULL: none
    Column("final_url", Text),  # the URL after redirects, when not ``url``
)

observations = Table(
    "observations",
    metadata,
    id_column(),
    Column("ecosystem", String(16), nullable=False),
    Column("package", Text, nullable=False),
    Column("fact", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("role", Text),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("gone_since", UTCDateTime),
    Index("ix_observations_package", "ecosystem", "package"),
)

publishes = Table(
    "publishes",
    metadata,
    Column("ecosystem", String(16), nullable=False),
    Column("package", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("publisher", Text, nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("ecosystem", "package", "version", "publisher", name="pk_publishes"),
    Index("ix_publishes_publisher", "publisher", "published_at"),
)

inventory = Table(
    "inventory",
    metadata,
    id_column(),
    Column("project", Text, nullable=False),
    Column("lockfile", Text, nullable=False),
    Column("ecosystem", String(16), nullable=False),
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("direct", Boolean, nullable=False),
    Column("dev", Boolean, nullable=False),
    Column("optional", Boolean, nullable=False),
    Column("paths", JSON, nullable=False),  # list of lists of package names
    Column("scanned_at", UTCDateTime, nullable=False),
    Index("ix_inventory_package", "ecosystem", "name"),
    Index("ix_inventory_lockfile", "project", "lockfile"),
)

decisions = Table(
    "decisions",
    metadata,
    id_column(),
    Column("at", UTCDateTime, nullable=False),
    Column("ecosystem", String(16), nullable=False),
    Column("package", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("action", String(16), nullable=False),
    Column("rules", JSON, nullable=False),  # list of rule ids
    Column("source", String(32), nullable=False),  # "check", "proxy"
    Index("ix_decisions_package", "ecosystem", "package"),
    Index("ix_decisions_at", "at"),
)

known_bad = Table(
    "known_bad",
    metadata,
    Column("id", Text, nullable=False),  # OSV id, MAL-...
    Column("ecosystem", String(16), nullable=False),
    Column("package", Text, nullable=False),  # npm exact, PyPI PEP 503 normalised
    Column("versions", JSON, nullable=False),  # exact versions named malicious
    Column("all_versions", Boolean, nullable=False),  # the record covers every version
    Column("ranges", JSON, nullable=False),  # bounded OSV ranges (type, events)
    Column("published", UTCDateTime),
    Column("modified", UTCDateTime),
    Column("summary", Text),
    Column("imported_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("id", "ecosystem", "package", name="pk_known_bad"),
    Index("ix_known_bad_package", "package", "ecosystem"),
)

proxy_reviews = Table(
    "proxy_reviews",
    metadata,
    id_column(),
    Column("at", UTCDateTime, nullable=False),
    Column("ecosystem", String(16), nullable=False),
    Column("package", Text, nullable=False),  # npm exact, PyPI PEP 503 normalised
    Column("version", Text, nullable=False),  # as the reviewer wrote it
    Column("verdict", String(16), nullable=False),  # "approve" or "deny"
    Column("by", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_proxy_reviews_package", "ecosystem", "package"),
)

proxy_holds = Table(
    "proxy_holds",
    metadata,
    Column("ecosystem", String(16), nullable=False),
    Column("package", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("action", String(16), nullable=False),  # "hold" or "block"
    Column("rules", JSON, nullable=False),  # list of rule ids
    Column("summary", Text, nullable=False),  # the strongest finding's message
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("ecosystem", "package", "version", name="pk_proxy_holds"),
)

proxy_packages = Table(
    "proxy_packages",
    metadata,
    Column("ecosystem", String(16), nullable=False),
    Column("package", Text, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),  # first judged by any replica
    PrimaryKeyConstraint("ecosystem", "package", name="pk_proxy_packages"),
)
