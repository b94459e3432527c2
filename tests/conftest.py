"""Shared fixtures: real registry servers (tests/support/servers.py) and ledgers on SQLite and
PostgreSQL (tests/ledger/fixtures.py)."""

pytest_plugins = ["tests.support.servers", "tests.ledger.fixtures"]
