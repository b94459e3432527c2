"""The upstream stops in the middle of a test (a Verdaccio of the test's own): packages already
seen keep installing from the proxy's caches, marked stale; a package never seen fails closed
with a clear error, never with unfiltered metadata."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.proxy.helpers import installed_npm_version, npm, package_json, running_proxy
from tests.support.publish import publish_npm
from tests.support.servers import start_verdaccio

pytestmark = pytest.mark.registry

KIT = "cp-resilient-kit"
TRUST = f"""\
[[trusted."npm:{KIT}"]]
custodian = "npm:user/alice"
"""


def _get(url: str) -> httpx.Response:
    return httpx.get(url, trust_env=False, timeout=60)


def test_upstream_down_serves_the_last_good_filtered_copy(tmp_path: Path) -> None:
    (tmp_path / "verdaccio").mkdir()
    servers = start_verdaccio(tmp_path / "verdaccio")
    verdaccio = next(servers)
    try:
        for i in range(3):
            publish_npm(verdaccio, KIT, f"1.0.{i}", publisher="alice", maintainers=["alice"])
        publish_npm(verdaccio, KIT, "1.0.3", publisher="mallory", maintainers=["mallory"])
        verdaccio.set_times(KIT, {f"1.0.{i}": f"2024-0{i + 1}-01T00:00:00.000Z" for i in range(4)})
        publish_npm(verdaccio, "cp-never-seen", "1.0.0", publisher="alice", maintainers=["alice"])

        # --max-age 0: every request revalidates, so the outage is seen at once
        args = ["--max-age", "0", "--upstream-timeout", "2"]
        ledger = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        common = {"npm": verdaccio.url, "trust": TRUST, "database": ledger, "args": args}
        with running_proxy(tmp_path / "proxy", **common) as proxy:
            app = tmp_path / "app"
            package_json(app)
            run = npm(app, proxy.npm, "install", f"{KIT}@^1.0.0", home=tmp_path / "home")
            assert run.code == 0, run.output
            assert installed_npm_version(app, KIT) == "1.0.2"
            fresh = _get(f"{proxy.npm}{KIT}")
            assert "x-custody-stale" not in fresh.headers

            servers.close()  # the upstream goes away

            stale = _get(f"{proxy.npm}{KIT}")
            assert stale.status_code == 200
            assert stale.headers["x-custody-stale"] == "1"
            assert stale.headers["warning"].startswith("110")
            assert sorted(stale.json()["versions"]) == ["1.0.0", "1.0.1", "1.0.2"]

            again = tmp_path / "again"
            package_json(again)
            run = npm(again, proxy.npm, "install", f"{KIT}@^1.0.0", home=tmp_path / "home2")
            assert run.code == 0, run.output
            assert installed_npm_version(again, KIT) == "1.0.2"

            never = _get(f"{proxy.npm}cp-never-seen")
            assert never.status_code == 503
            assert "no verdict" in never.json()["error"] and never.json()["failed_closed"]
            other = tmp_path / "other"
            package_json(other)
            run = npm(
                other, proxy.npm, "install", "cp-never-seen", "--fetch-retries=0",
                home=tmp_path / "home3",
            )  # fmt: skip
            assert run.code != 0 and "503" in run.output

        # A new process on the same ledger and caches, with the upstream still down
        root = tmp_path / "proxy"
        cache = ["--cache-dir", str(root / "artifacts")]
        with running_proxy(tmp_path / "proxy2", **{**common, "args": [*args, *cache]}) as second:
            doc = _get(f"{second.npm}{KIT}")
            assert doc.status_code == 200 and doc.headers["x-custody-stale"] == "1"
            assert sorted(doc.json()["versions"]) == ["1.0.0", "1.0.1", "1.0.2"]
            tarball = _get(f"{second.npm}{KIT}/-/{KIT}-1.0.2.tgz")
            assert tarball.status_code == 200
            assert _get(f"{second.npm}{KIT}/-/{KIT}-1.0.3.tgz").status_code == 403
    finally:
        servers.close()
