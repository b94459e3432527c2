"""Opening, URLs, migrations and schema versions."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event, inspect, select, text

from custody.errors import InputError
from custody.ledger import (
    LATEST_VERSION,
    DecisionRecord,
    Ledger,
    SchemaVersionError,
    cache,
    open_ledger,
)
from custody.ledger.db import resolve_url
from custody.ledger.schema import metadata, schema_version
from custody.model import Action, Ecosystem
from custody.registries.base import CachedResponse
from tests.ledger.fixtures import LedgerTarget

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _versions(ledger: Ledger) -> list[int]:
    with ledger.engine.connect() as conn:
        return list(conn.scalars(select(schema_version.c.version).order_by("version")))


def test_migrates_an_empty_database(ledger: Ledger) -> None:
    assert ledger.schema_version == LATEST_VERSION
    assert _versions(ledger) == list(range(1, LATEST_VERSION + 1))


def test_migrated_schema_matches_schema_module(ledger: Ledger) -> None:
    """The migration steps and schema.py describe the same tables."""
    with ledger.engine.connect() as conn:
        insp = inspect(conn)
        assert set(insp.get_table_names()) == set(metadata.tables)
        for table in metadata.tables.values():
            columns = {c["name"]: c["nullable"] for c in insp.get_columns(table.name)}
            assert columns == {c.name: c.nullable for c in table.columns}, table.name
            pk = insp.get_pk_constraint(table.name)["constrained_columns"]
            assert pk == [c.name for c in table.primary_key.columns], table.name
            indexes = {i["name"]: i["column_names"] for i in insp.get_indexes(table.name)}
            expected = {i.name: [c.name for c in i.columns] for i in table.indexes}
            assert indexes == expected, table.name


def test_reopen_is_idempotent(ledger_target: LedgerTarget) -> None:
    first = ledger_target.open()
    first.record_decisions([])
    first.close()
    again = ledger_target.open()
    assert again.schema_version == LATEST_VERSION
    assert _versions(again) == list(range(1, LATEST_VERSION + 1))


def test_newer_schema_is_refused(ledger_target: LedgerTarget) -> None:
    with ledger_target.open() as ledger, ledger.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO schema_version (version, description, applied_at) "
                "VALUES (:v, 'from the future', :at)"
            ),
            {"v": LATEST_VERSION + 1, "at": "2030-01-01T00:00:00.000000+00:00"},
        )
    with pytest.raises(SchemaVersionError) as info:
        ledger_target.open()
    message = str(info.value)
    assert f"schema version {LATEST_VERSION + 1}" in message
    assert f"({LATEST_VERSION})" in message
    assert "upgrade Custody" in message
    assert isinstance(info.value, InputError)


def test_concurrent_opens_migrate_once(ledger_target: LedgerTarget) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []
    ledgers: list[Ledger] = []

    def open_one() -> None:
        barrier.wait()
        try:
            ledgers.append(open_ledger(ledger_target.url, schema=ledger_target.schema))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ledger_target.opened.extend(ledgers)
    assert errors == []
    assert _versions(ledgers[0]) == list(range(1, LATEST_VERSION + 1))


def test_closed_ledger_refuses_use(ledger: Ledger) -> None:
    ledger.close()
    with pytest.raises(RuntimeError, match="closed"):
        ledger.load(["https://registry.example/x"])


def test_context_manager_closes(ledger_target: LedgerTarget) -> None:
    with ledger_target.open() as ledger:
        assert ledger.load([]) == {}
    with pytest.raises(RuntimeError):
        ledger.load(["u"])


# -- SQLite specifics -------------------------------------------------------------------------


def test_sqlite_pragmas_and_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.sqlite3"
    with open_ledger(f"sqlite:///{path}") as ledger:
        assert path.exists()
        assert ledger.dialect == "sqlite"
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


def _cold_run_entries(count: int = 100) -> list[CachedResponse]:
    noise = random.Random(7)
    return [
        CachedResponse(
            url=f"http://127.0.0.1:4873/p{i}",
            status=200,
            body=noise.randbytes(100_000),  # incompressible: stored as about 100 KB
            fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
            derived=noise.randbytes(20_000),
            derived_version="npm-x",
        )
        for i in range(count)
    ]


def test_sqlite_a_cold_run_sized_commit_does_not_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storing 12 MB (a thousand packuments' worth of bodies and parsed histories is about 25
    MB) commits to the write-ahead log only: the database file stays small until the log holds
    ``SQLITE_CHECKPOINT_PAGES``. SQLite's default (1,000 pages, 4 MB) would checkpoint and fsync
    inside this commit. Everything stored is read back all the same. (The background checkpoint
    a large batch starts is switched off here: see the next test.)"""
    monkeypatch.setattr(cache, "CHECKPOINT_AFTER", 2**40)
    path = tmp_path / "ledger.sqlite3"
    entries = _cold_run_entries()
    with open_ledger(f"sqlite:///{path}") as ledger:
        before = path.stat().st_size
        ledger.store(entries)
        wal = Path(f"{path}-wal")
        assert wal.stat().st_size > 10_000_000
        assert path.stat().st_size == before  # nothing copied into the database file yet
        loaded = ledger.load([e.url for e in entries])
        assert [loaded[e.url].body for e in entries] == [e.body for e in entries]


def test_sqlite_a_large_batch_is_checkpointed_in_the_background(tmp_path: Path) -> None:
    """After a batch of ``CHECKPOINT_AFTER`` bytes or more, a thread copies the log into the
    database file while the run goes on, instead of the ledger's close doing it at the end of
    the run; reads and writes meanwhile are not blocked, and nothing is lost."""
    path = tmp_path / "ledger.sqlite3"
    entries = _cold_run_entries()
    with open_ledger(f"sqlite:///{path}") as ledger:
        before = path.stat().st_size
        ledger.store(entries)
        ledger.store(_cold_run_entries(3)[:1])  # a write while the checkpoint may be running
        checkpointer = ledger._db._checkpointer
        assert checkpointer is not None
        checkpointer.join(timeout=60)
        assert path.stat().st_size > before + 10_000_000  # copied before the ledger closed
        loaded = ledger.load([e.url for e in entries])
        assert [loaded[e.url].body for e in entries] == [e.body for e in entries]
    with open_ledger(f"sqlite:///{path}") as again:
        assert len(again.load([e.url for e in entries])) == len(entries)


def test_a_small_batch_starts_no_checkpoint(tmp_path: Path) -> None:
    with open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}") as ledger:
        ledger.store(_cold_run_entries(3))
        assert ledger._db._checkpointer is None


def _open_together(url: str, count: int) -> list[BaseException]:
    """``count`` threads open ``url`` at the same moment; the errors they met."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def open_one() -> None:
        barrier.wait()
        try:
            open_ledger(url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_sqlite_fresh_ledger_opened_by_many_at_once(tmp_path: Path) -> None:
    """Switching a new file to WAL fails at once ("database is locked") for a connection that
    races another one doing the same; opening retries it, as long as ``busy_timeout``. (Before,
    about one round in four here failed.)"""
    for round_ in range(20):
        url = f"sqlite:///{tmp_path / f'r{round_}' / 'ledger.sqlite3'}"
        assert _open_together(url, 6) == [], f"round {round_}"


def test_sqlite_writes_take_the_lock_up_front(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE for writes, so busy_timeout applies instead of SQLITE_BUSY mid-way."""
    statements: list[str] = []
    with open_ledger(f"sqlite:///{tmp_path / 'l.sqlite3'}") as ledger:
        event.listen(
            ledger.engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_: statements.append(statement),
        )
        ledger.record_publishes([])
        ledger.record_decisions(
            [DecisionRecord(T0, Ecosystem.NPM, "a", "1", Action.ALLOW, (), "check")]
        )
        ledger.where(Ecosystem.NPM, "a")
    begins = [s for s in statements if s.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN"]


def test_default_location_from_cache_dir_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUSTODY_DATABASE_URL", raising=False)
    monkeypatch.setenv("CUSTODY_CACHE_DIR", str(tmp_path / "cache"))
    with open_ledger() as ledger:
        assert ledger.dialect == "sqlite"
    assert (tmp_path / "cache" / "ledger.sqlite3").exists()


def test_database_url_env_and_argument_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTODY_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    monkeypatch.setenv("CUSTODY_CACHE_DIR", str(tmp_path / "cache"))
    with open_ledger():
        pass
    assert (tmp_path / "env.sqlite3").exists()
    with open_ledger(f"sqlite:///{tmp_path / 'arg.sqlite3'}"):
        pass
    assert (tmp_path / "arg.sqlite3").exists()
    assert not (tmp_path / "cache").exists()


def test_in_memory_sqlite(tmp_path: Path) -> None:
    with open_ledger("sqlite://") as ledger:
        assert ledger.schema_version == LATEST_VERSION
        assert ledger.where(Ecosystem.NPM, "x") == []


# -- URLs and errors --------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["postgresql://u:pw@db/x", "postgres://u:pw@db/x"])
def test_postgres_urls_use_psycopg(url: str) -> None:
    resolved = resolve_url(url)
    assert resolved.drivername == "postgresql+psycopg"
    assert resolved.password == "pw"
    assert "pw" not in resolved.render_as_string(hide_password=True)


def test_unreachable_postgres_names_url_without_password() -> None:
    with pytest.raises(InputError) as info:
        open_ledger("postgresql://alice:s3cret-pw@127.0.0.1:1/nowhere?connect_timeout=2")
    message = str(info.value)
    assert "s3cret-pw" not in message
    assert "postgresql+psycopg://alice:***@127.0.0.1:1/nowhere" in message
    assert message.startswith("cannot open the ledger database")


def test_unsupported_and_invalid_urls() -> None:
    with pytest.raises(InputError, match="unsupported ledger database URL") as info:
        open_ledger("mysql://bob:hunter2@db/custody")
    assert "hunter2" not in str(info.value)
    with pytest.raises(InputError, match="invalid ledger database URL") as info:
        open_ledger("::not a url:pw@")
    with pytest.raises(InputError, match="unsupported"):
        open_ledger("postgresql+psycopg2://db/custody")


def test_unopenable_sqlite_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(InputError, match="cannot create"):
        open_ledger(f"sqlite:///{blocker / 'sub' / 'ledger.sqlite3'}")
    with pytest.raises(InputError, match="cannot open the ledger database"):
        open_ledger(f"sqlite:///{tmp_path}")  # a directory, not a database file


def test_schema_argument_is_checked(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs a PostgreSQL"):
        open_ledger(f"sqlite:///{tmp_path / 'x.sqlite3'}", schema="custody")
    with pytest.raises(InputError, match="invalid ledger schema name"):
        open_ledger("postgresql://postgres@127.0.0.1:1/x", schema='bad"; drop')
