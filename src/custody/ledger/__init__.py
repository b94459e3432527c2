"""The ledger: response cache, observations, publish events, inventory and decision log.

SQLite by default (one file in the user cache directory), PostgreSQL by URL."""

from custody.ledger.decisions import DecisionRecord
from custody.ledger.inventory import InventoryEntry
from custody.ledger.ledger import Ledger, open_ledger
from custody.ledger.migrations import LATEST_VERSION, SchemaVersionError
from custody.ledger.publishes import PublishEvent

__all__ = [
    "LATEST_VERSION",
    "DecisionRecord",
    "InventoryEntry",
    "Ledger",
    "PublishEvent",
    "SchemaVersionError",
    "open_ledger",
]
