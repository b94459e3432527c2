"""Where the ledger lives and how to talk to it: URL resolution, the one Engine, transactions.

One code path for SQLite and PostgreSQL (psycopg 3); the differences are confined here: SQLite
pragmas and ``BEGIN IMMEDIATE`` for writes, PostgreSQL advisory locks and an optional schema.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, Select, Table, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import KeyedColumnElement

from custody.cache_dir import cache_base
from custody.errors import InputError, LedgerError

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

DATABASE_URL_ENV = "CUSTODY_DATABASE_URL"
SQLITE_FILENAME = "ledger.sqlite3"
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CHECKPOINT_PAGES = 16_384
"""WAL pages (4 KiB each: 64 MiB) before a commit copies the log into the database file.

SQLite's default, 1,000 pages, makes the commit of a cold run (about 25 MB of responses and
parsed histories for a thousand npm packages) also checkpoint the log and fsync the
database: 0.2 s of a 4 s run, paid again by every cold run. With this limit the log takes a few
cold runs before a commit checkpoints it; commits stay durable (the log is the record, and
``synchronous = NORMAL`` keeps the database consistent through a power loss)."""
POSTGRES_CONNECT_TIMEOUT_S = 10
CHUNK = 500  # ids or keys per IN list

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")

T = TypeVar("T")


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def default_sqlite_path() -> Path:
    return cache_base().expanduser() / SQLITE_FILENAME


def redact(url_text: str) -> str:
    """``url_text`` with any password replaced by ``***`` (for text that did not parse)."""
    return _URL_PASSWORD.sub(r"\1***@", url_text)


def resolve_url(url: str | None) -> URL:
    """The argument, else ``CUSTODY_DATABASE_URL``, else the SQLite file in the cache dir.

    ``postgresql://`` (and ``postgres://``) become ``postgresql+psycopg://``."""
    text_url = url or os.environ.get(DATABASE_URL_ENV) or None
    if text_url is None:
        return URL.create("sqlite+pysqlite", database=str(default_sqlite_path()))
    try:
        parsed = make_url(text_url)
    except (ArgumentError, ValueError) as exc:
        # ValueError: a port that is not a number ("host:notaport", "[::1/db"). Its message
        # could quote the URL: redacted too.
        reason = redact(str(exc))
        raise InputError(f"invalid ledger database URL {redact(text_url)!r}: {reason}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return parsed.set(drivername="sqlite+pysqlite")
    raise InputError(
        f"unsupported ledger database URL {parsed.render_as_string(hide_password=True)!r}: "
        "use sqlite:///PATH or postgresql://USER@HOST/DB (psycopg 3)"
    )


class Database:
    """The Engine plus the few backend differences the ledger's queries need."""

    def __init__(self, url: URL, *, schema: str | None = None) -> None:
        self.url = url
        self.url_for_display = url.render_as_string(hide_password=True)
        self.is_postgres = url.get_backend_name() == "postgresql"
        self.schema = schema
        if schema is not None:
            if not self.is_postgres:
                raise InputError(f"a ledger schema ({schema!r}) needs a PostgreSQL database URL")
            if not _SCHEMA_NAME.match(schema):
                raise InputError(
                    f"invalid ledger schema name {schema!r}: use lower-case letters, digits and _"
                )
        self.engine = self._create_engine()
        # Same pool and events; transactions begun through it are writes (see _sqlite_on_begin).
        self._writer = self.engine.execution_options(custody_write=True)
        self._checkpointer: threading.Thread | None = None
        self.closed = False

    def _create_engine(self) -> Engine:
        if self.is_postgres:
            return self._create_postgres_engine()
        database = self.url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            directory = Path(database).expanduser().parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(
                    f"cannot create {directory} for the ledger database: {exc.strerror or exc}"
                ) from None
        kwargs: dict[str, Any] = {}
        if not database or database == ":memory:":
            # One shared connection, so every part of the ledger sees the same in-memory DB.
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        engine = create_engine(self.url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    def _create_postgres_engine(self) -> Engine:
        query = self.url.query
        defaults = {"application_name": "custody", "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
        connect_args: dict[str, Any] = {k: v for k, v in defaults.items() if k not in query}
        if self.schema is not None:
            given = query.get("options", "")
            options = given if isinstance(given, str) else " ".join(given)
            connect_args["options"] = f"{options} -csearch_path={self.schema}".strip()
        return create_engine(self.url, connect_args=connect_args)

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("the ledger is closed")

    @contextmanager
    def read(self, operation: str = "reading") -> Iterator[Connection]:
        """A connection for reads; its implicit transaction is rolled back on exit. A database
        error raises ``LedgerError`` naming ``operation`` (see ``failed``)."""
        self._check_open()
        with self._reported(operation), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self, operation: str = "writing") -> Iterator[Connection]:
        """A write transaction, committed on success. On SQLite it starts with ``BEGIN
        IMMEDIATE``: taking the write lock up front means ``busy_timeout`` applies, instead of a
        read transaction failing at once with SQLITE_BUSY when it later tries to write. A
        database error raises ``LedgerError`` naming ``operation`` (see ``failed``)."""
        self._check_open()
        with self._reported(operation), self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _reported(self, operation: str) -> Iterator[None]:
        """Raise what ``failed`` makes of an exception raised in the block."""
        try:
            yield
        except Exception as exc:
            error = self.failed(exc, operation)
            if error is exc:
                raise
            raise error from None

    def failed(self, exc: Exception, operation: str) -> Exception:
        """What to raise for ``exc``, raised while ``operation``: a ``LedgerError`` for an error
        of the database (a full disk, corrupt pages, a lost connection), else ``exc`` itself.

        The message is the driver's first line, without the SQL statement and parameters that
        SQLAlchemy appends (a traceback showed both), the password hidden. A constraint
        violation stays what it is: a bug in Custody, not an unusable ledger."""
        reason = _database_error(exc)
        if reason is None:
            return exc
        if self.url.password:
            reason = reason.replace(str(self.url.password), "***")
        return LedgerError(self.url_for_display, operation, reason)

    def binary_rows(
        self, conn: Connection, statement: Select[Any], params: Mapping[str, Any]
    ) -> list[Any]:
        """PostgreSQL: the rows of ``statement`` fetched in the binary result format, as named
        tuples. ``bytea`` then comes as it is stored instead of as hex text, which took twice
        the bytes on the wire and most of the time a warm run spends reading its cached
        histories (0.09 s against 0.03 s for a thousand packages). SQLAlchemy's result
        processing is skipped: the caller converts what a type decorator would (times come in
        the session's time zone)."""
        from psycopg.rows import namedtuple_row

        expanded = statement.compile(dialect=conn.dialect).construct_expanded_state(params)
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor(binary=True, row_factory=namedtuple_row) as cursor:
            cursor.execute(expanded.statement, expanded.parameters)
            return list(cursor.fetchall())

    def lock(self, conn: Connection, name: str) -> None:
        """Serialise writers of ``name`` until the transaction ends. SQLite's write transaction
        is already exclusive; PostgreSQL takes a transaction-scoped advisory lock."""
        if self.is_postgres:
            digest = hashlib.blake2b(f"custody.ledger:{name}".encode(), digest_size=8).digest()
            key = int.from_bytes(digest, "big", signed=True)
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def create_schema(self, conn: Connection) -> None:
        if self.schema is not None:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))

    def upsert(self, table: Table) -> Insert:
        """``INSERT ... ON CONFLICT (primary key) DO UPDATE`` every other column."""
        keys = [c.name for c in table.primary_key.columns]
        if self.is_postgres:
            pg = _postgres_insert(table)
            return pg.on_conflict_do_update(index_elements=keys, set_=_excluded(table, pg.excluded))
        lite = _sqlite_insert(table)
        return lite.on_conflict_do_update(index_elements=keys, set_=_excluded(table, lite.excluded))

    def insert_ignore(self, table: Table) -> Insert:
        """``INSERT ... ON CONFLICT DO NOTHING``."""
        if self.is_postgres:
            return _postgres_insert(table).on_conflict_do_nothing()
        return _sqlite_insert(table).on_conflict_do_nothing()

    def checkpoint_soon(self) -> None:
        """SQLite: copy the write-ahead log into the database file now, in a thread, instead of
        when the ledger is closed (the last connection to close checkpoints whatever is left).

        A cold check writes about 30 MB of registry documents into the log at once; copying
        them when the ledger closed took 0.08 s at the very end of the run. The checkpoint is
        passive (it waits for no lock and blocks no reader or writer) and SQLite does it without
        holding the GIL, so it overlaps with judging. ``close`` waits for it. Best effort: what
        it leaves, closing copies as before."""
        if self.is_postgres or self.closed:
            return
        if self._checkpointer is not None and self._checkpointer.is_alive():
            return  # one is copying already

        def checkpoint() -> None:
            with contextlib.suppress(Exception), self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

        self._checkpointer = threading.Thread(target=checkpoint, name="custody-checkpoint")
        self._checkpointer.start()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.join()
        self.closed = True
        self.engine.dispose()


def _database_error(exc: BaseException) -> str | None:
    """The first line of the driver's message if ``exc`` is an error of the database (through
    SQLAlchemy, or psycopg's own for ``binary_rows``), else None."""
    if isinstance(exc, IntegrityError):
        return None
    if isinstance(exc, DBAPIError):
        orig: BaseException = exc.orig if isinstance(exc.orig, BaseException) else exc
    elif isinstance(exc, sqlite3.Error):
        orig = exc
    else:
        psycopg = sys.modules.get("psycopg")  # loaded only by a PostgreSQL ledger
        if psycopg is None or not isinstance(exc, psycopg.Error):
            return None
        if isinstance(exc, psycopg.IntegrityError):
            return None
        orig = exc
    if isinstance(orig, sqlite3.IntegrityError):
        return None
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def _excluded(
    table: Table, excluded: ReadOnlyColumnCollection[str, KeyedColumnElement[Any]]
) -> dict[str, KeyedColumnElement[Any]]:
    keys = {c.name for c in table.primary_key.columns}
    return {c.name: c for c in excluded if c.name not in keys}


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN (see _sqlite_on_begin), not the sqlite3 module.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        _write_ahead_log(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL, much faster
        cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES}")
        # after a checkpoint the log file is cut back to this size, not left at its peak
        cursor.execute(f"PRAGMA journal_size_limit = {SQLITE_CHECKPOINT_PAGES * 4096}")
    finally:
        cursor.close()


def _write_ahead_log(cursor: Any) -> None:
    """``PRAGMA journal_mode = WAL``, retried while another connection holds the lock.

    Switching a new database file to WAL takes an exclusive lock, and SQLite answers a
    conflicting switch with "database is locked" at once, without waiting ``busy_timeout``:
    several processes opening one fresh ledger together (parallel CI jobs) failed now and
    then. Waits as long as ``busy_timeout`` would; any other error is raised at once."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_BUSY) & 0xFF
            if code not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
            if time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _sqlite_on_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("custody_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _postgres_insert(table: Table) -> postgresql.Insert:
    """Imported on use: a SQLite run never loads the PostgreSQL dialect (about 50 ms)."""
    from sqlalchemy.dialects import postgresql

    return postgresql.insert(table)


def _sqlite_insert(table: Table) -> sqlite.Insert:
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)
