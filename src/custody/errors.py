"""Errors that map to the exit codes in DESIGN.md: 2 for bad input, 3 for unreachable registries."""

from __future__ import annotations


class CustodyError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 2


class InputError(CustodyError):
    """Bad usage or unreadable input. The message names the file and, where known, the line."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        self.reason = message
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


class LockfileError(InputError):
    """A lockfile that cannot be read: always names the file, and the line when known."""


class TrustFileError(InputError):
    """custody.toml is malformed or has an entry that makes no sense."""


class RegistryUnavailable(CustodyError):
    """A registry could not be reached or answered garbage after retries: no verdict possible."""

    exit_code = 3

    def __init__(self, registry: str, reason: str):
        self.registry = registry
        self.reason = reason
        super().__init__(f"registry {registry} unavailable: {reason}")


class PackageNotFound(CustodyError):
    """The registry answered, and it does not know the package (404/410)."""

    exit_code = 2

    def __init__(self, registry: str, package: str):
        self.registry = registry
        self.package = package
        super().__init__(f"{package} not found on {registry}")


class LedgerError(InputError):
    """The ledger database failed once open (a full disk, corrupt pages, a lost PostgreSQL
    connection): exit 2. ``database`` is its URL with the password hidden, ``operation`` what
    Custody was doing; the message never holds the SQL statement or its parameters."""

    def __init__(self, database: str, operation: str, reason: str):
        self.database = database
        self.operation = operation
        super().__init__(f"the ledger database {database} failed while {operation}: {reason}")
        self.reason = reason
