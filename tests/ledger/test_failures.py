"""A ledger that fails once open (a full disk, corrupt pages, a lost PostgreSQL connection), a
malformed database URL, and a cached body that cannot be inflated: clean errors with exit 2 (or
a cache miss), never a traceback and exit 70."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Connection, event, text

from custody.errors import InputError, LedgerError
from custody.ledger import Ledger, open_ledger
from custody.ledger.db import resolve_url
from custody.ledger.schema import http_cache
from custody.registries.base import CachedResponse
from tests.ledger.fixtures import LedgerTarget, require_postgres
from tests.support.clients import custody, project_env

T0 = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
SECRET_URL = "http://127.0.0.1:4873/secret-parameter-pkg"


def _entry(url: str, body: bytes = b'{"name": "x", "versions": {}}') -> CachedResponse:
    return CachedResponse(url=url, status=200, body=body, fetched_at=T0, etag='"e"')


def _no_statement(message: str) -> None:
    for leak in ("SELECT", "INSERT", "[SQL", "[parameters", SECRET_URL, "Traceback"):
        assert leak not in message, message


# -- 3. a malformed database URL --------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:secretpw@127.0.0.1:notaport/x",
        "postgresql://u:secretpw@[::1/x",
    ],
)
def test_a_malformed_port_is_bad_usage_with_the_password_hidden(url: str) -> None:
    with pytest.raises(InputError, match="invalid ledger database URL") as info:
        resolve_url(url)
    assert "secretpw" not in str(info.value)
    assert "u:***@" in str(info.value)
    assert info.value.exit_code == 2
    with pytest.raises(InputError, match="invalid ledger database URL"):
        open_ledger(url)


def test_a_malformed_port_exits_2_from_the_cli(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    result = custody(
        "history",
        "npm:pkg",
        "--database",
        "postgresql://u:secretpw@127.0.0.1:notaport/x",
        cwd=project,
        env=project_env(project),
    )
    assert result.code == 2, result.stderr
    assert "invalid ledger database URL" in result.stderr
    assert "secretpw" not in result.stderr + result.stdout
    assert "internal error" not in result.stderr


# -- 2. database errors once the ledger is open -------------------------------------------------


def _corrupt_table(path: Path, table: str) -> None:
    """Overwrite the root page of ``table`` with 0xFF: page 1 and ``schema_version`` stay
    intact, so the ledger opens, and reading the table fails."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with path.open("r+b") as f:
        f.seek((root[0] - 1) * page_size)
        f.write(b"\xff" * page_size)


def _sqlite_ledger_with_entry(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite3"
    ledger = open_ledger(f"sqlite:///{path}")
    ledger.store([_entry(SECRET_URL)])
    ledger.close()  # the last connection checkpoints the log into the file
    return path


def test_corrupt_pages_are_a_ledger_error_naming_the_operation(tmp_path: Path) -> None:
    path = _sqlite_ledger_with_entry(tmp_path)
    _corrupt_table(path, "http_cache")
    with open_ledger(f"sqlite:///{path}") as ledger, pytest.raises(LedgerError) as info:
        ledger.load([SECRET_URL])
    message = str(info.value)
    assert info.value.exit_code == 2
    assert f"the ledger database sqlite+pysqlite:///{path}" in message
    assert "reading cached registry responses" in message
    assert "malformed" in message or "not a database" in message
    _no_statement(message)


def test_a_full_disk_is_a_ledger_error_and_the_ledger_stays_intact(tmp_path: Path) -> None:
    """SQLite's ``max_page_count`` stands in for a full disk: "database or disk is full"."""
    path = tmp_path / "ledger.sqlite3"
    ledger = open_ledger(f"sqlite:///{path}")
    try:
        ledger.store([_entry(SECRET_URL)])

        def full(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            pages = cursor.execute("PRAGMA page_count").fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count = {pages}")
            cursor.close()

        event.listen(ledger.engine, "connect", full)
        ledger.engine.dispose()  # new connections, with the limit
        big = bytes(range(256)) * 40_000  # does not compress to nothing
        with pytest.raises(LedgerError) as info:
            ledger.store([_entry(SECRET_URL + "-2", big)])
        message = str(info.value)
        assert "database or disk is full" in message
        assert "storing registry responses" in message
        _no_statement(message)
        assert SECRET_URL in ledger.load([SECRET_URL])  # the failed write left the rest
    finally:
        ledger.close()


def test_a_constraint_violation_stays_a_bug(ledger: Ledger) -> None:
    """Only errors of the database become ``LedgerError``: a statement Custody got wrong is
    still an internal error (exit 70), not "your ledger is unusable"."""
    from sqlalchemy.exc import IntegrityError

    db = ledger._db
    with pytest.raises(IntegrityError), db.write("testing") as conn:
        conn.execute(http_cache.insert().values(url=None))


def test_other_exceptions_pass_through_unchanged(ledger: Ledger) -> None:
    db = ledger._db
    with pytest.raises(KeyError), db.read("testing"):
        raise KeyError("not a database error")


def test_a_corrupt_ledger_exits_2_from_the_cli(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    env = project_env(project)
    path = Path(env["CUSTODY_DATABASE_URL"].removeprefix("sqlite:///"))
    ledger = open_ledger(f"sqlite:///{path}")
    ledger.store([_entry("http://127.0.0.1:9/pkg")])
    ledger.close()
    _corrupt_table(path, "http_cache")
    result = custody("history", "npm:pkg", cwd=project, env=env)
    assert result.code == 2, result.stderr
    assert "the ledger database" in result.stderr
    assert "reading cached registry responses" in result.stderr
    assert "internal error" not in result.stderr
    _no_statement(result.stderr)


@pytest.mark.postgres
def test_a_lost_postgres_connection_is_a_ledger_error_without_the_password() -> None:
    """The server ends the ledger's connection (a restart, a failover, an administrator):
    the next use is a ``LedgerError`` naming the database with its password hidden."""
    base = require_postgres()
    app = f"custody_test_{uuid.uuid4().hex[:12]}"
    schema = app
    # Trust authentication ignores the password; it is there to be hidden.
    with_password = base.replace("://postgres@", "://postgres:hunter2pw@", 1)
    if "hunter2pw" not in with_password:
        pytest.skip("the test PostgreSQL URL does not have the postgres@ form")
    url = f"{with_password}{'&' if '?' in with_password else '?'}application_name={app}"
    ledger = open_ledger(url, schema=schema)
    admin = psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    try:
        ledger.store([_entry(SECRET_URL)])
        assert SECRET_URL in ledger.load([SECRET_URL])  # a pooled connection, kept open
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (app,),
        )
        with pytest.raises(LedgerError) as info:
            ledger.load([SECRET_URL])
        message = str(info.value)
        assert info.value.exit_code == 2
        assert "hunter2pw" not in message
        assert "postgres:***@" in message
        assert "reading cached registry responses" in message
        _no_statement(message)
    finally:
        ledger.close()
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


# -- 5. a stored body that cannot be inflated ---------------------------------------------------


def _damage_body(ledger: Ledger, url: str) -> None:
    with ledger.engine.begin() as conn:
        _set_body(conn, url)


def _set_body(conn: Connection, url: str) -> None:
    conn.execute(
        text("UPDATE http_cache SET body = :body, derived = NULL WHERE url = :url"),
        {"body": b"\x00", "url": url},
    )


def test_a_body_that_cannot_be_inflated_is_a_cache_miss(
    ledger_target: LedgerTarget, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = ledger_target.open()
    good = _entry(SECRET_URL + "-good")
    ledger.store([_entry(SECRET_URL), good])
    _damage_body(ledger, SECRET_URL)
    for bodies in (True, False):
        assert ledger.load([SECRET_URL, good.url], bodies=bodies) == {good.url: good}
    assert "stored body is damaged" in caplog.text
    ledger.store([_entry(SECRET_URL)])  # fetched again: replaced
    assert ledger.load([SECRET_URL])[SECRET_URL] == _entry(SECRET_URL)


def _packument(registry: str) -> dict[str, object]:
    return {
        "name": "pkg",
        "versions": {
            "1.0.0": {
                "name": "pkg",
                "version": "1.0.0",
                "_npmUser": {"name": "alice"},
                "maintainers": [{"name": "alice"}],
                "dist": {"tarball": f"{registry}pkg/-/pkg-1.0.0.tgz"},
            }
        },
        "time": {"created": "2020-01-01T00:00:00Z", "1.0.0": "2020-01-01T00:00:00Z"},
        "maintainers": [{"name": "alice"}],
    }


def test_a_damaged_cached_body_is_fetched_again_or_offline_unavailable(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    registry = httpserver.url_for("/")
    httpserver.expect_request("/pkg").respond_with_json(_packument(registry))
    project = tmp_path / "project"
    project.mkdir()
    env = project_env(project, registry)
    first = custody("history", "npm:pkg", cwd=project, env=env)
    assert first.code == 0, first.stderr
    url = env["CUSTODY_DATABASE_URL"]
    with open_ledger(url) as ledger:
        _damage_body(ledger, registry + "pkg")

    # offline: a miss, as for a package never fetched (exit 3 naming the registry)
    (project / "package-lock.json").write_text(
        json.dumps(
            {
                "name": "app",
                "version": "1.0.0",
                "lockfileVersion": 3,
                "packages": {
                    "": {"name": "app", "version": "1.0.0", "dependencies": {"pkg": "1.0.0"}},
                    "node_modules/pkg": {
                        "version": "1.0.0",
                        "resolved": f"{registry}pkg/-/pkg-1.0.0.tgz",
                    },
                },
            }
        )
    )
    (project / "custody.toml").write_text('[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n')
    offline = custody(
        "check", "package-lock.json", "--offline", "--no-content", cwd=project, env=env
    )
    assert offline.code == 3, offline.stderr
    assert "no cached copy of pkg" in offline.stderr
    assert registry.rstrip("/") in offline.stderr
    assert "internal error" not in offline.stderr

    # online: fetched again, and the row replaced
    again = custody("history", "npm:pkg", cwd=project, env=env)
    assert again.code == 0, again.stderr
    assert "1.0.0 published by npm:user/alice" in again.stdout
    with open_ledger(url) as ledger:
        assert ledger.load([registry + "pkg"])[registry + "pkg"].body
