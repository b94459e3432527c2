"""The firewall in front of a real Verdaccio, driven by the real npm client.

``cp-stream-kit``: alice publishes 1.0.0-1.0.5; mallory is added as a maintainer and publishes
1.0.6. All of them are backdated past the cooldown, so the hold is about custody alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from custody.trust import TrustFileEditor
from tests.proxy.helpers import (
    ADMIN_TOKEN,
    installed_npm_version,
    npm,
    package_json,
    running_proxy,
    wait_until,
)
from tests.support.publish import publish_npm
from tests.support.servers import Verdaccio

pytestmark = pytest.mark.registry

KIT = "cp-stream-kit"
TOFU = "cp-tofu-kit"
FRESH = "cp-fresh-kit"
COOL = "cp-cool-kit"
SCOPED = "@cp-scope/kit"
OLD = {f"1.0.{i}": f"2024-0{i + 1}-10T12:00:00.000Z" for i in range(6)}
HANDOVER = {"1.0.6": "2024-08-10T12:00:00.000Z"}
TRUST = f"""\
[[trusted."npm:{KIT}"]]
custodian = "npm:user/alice"

[[trusted."npm:{SCOPED}"]]
custodian = "npm:user/alice"
"""


def _handover(verdaccio: Verdaccio, name: str) -> None:
    for i in range(6):
        publish_npm(verdaccio, name, f"1.0.{i}", publisher="alice", maintainers=["alice"])
    verdaccio.set_times(name, OLD)
    publish_npm(verdaccio, name, "1.0.6", publisher="mallory", maintainers=["alice", "mallory"])
    verdaccio.set_times(name, HANDOVER)


@pytest.fixture(scope="module")
def registry(verdaccio: Verdaccio) -> str:
    _handover(verdaccio, KIT)
    _handover(verdaccio, TOFU)
    _handover(verdaccio, SCOPED)
    publish_npm(verdaccio, FRESH, "0.1.0", publisher="zoe", maintainers=["zoe"])
    verdaccio.set_times(FRESH, {"0.1.0": "2024-03-01T00:00:00.000Z"})
    publish_npm(verdaccio, COOL, "1.0.0", publisher="alice", maintainers=["alice"])
    verdaccio.set_times(COOL, {"1.0.0": "2024-03-01T00:00:00.000Z"})
    publish_npm(verdaccio, COOL, "1.1.0", publisher="alice", maintainers=["alice"])  # just now
    return verdaccio.url


def _get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=30, trust_env=False)


def test_packument_without_the_held_version(registry: str, tmp_path: Path) -> None:
    with running_proxy(tmp_path, npm=registry, trust=TRUST) as proxy:
        full = _get(f"{proxy.npm}{KIT}")
        assert full.status_code == 200, full.text
        doc = full.json()
        assert sorted(doc["versions"]) == [f"1.0.{i}" for i in range(6)]
        assert "1.0.6" not in doc["time"] and "modified" in doc["time"]
        assert doc["dist-tags"] == {"latest": "1.0.5"}
        tarball = doc["versions"]["1.0.5"]["dist"]["tarball"]
        assert tarball == f"{proxy.npm}{KIT}/-/{KIT}-1.0.5.tgz"
        assert doc["versions"]["1.0.5"]["_npmUser"]["name"] == "alice"
        assert full.headers["x-custody-withheld"] == "1"
        assert "1.0.6" in full.headers["npm-notice"]

        small = _get(f"{proxy.npm}{KIT}", accept="application/vnd.npm.install-v1+json")
        assert small.headers["content-type"].startswith("application/vnd.npm.install-v1+json")
        abbreviated = small.json()
        assert set(abbreviated) == {"name", "dist-tags", "modified", "versions"}
        assert sorted(abbreviated["versions"]) == sorted(doc["versions"])
        assert "_npmUser" not in abbreviated["versions"]["1.0.5"]
        assert abbreviated["versions"]["1.0.5"]["dist"]["tarball"] == tarball

        again = _get(f"{proxy.npm}{KIT}", **{"if-none-match": full.headers["etag"]})
        assert again.status_code == 304

        refused = _get(f"{proxy.npm}{KIT}/-/{KIT}-1.0.6.tgz")
        assert refused.status_code == 403
        body = refused.json()
        assert body["action"] == "hold" and "custody.new-publisher" in body["rules"]
        assert f"custody approve npm:{KIT}@1.0.6" in body["how_to_approve"]["trust_file"]
        assert "/-/custody/approve" in body["how_to_approve"]["admin_api"]
        assert _get(f"{proxy.npm}{KIT}/1.0.6").status_code == 403
        assert _get(f"{proxy.npm}{KIT}/latest").json()["version"] == "1.0.5"
        assert _get(f"{proxy.npm}-/package/{KIT}/dist-tags").json() == {"latest": "1.0.5"}
        assert _get(f"{proxy.npm}{KIT}/-/{KIT}-1.0.5.tgz").status_code == 200


def _lock_for(project: Path, name: str, version: str, integrity: str, resolved: str) -> None:
    package_json(project, {name: version})
    lock: dict[str, Any] = {
        "name": "app",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {
            "": {"name": "app", "version": "1.0.0", "dependencies": {name: version}},
            f"node_modules/{name}": {
                "version": version,
                "resolved": resolved,
                "integrity": integrity,
                "license": "MIT",
            },
        },
    }
    (project / "package-lock.json").write_text(json.dumps(lock, indent=2) + "\n")


def test_npm_install_and_ci_hold_then_approve(
    registry: str, verdaccio: Verdaccio, tmp_path: Path
) -> None:
    with running_proxy(tmp_path / "proxy", npm=registry, trust=TRUST) as proxy:
        home = tmp_path / "home"
        app = tmp_path / "app"
        package_json(app)
        run = npm(app, proxy.npm, "install", f"{KIT}@^1.0.0", home=home)
        assert run.code == 0, run.output
        assert installed_npm_version(app, KIT) == "1.0.5"
        lock = json.loads((app / "package-lock.json").read_text())
        entry = lock["packages"][f"node_modules/{KIT}"]
        assert entry["resolved"] == f"{proxy.npm}{KIT}/-/{KIT}-1.0.5.tgz"

        # npm ci from that lockfile, with an empty cache: tarball through the proxy
        ci = npm(app, proxy.npm, "ci", home=tmp_path / "home-ci")
        assert ci.code == 0, ci.output
        assert installed_npm_version(app, KIT) == "1.0.5"

        # a lockfile pinned to the held release cannot be installed
        integrity = verdaccio.packument(KIT)["versions"]["1.0.6"]["dist"]["integrity"]
        pinned = tmp_path / "pinned"
        _lock_for(pinned, KIT, "1.0.6", integrity, f"{proxy.npm}{KIT}/-/{KIT}-1.0.6.tgz")
        refused = npm(pinned, proxy.npm, "ci", home=tmp_path / "home-pinned")
        assert refused.code != 0
        assert "403" in refused.output and "held by custody" in refused.output

        # fresh resolution cannot see 1.0.6 at all
        exact = tmp_path / "exact"
        package_json(exact)
        missing = npm(exact, proxy.npm, "install", f"{KIT}@1.0.6", home=tmp_path / "home-x")
        assert missing.code != 0 and "ETARGET" in missing.output

        approved = proxy.admin("approve", f"npm:{KIT}", "1.0.6")
        assert approved.status_code == 200, approved.text

        after = tmp_path / "after"
        package_json(after)
        run = npm(after, proxy.npm, "install", f"{KIT}@^1.0.0", home=tmp_path / "home-after")
        assert run.code == 0, run.output
        assert installed_npm_version(after, KIT) == "1.0.6"
        ci = npm(pinned, proxy.npm, "ci", home=tmp_path / "home-pinned-2")
        assert ci.code == 0, ci.output
        assert installed_npm_version(pinned, KIT) == "1.0.6"

        with proxy.http() as client:
            holds = client.get(
                "/-/custody/holds",
                params={"status": "all"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ).json()["holds"]
        [hold] = [h for h in holds if h["package"] == f"npm:{KIT}"]
        assert hold["version"] == "1.0.6" and hold["status"] == "approved"
        assert hold["review"]["by"] == "r@example.com"

        def served(lines: list[dict[str, Any]]) -> bool:
            return any(
                line.get("request") == "tarball"
                and line.get("action") == "allow"
                and line.get("version") == "1.0.6"
                for line in lines
            )

        lines = proxy.audit(until=served)
        refused_lines = [
            line
            for line in lines
            if line.get("package") == KIT
            and line.get("version") == "1.0.6"
            and line.get("action") == "hold"
        ]
        assert refused_lines and {"time", "client", "rules", "request"} <= set(refused_lines[0])
        assert any(
            line.get("request") == "tarball"
            and line.get("action") == "allow"
            and line.get("version") == "1.0.6"
            for line in lines
        )
        assert any(line.get("event") == "review" for line in lines)


def test_unknown_packages_trusted_on_first_use(registry: str, tmp_path: Path) -> None:
    with running_proxy(tmp_path / "proxy", npm=registry, trust=TRUST) as proxy:
        doc = _get(f"{proxy.npm}{TOFU}").json()
        assert sorted(doc["versions"]) == [f"1.0.{i}" for i in range(6)]
        assert _get(f"{proxy.npm}{TOFU}/-/{TOFU}-1.0.6.tgz").json()["rules"][0] == (
            "custody.new-publisher"
        )
        app = tmp_path / "app"
        package_json(app)
        run = npm(app, proxy.npm, "install", f"{TOFU}@^1.0.0", FRESH, home=tmp_path / "home")
        assert run.code == 0, run.output
        assert installed_npm_version(app, TOFU) == "1.0.5"
        assert installed_npm_version(app, FRESH) == "0.1.0"


def test_unknown_packages_by_policy_are_held(registry: str, tmp_path: Path) -> None:
    args = ["--unknown-packages", "policy"]
    with running_proxy(tmp_path / "proxy", npm=registry, trust=TRUST, args=args) as proxy:
        doc = _get(f"{proxy.npm}{FRESH}").json()
        assert doc["versions"] == {} and doc["dist-tags"] == {}
        body = _get(f"{proxy.npm}{FRESH}/-/{FRESH}-0.1.0.tgz").json()
        assert "deps.new-package" in body["rules"]
        known = _get(f"{proxy.npm}{KIT}").json()
        assert "1.0.5" in known["versions"]  # packages the trust file knows are unaffected


def test_cooldown_holds_a_new_release(registry: str, tmp_path: Path) -> None:
    with running_proxy(tmp_path / "proxy", npm=registry, trust=TRUST) as proxy:
        doc = _get(f"{proxy.npm}{COOL}").json()
        assert sorted(doc["versions"]) == ["1.0.0"]
        assert doc["dist-tags"] == {"latest": "1.0.0"}
        body = _get(f"{proxy.npm}{COOL}/-/{COOL}-1.1.0.tgz").json()
        assert body["rules"] == ["release.too-new"]
        assert proxy.admin("approve", f"npm:{COOL}", "1.1.0").status_code == 200
        assert _get(f"{proxy.npm}{COOL}").json()["dist-tags"] == {"latest": "1.1.0"}


def test_scoped_package_both_url_forms(registry: str, tmp_path: Path) -> None:
    with running_proxy(tmp_path / "proxy", npm=registry, trust=TRUST) as proxy:
        plain = _get(f"{proxy.npm}{SCOPED}")
        escaped = _get(f"{proxy.npm}{SCOPED.replace('/', '%2f')}")
        assert plain.status_code == escaped.status_code == 200
        assert plain.json() == escaped.json()
        doc = plain.json()
        assert sorted(doc["versions"]) == [f"1.0.{i}" for i in range(6)]
        assert doc["versions"]["1.0.5"]["dist"]["tarball"] == f"{proxy.npm}{SCOPED}/-/kit-1.0.5.tgz"
        app = tmp_path / "app"
        package_json(app)
        run = npm(app, proxy.npm, "install", f"{SCOPED}@^1.0.0", home=tmp_path / "home")
        assert run.code == 0, run.output
        assert installed_npm_version(app, SCOPED) == "1.0.5"


def test_trust_file_changes_apply_without_restart(registry: str, tmp_path: Path) -> None:
    with running_proxy(tmp_path / "proxy", npm=registry, trust=TRUST) as proxy:
        assert "1.0.6" not in _get(f"{proxy.npm}{KIT}").json()["versions"]
        assert proxy.trust_file is not None
        editor = TrustFileEditor.open(proxy.trust_file)
        editor.add_trusted(f"npm:{KIT}", "npm:user/mallory", note="the announced new maintainer")
        editor.save()
        assert wait_until(lambda: "1.0.6" in _get(f"{proxy.npm}{KIT}").json()["versions"])
        assert _get(f"{proxy.npm}{KIT}").json()["dist-tags"]["latest"] == "1.0.6"

        proxy.trust_file.write_text("this is [ not toml")  # a broken edit is not applied
        health = wait_until(lambda: _get(f"{proxy.url}/healthz").json()["status"] == "degraded")
        assert health
        assert "1.0.6" in _get(f"{proxy.npm}{KIT}").json()["versions"]


def test_denied_release_is_blocked(registry: str, tmp_path: Path) -> None:
    with running_proxy(tmp_path / "proxy", npm=registry, trust=TRUST) as proxy:
        assert proxy.admin("deny", f"npm:{KIT}", "1.0.5", reason="bad build").status_code == 200
        doc = _get(f"{proxy.npm}{KIT}").json()
        assert "1.0.5" not in doc["versions"] and doc["dist-tags"] == {"latest": "1.0.4"}
        body = _get(f"{proxy.npm}{KIT}/-/{KIT}-1.0.5.tgz").json()
        assert body["action"] == "block" and body["rules"][0] == "proxy.denied"


def test_writes_are_refused_by_default(registry: str, verdaccio: Verdaccio, tmp_path: Path) -> None:
    with running_proxy(tmp_path / "proxy", npm=registry, trust=TRUST) as proxy:
        refused = httpx.put(f"{proxy.npm}{KIT}", json={"name": KIT}, trust_env=False)
        assert refused.status_code == 405
        assert "--allow-writes" in refused.json()["error"]
        assert _get(f"{proxy.npm}-/whoami").status_code == 405
        assert _get(f"{proxy.npm}-/ping").status_code == 200


def test_writes_pass_through_when_allowed(verdaccio: Verdaccio, tmp_path: Path) -> None:
    args = ["--allow-writes"]
    with running_proxy(tmp_path / "proxy", npm=verdaccio.url, args=args) as proxy:
        token = verdaccio.token("alice")
        home = tmp_path / "home"
        pkg = tmp_path / "pkg"
        pkg.mkdir()
        (pkg / "package.json").write_text(
            json.dumps({"name": "cp-published-through", "version": "1.0.0", "main": "index.js"})
        )
        (pkg / "index.js").write_text("module.exports = 1;\n")
        host = proxy.npm.split("://", 1)[1]
        run = npm(pkg, proxy.npm, "publish", f"--//{host}:_authToken={token}", home=home)
        assert run.code == 0, run.output
        assert "1.0.0" in verdaccio.packument("cp-published-through")["versions"]
        writes = proxy.audit(until=lambda ls: any(line.get("event") == "write" for line in ls))
        assert any(line.get("event") == "write" for line in writes)
        assert token not in proxy.audit_log.read_text()


def test_metrics_and_health(registry: str, tmp_path: Path) -> None:
    with running_proxy(tmp_path / "proxy", npm=registry, trust=TRUST) as proxy:
        _get(f"{proxy.npm}{KIT}")
        _get(f"{proxy.npm}{KIT}/-/{KIT}-1.0.6.tgz")
        text = _get(f"{proxy.url}/metrics").text
        assert (
            'custody_proxy_requests_total{method="GET",route="npm.packument",status="200"}' in text
        )
        assert 'custody_proxy_refused_artifacts_total{action="hold",ecosystem="npm"} 1.0' in text
        assert "custody_proxy_request_seconds_bucket" in text
        assert 'custody_proxy_held_releases{ecosystem="npm"}' in text
        health = _get(f"{proxy.url}/healthz").json()
        assert health["status"] == "ok" and health["packages_in_memory"] >= 1
        with proxy.http() as client:
            assert client.get("/-/custody/holds").status_code == 401
            wrong = {"Authorization": "Bearer not-the-token-at-all"}
            assert client.get("/-/custody/holds", headers=wrong).status_code == 401
        log = "".join(p.read_text() for p in proxy.root.glob("proxy-*.log"))
        assert ADMIN_TOKEN not in log and ADMIN_TOKEN not in proxy.audit_log.read_text()
