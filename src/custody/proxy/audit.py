"""The audit trail: one JSON line per decision the proxy acts on, and the same decisions in the
ledger's ``decisions`` table (``source = "proxy"``), written in batches by a background thread
so that no request waits for a disk or a database.

Which decisions are logged:

- every artifact request (tarball, wheel, sdist, ``.metadata``): served (``allow``) or refused
  (``hold`` / ``block``), with the client;
- every version withheld from a metadata answer (``hold`` / ``block``), once per client, package
  and version within ``dedupe`` seconds (a resolver asks for the same document many times);
- approvals and denials through the admin API (``"event": "review"``).

Lines carry no credentials: no request headers are logged at all."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from custody.ledger import DecisionRecord, Ledger
from custody.model import Action, Ecosystem

log = logging.getLogger("custody.proxy")
_FLUSH_S = 0.5
_DEDUPE_MAX = 100_000


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    def __init__(self, path: Path | None, ledger: Ledger | None, *, dedupe: float = 60.0) -> None:
        self.path = path
        self.ledger = ledger
        self.dedupe = dedupe
        self.errors = 0
        self._lines: list[bytes] = []
        self._records: list[DecisionRecord] = []
        self._seen: dict[tuple[str, str, str, str, str], float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._file = path.open("ab") if path is not None else None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="custody-audit", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- producing ------------------------------------------------------------------------

    def decision(
        self,
        *,
        client: str,
        ecosystem: Ecosystem,
        package: str,
        version: str,
        action: Action,
        rules: Iterable[str],
        request: str,
        approved_by: str | None = None,
        stale: bool = False,
        dedupe: bool = False,
    ) -> None:
        if dedupe and self.dedupe > 0:
            key = (client, ecosystem.value, package, version, action.value)
            now = time.monotonic()
            seen = self._seen.get(key)
            if seen is not None and now - seen < self.dedupe:
                return
            if len(self._seen) > _DEDUPE_MAX:
                self._seen.clear()
            self._seen[key] = now
        at = datetime.now(UTC)
        rule_list = list(dict.fromkeys(rules))
        line: dict[str, Any] = {
            "time": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "event": "decision",
            "client": client,
            "ecosystem": ecosystem.value,
            "package": package,
            "version": version,
            "action": action.value,
            "rules": rule_list,
            "request": request,
        }
        if approved_by:
            line["approved_by"] = approved_by
        if stale:
            line["stale"] = True
        record = DecisionRecord(at, ecosystem, package, version, action, tuple(rule_list), "proxy")
        self._push(line, record)

    def event(self, event: str, **fields: Any) -> None:
        self._push({"time": _now(), "event": event, **fields}, None)

    def _push(self, line: dict[str, Any], record: DecisionRecord | None) -> None:
        data = orjson.dumps(line) + b"\n"
        with self._lock:
            if self._file is not None:
                self._lines.append(data)
            if record is not None and self.ledger is not None:
                self._records.append(record)
        self._wake.set()

    # -- writing --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(_FLUSH_S)
            self._wake.clear()
            self.flush()
            self._stop.wait(_FLUSH_S / 5)

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
            records, self._records = self._records, []
        if lines and self._file is not None:
            try:
                self._file.write(b"".join(lines))
                self._file.flush()
            except OSError as exc:
                self.errors += 1
                log.error("cannot write the audit log %s: %s", self.path, exc)
        if records and self.ledger is not None:
            try:
                self.ledger.record_decisions(records)
            except Exception as exc:  # the ledger being down must not stop the proxy
                self.errors += 1
                log.error("cannot record %d decisions in the ledger: %s", len(records), exc)
