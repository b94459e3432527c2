"""The ``ledger`` fixture over both backends, usable from any test folder.

Every test runs on SQLite (a file in ``tmp_path``) and on PostgreSQL
(``CUSTODY_TEST_POSTGRES_URL``, default the local trust-auth server), each PostgreSQL test in a
fresh random schema dropped afterwards, so parallel runs never collide. PostgreSQL tests are
skipped only when the server cannot be reached, and fail instead when ``CI`` is set and the URL
was given explicitly.

Use from another folder with ``pytest_plugins = ["tests.ledger.fixtures"]`` in the top-level
conftest, or ``from tests.ledger.fixtures import ledger, ledger_target  # noqa: F401``.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from custody.ledger import Ledger, open_ledger
from custody.ledger.db import redact

POSTGRES_URL_ENV = "CUSTODY_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@functools.cache
def _postgres_unreachable(url: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def require_postgres() -> str:
    url = postgres_url()
    reason = _postgres_unreachable(url)
    if reason is not None:
        message = f"PostgreSQL at {redact(url)} unreachable: {reason}"
        if os.environ.get("CI") and os.environ.get(POSTGRES_URL_ENV):
            pytest.fail(message)
        pytest.skip(message)
    return url


@dataclass
class LedgerTarget:
    """One test database: open as many ``Ledger``s on it as a test needs."""

    backend: str  # "sqlite" or "postgresql"
    url: str
    schema: str | None = None
    opened: list[Ledger] = field(default_factory=list)

    def open(self) -> Ledger:
        ledger = open_ledger(self.url, schema=self.schema)
        self.opened.append(ledger)
        return ledger

    def close_all(self) -> None:
        for ledger in self.opened:
            ledger.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerTarget]:
    """An empty database on each backend (nothing created until a ledger is opened)."""
    if request.param == "sqlite":
        target = LedgerTarget("sqlite", f"sqlite:///{tmp_path / 'ledger' / 'ledger.sqlite3'}")
        yield target
        target.close_all()
        return
    url = require_postgres()
    schema = f"custody_test_{uuid.uuid4().hex[:16]}"
    target = LedgerTarget("postgresql", url, schema)
    try:
        yield target
    finally:
        target.close_all()
        with psycopg.connect(_libpq(url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def ledger(ledger_target: LedgerTarget) -> Ledger:
    """An open, migrated ledger on each backend, closed after the test."""
    return ledger_target.open()
