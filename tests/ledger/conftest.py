"""Ledger fixtures (see fixtures.py; the top-level conftest belongs to the test-infra work)."""

from tests.ledger.fixtures import ledger, ledger_target

__all__ = ["ledger", "ledger_target"]
