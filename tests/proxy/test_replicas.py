"""Two proxy processes sharing one PostgreSQL ledger agree: a release approved through one is
served by the other, and both list the same holds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.ledger.fixtures import require_postgres
from tests.proxy.helpers import ADMIN_TOKEN, running_proxy, wait_until
from tests.support.publish import publish_npm
from tests.support.servers import Verdaccio

pytestmark = [pytest.mark.registry, pytest.mark.postgres]

KIT = "cp-replica-kit"


@pytest.fixture
def schema() -> Iterator[tuple[str, str]]:
    url = require_postgres()
    name = f"custody_proxy_{uuid.uuid4().hex[:12]}"
    yield url, name
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="module")
def registry(verdaccio: Verdaccio) -> str:
    for i in range(3):
        publish_npm(verdaccio, KIT, f"1.0.{i}", publisher="alice", maintainers=["alice"])
    verdaccio.set_times(KIT, {f"1.0.{i}": f"2024-0{i + 1}-01T00:00:00.000Z" for i in range(3)})
    publish_npm(verdaccio, KIT, "1.0.3", publisher="mallory", maintainers=["alice", "mallory"])
    verdaccio.set_times(KIT, {"1.0.3": "2024-06-01T00:00:00.000Z"})
    return verdaccio.url


def _versions(url: str) -> list[str]:
    return sorted(httpx.get(f"{url}/npm/{KIT}", trust_env=False, timeout=30).json()["versions"])


def test_an_approval_through_one_replica_is_honoured_by_the_other(
    registry: str, schema: tuple[str, str], tmp_path: Path
) -> None:
    url, name = schema
    args = ["--sync-interval", "0.3"]
    common = {"npm": registry, "database": url, "schema": name, "args": args}
    with (
        running_proxy(tmp_path / "a", **common) as a,
        running_proxy(tmp_path / "b", **common) as b,
    ):
        assert _versions(a.url) == _versions(b.url) == ["1.0.0", "1.0.1", "1.0.2"]
        with b.http() as client:
            holds = client.get(
                "/-/custody/holds", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            ).json()["holds"]
        assert [(h["package"], h["version"]) for h in holds] == [(f"npm:{KIT}", "1.0.3")]

        assert a.admin("approve", f"npm:{KIT}", "1.0.3").status_code == 200
        assert "1.0.3" in _versions(a.url)  # at once on the replica that took it
        assert wait_until(lambda: "1.0.3" in _versions(b.url), timeout=10)
        tarball = httpx.get(f"{b.url}/npm/{KIT}/-/{KIT}-1.0.3.tgz", trust_env=False, timeout=30)
        assert tarball.status_code == 200

        assert b.admin("deny", f"npm:{KIT}", "1.0.3", reason="retracted").status_code == 200
        assert wait_until(lambda: "1.0.3" not in _versions(a.url), timeout=10)
