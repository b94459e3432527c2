"""Versioned schema: an ordered list of migration steps, applied at open.

Why not Alembic: the schema is a handful of tables, the default database is an embedded SQLite
file created on a user's machine at first run (no operator runs ``alembic upgrade``), and Alembic
would bring a dependency, an ``env.py``/``script_location`` directory to package, and a second
source of truth for versions. What it would give us (autogenerate, downgrades, branches) we do
not need. Here a migration is a function of a ``Connection`` that applies Core DDL; its index in
``MIGRATIONS`` (1-based) is the version it brings the database to.

Adding a migration (the next number, e.g. 3):

1. write ``def _v3_something(conn: Connection) -> None`` with the DDL (e.g.
   ``conn.execute(text("ALTER TABLE ... ADD COLUMN ..."))`` or ``Table(...).create(conn)``),
2. append ``Migration("what it does", _v3_something)`` to ``MIGRATIONS``,
3. change ``schema.py`` to match (a test compares the migrated database with it).

Each step defines the tables it creates itself (``_v1_initial`` below is frozen), so later edits to
``schema.py`` never change what an old step does.

Safety with concurrent opens: a cheap unlocked read of the version first; only when it is behind,
one write transaction that takes a lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
``pg_advisory_xact_lock``), reads the version again, applies the missing steps and records each
in ``schema_version``. DDL is transactional on both backends, so a failed step leaves nothing
half-done. A database newer than the code is refused: an old Custody must not write into a
schema it does not understand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    inspect,
    select,
    text,
)

from custody.errors import InputError
from custody.ledger.db import Database
from custody.ledger.schema import UTCDateTime, id_column, schema_version


class SchemaVersionError(InputError):
    """The database was written by a newer Custody than this one."""


@dataclass(frozen=True, slots=True)
class Migration:
    description: str
    apply: Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    md = MetaData()
    Table(
        "schema_version",
        md,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("description", Text, nullable=False),
        Column("applied_at", UTCDateTime, nullable=False),
    )
    Table(
        "http_cache",
        md,
        Column("url", Text, primary_key=True),
        Column("status", Integer, nullable=False),
        Column("fetched_at", UTCDateTime, nullable=False),
        Column("etag", Text),
        Column("last_modified", Text),
        Column("content_type", Text),
        Column("body", LargeBinary, nullable=False),
        Column("body_size", Integer, nullable=False),  # uncompressed
        Column("derived", LargeBinary),
        Column("derived_size", Integer),
        Column("derived_version", Text),
    )
    Table(
        "observations",
        md,
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
    Table(
        "publishes",
        md,
        Column("ecosystem", String(16), nullable=False),
        Column("package", Text, nullable=False),
        Column("version", Text, nullable=False),
        Column("publisher", Text, nullable=False),
        Column("published_at", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("ecosystem", "package", "version", "publisher", name="pk_publishes"),
        Index("ix_publishes_publisher", "publisher", "published_at"),
    )
    Table(
        "inventory",
        md,
        id_column(),
        Column("project", Text, nullable=False),
        Column("lockfile", Text, nullable=False),
        Column("ecosystem", String(16), nullable=False),
        Column("name", Text, nullable=False),
        Column("version", Text, nullable=False),
        Column("direct", Boolean, nullable=False),
        Column("dev", Boolean, nullable=False),
        Column("optional", Boolean, nullable=False),
        Column("paths", JSON, nullable=False),
        Column("scanned_at", UTCDateTime, nullable=False),
        Index("ix_inventory_package", "ecosystem", "name"),
        Index("ix_inventory_lockfile", "project", "lockfile"),
    )
    Table(
        "decisions",
        md,
        id_column(),
        Column("at", UTCDateTime, nullable=False),
        Column("ecosystem", String(16), nullable=False),
        Column("package", Text, nullable=False),
        Column("version", Text, nullable=False),
        Column("action", String(16), nullable=False),
        Column("rules", JSON, nullable=False),
        Column("source", String(32), nullable=False),
        Index("ix_decisions_package", "ecosystem", "package"),
        Index("ix_decisions_at", "at"),
    )
    md.create_all(conn)


def _v2_known_bad(conn: Connection) -> None:
    md = MetaData()
    Table(
        "known_bad",
        md,
        Column("id", Text, nullable=False),
        Column("ecosystem", String(16), nullable=False),
        Column("package", Text, nullable=False),
        Column("versions", JSON, nullable=False),
        Column("all_versions", Boolean, nullable=False),
        Column("ranges", JSON, nullable=False),
        Column("published", UTCDateTime),
        Column("modified", UTCDateTime),
        Column("summary", Text),
        Column("imported_at", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("id", "ecosystem", "package", name="pk_known_bad"),
        Index("ix_known_bad_package", "package", "ecosystem"),
    )
    md.create_all(conn)


def _v3_proxy_reviews(conn: Connection) -> None:
    md = MetaData()
    Table(
        "proxy_reviews",
        md,
        Column(
            "id",
            BigInteger().with_variant(Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("at", UTCDateTime, nullable=False),
        Column("ecosystem", String(16), nullable=False),
        Column("package", Text, nullable=False),
        Column("version", Text, nullable=False),
        Column("verdict", String(16), nullable=False),
        Column("by", Text, nullable=False),
        Column("reason", Text, nullable=False),
        Index("ix_proxy_reviews_package", "ecosystem", "package"),
    )
    Table(
        "proxy_holds",
        md,
        Column("ecosystem", String(16), nullable=False),
        Column("package", Text, nullable=False),
        Column("version", Text, nullable=False),
        Column("action", String(16), nullable=False),
        Column("rules", JSON, nullable=False),
        Column("summary", Text, nullable=False),
        Column("first_seen", UTCDateTime, nullable=False),
        Column("last_seen", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("ecosystem", "package", "version", name="pk_proxy_holds"),
    )
    Table(
        "proxy_packages",
        md,
        Column("ecosystem", String(16), nullable=False),
        Column("package", Text, nullable=False),
        Column("first_seen", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("ecosystem", "package", name="pk_proxy_packages"),
    )
    md.create_all(conn)


def _v4_cache_freshness(conn: Connection) -> None:
    """``fresh_for``: how long the registry said a response stays fresh (``Cache-Control``),
    so a warm run within it sends no request. ``derived`` blobs are stored as they are from
    now on (inflating 30 MB of parsed histories was a tenth of a warm run), also by PostgreSQL
    (no TOAST compression): the zlib-compressed ones are dropped, and the next fetch derives
    them again from the cached bodies."""
    conn.execute(text("ALTER TABLE http_cache ADD COLUMN fresh_for FLOAT"))
    conn.execute(text("UPDATE http_cache SET derived = NULL, derived_size = NULL"))
    if conn.dialect.name == "postgresql":  # TOAST would compress them (pglz): a third slower
        conn.execute(text("ALTER TABLE http_cache ALTER COLUMN derived SET STORAGE EXTERNAL"))


def _v5_cache_final_url(conn: Connection) -> None:
    """``final_url``: where a cached body came from after redirects (NULL: from ``url``), so
    relative links in a PyPI simple page answered from the cache resolve as they did when it
    was fetched. Entries cached before keep NULL until they are fetched again."""
    conn.execute(text("ALTER TABLE http_cache ADD COLUMN final_url TEXT"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration("initial schema", _v1_initial),
    Migration("known-bad records (OSV malicious packages)", _v2_known_bad),
    Migration("registry firewall: reviews, holds, packages first seen", _v3_proxy_reviews),
    Migration(
        "registry cache: freshness lifetime, uncompressed parsed histories", _v4_cache_freshness
    ),
    Migration("registry cache: the URL after redirects", _v5_cache_final_url),
)
LATEST_VERSION = len(MIGRATIONS)


def current_version(conn: Connection) -> int:
    """The version recorded in the database; 0 for an empty one."""
    if not inspect(conn).has_table("schema_version"):
        return 0
    return conn.scalar(select(func.max(schema_version.c.version))) or 0


def _refuse_newer(db: Database, version: int) -> None:
    if version > LATEST_VERSION:
        raise SchemaVersionError(
            f"the ledger database {db.url_for_display} has schema version {version}, newer than "
            f"this Custody knows ({LATEST_VERSION}); upgrade Custody, or point "
            "CUSTODY_DATABASE_URL at another database"
        )


def migrate(db: Database) -> int:
    """Bring the database up to ``LATEST_VERSION``; return the version it is at."""
    with db.engine.connect() as conn:
        version = current_version(conn)
    _refuse_newer(db, version)
    if version == LATEST_VERSION:
        return version
    with db.write("migrating the schema") as conn:
        db.lock(conn, "migrate")
        db.create_schema(conn)
        version = current_version(conn)
        _refuse_newer(db, version)
        for number in range(version + 1, LATEST_VERSION + 1):
            step = MIGRATIONS[number - 1]
            step.apply(conn)
            conn.execute(
                schema_version.insert().values(
                    version=number, description=step.description, applied_at=datetime.now(UTC)
                )
            )
    return LATEST_VERSION
