"""Several Ledger instances (processes, replicas) on one database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from custody.ledger import Ledger
from custody.model import Ecosystem, LockedDependency
from custody.registries.base import CachedResponse
from tests.ledger.fixtures import LedgerTarget

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NPM = Ecosystem.NPM


def test_instances_see_each_others_writes(ledger_target: LedgerTarget) -> None:
    a, b = ledger_target.open(), ledger_target.open()

    a.store([CachedResponse("http://r/x", 200, b"{}", T0, etag='"1"')])
    assert b.load(["http://r/x"])["http://r/x"].etag == '"1"'
    b.store([CachedResponse("http://r/x", 200, b"{}", T0, etag='"2"')])
    assert a.load(["http://r/x"])["http://r/x"].etag == '"2"'

    a.observe({(NPM, "p"): (T0, [("owner", "npm:user/alice", None)])})
    b.observe({(NPM, "p"): (T0 + timedelta(hours=1), [])})
    (obs,) = a.observations(NPM, ["p"])["p"]
    assert obs.gone_since == T0 + timedelta(hours=1)

    b.record_publishes([(NPM, "p", "1.0.0", "npm:user/alice", T0)])
    assert len(a.publishes_by("npm:user/alice", T0, T0)) == 1

    a.record_inventory("proj", "package-lock.json", [LockedDependency(NPM, "p", "1", True)], T0)
    assert [e.project for e in b.where(NPM, "p")] == ["proj"]


def test_concurrent_writers(ledger_target: LedgerTarget) -> None:
    """Writers in parallel (threads, each with its own Ledger) neither fail nor lose rows, and
    concurrent looks at the same package never leave two open intervals for one fact."""
    ledgers: list[Ledger] = [ledger_target.open() for _ in range(4)]
    barrier = threading.Barrier(len(ledgers))
    errors: list[BaseException] = []

    def work(n: int, ledger: Ledger) -> None:
        barrier.wait()
        try:
            for i in range(20):
                url = f"http://r/{n}/{i}"
                ledger.store([CachedResponse(url, 200, b"x" * 1000, T0)])
                ledger.load([url, "http://r/0/0"])
                ledger.observe({(NPM, "shared"): (T0, [("owner", "npm:user/alice", None)])})
                ledger.record_publishes([(NPM, f"p{n}", str(i), "npm:user/alice", T0)])
                ledger.record_inventory(
                    "proj", "lock", [LockedDependency(NPM, f"p{n}", str(i), True)], T0
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, lg)) for n, lg in enumerate(ledgers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    check = ledgers[0]
    assert len(check.load([f"http://r/{n}/{i}" for n in range(4) for i in range(20)])) == 80
    assert len(check.observations(NPM, ["shared"])["shared"]) == 1
    assert len(check.publishes_by("npm:user/alice", T0, T0)) == 80
    assert (
        len(ledgers[0].where(NPM, "p0"))
        + len(ledgers[0].where(NPM, "p1"))
        + len(ledgers[0].where(NPM, "p2"))
        + len(ledgers[0].where(NPM, "p3"))
        == 1
    )
