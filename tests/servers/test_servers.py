"""The real registry fixtures work and record custody the way the public registries do."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from tests.support.publish import fetch_bytes, publish_npm, publish_pypi
from tests.support.servers import Devpi, Verdaccio, require_tool, start_server

pytestmark = pytest.mark.registry

SLACK = timedelta(minutes=2)
JSON_SIMPLE = "application/vnd.pypi.simple.v1+json"


def _parse_npm_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"{argv[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done


# --------------------------------------------------------------------------- Verdaccio


def test_verdaccio_round_trip_keeps_publisher_maintainers_and_time(verdaccio: Verdaccio) -> None:
    started = datetime.now(UTC)
    first = publish_npm(
        verdaccio, "srv-event-stream", "1.0.0", publisher="alice", maintainers=["alice"]
    )
    second = publish_npm(
        verdaccio,
        "srv-event-stream",
        "1.0.1",
        publisher="mallory",
        maintainers=["alice", "mallory"],
        dependencies={"srv-flatmap-stream": "^0.1.0"},
    )

    doc = verdaccio.packument("srv-event-stream")
    v100, v101 = doc["versions"]["1.0.0"], doc["versions"]["1.0.1"]
    assert v100["_npmUser"] == {"name": "alice", "email": "alice@example.com"}
    assert v101["_npmUser"] == {"name": "mallory", "email": "mallory@example.com"}
    assert [m["name"] for m in v100["maintainers"]] == ["alice"]
    assert [m["name"] for m in v101["maintainers"]] == ["alice", "mallory"]
    assert v101["dependencies"] == {"srv-flatmap-stream": "^0.1.0"}
    assert doc["dist-tags"] == {"latest": "1.0.1"}
    assert "maintainers" not in doc  # Verdaccio keeps maintainers per version only

    times = {key: _parse_npm_time(value) for key, value in doc["time"].items()}
    assert {"created", "modified", "1.0.0", "1.0.1"} <= times.keys()
    for stamp in times.values():
        assert started - SLACK <= stamp <= datetime.now(UTC) + SLACK
    assert times["created"] <= times["1.0.0"] <= times["1.0.1"] <= times["modified"]

    for release, version in ((first, v100), (second, v101)):
        assert version["dist"]["shasum"] == release.shasum
        assert version["dist"]["integrity"] == release.integrity
        assert version["dist"]["tarball"].startswith(verdaccio.url)
        tarball = fetch_bytes(version["dist"]["tarball"])
        assert hashlib.sha1(tarball).hexdigest() == release.shasum


def test_verdaccio_stores_npm_user_as_sent_not_the_authenticated_account(
    verdaccio: Verdaccio,
) -> None:
    publish_npm(
        verdaccio,
        "@srv/as-sent",
        "2.0.0",
        publisher="dominictarr",
        maintainers=["dominictarr"],
        token=verdaccio.token("alice"),
    )
    version = verdaccio.packument("@srv/as-sent")["versions"]["2.0.0"]
    assert version["_npmUser"]["name"] == "dominictarr"
    assert version["dist"]["tarball"] == f"{verdaccio.url}@srv/as-sent/-/as-sent-2.0.0.tgz"


def test_verdaccio_refuses_anonymous_publish(verdaccio: Verdaccio) -> None:
    with pytest.raises(AssertionError, match="HTTP 401"):
        publish_npm(
            verdaccio, "srv-anon", "1.0.0", publisher="alice", maintainers=["alice"], token="x"
        )


def test_verdaccio_time_can_be_backdated_for_history_tests(verdaccio: Verdaccio) -> None:
    publish_npm(verdaccio, "srv-old", "1.0.0", publisher="alice", maintainers=["alice"])
    verdaccio.set_times("srv-old", {"1.0.0": "2018-09-09T00:00:00.000Z"})
    assert verdaccio.packument("srv-old")["time"]["1.0.0"] == "2018-09-09T00:00:00.000Z"


def test_verdaccio_abbreviated_document_flags_install_scripts(verdaccio: Verdaccio) -> None:
    publish_npm(
        verdaccio,
        "srv-scripted",
        "1.0.0",
        publisher="alice",
        maintainers=["alice"],
        scripts={"postinstall": "node setup.js"},
    )
    with verdaccio.http() as client:
        response = client.get(
            verdaccio.package_url("srv-scripted"),
            headers={"accept": "application/vnd.npm.install-v1+json"},
        )
    version = response.json()["versions"]["1.0.0"]
    assert version["hasInstallScript"] is True
    assert "_npmUser" not in version


def _npm_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    env.update(HOME=str(home), npm_config_update_notifier="false")
    return env


def test_npm_cli_installs_from_verdaccio(verdaccio: Verdaccio, tmp_path: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not on PATH (scripts/install-test-tools.sh needs it too)")
    publish_npm(verdaccio, "srv-leaf", "0.1.0", publisher="alice", maintainers=["alice"])
    for version in ("1.0.0", "1.0.1"):
        publish_npm(
            verdaccio,
            "srv-app-dep",
            version,
            publisher="alice",
            maintainers=["alice"],
            dependencies={"srv-leaf": "^0.1.0"},
            files={"index.js": f"module.exports = {json.dumps(version)};\n".encode()},
        )
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text('{"name": "consumer", "version": "0.0.0"}\n')
    npmrc = verdaccio.write_npmrc(tmp_path / "npmrc")
    argv = [npm, "install", "srv-app-dep@1.0.1", "--registry", verdaccio.url]
    argv += ["--userconfig", str(npmrc), "--cache", str(tmp_path / "cache")]
    argv += ["--no-audit", "--no-fund"]
    _run(argv, cwd=project, env=_npm_env(tmp_path / "home"))

    installed = json.loads((project / "node_modules/srv-app-dep/package.json").read_text())
    assert installed["version"] == "1.0.1"
    assert (project / "node_modules/srv-leaf/package.json").is_file()
    lock = json.loads((project / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/srv-app-dep"]["version"] == "1.0.1"


# --------------------------------------------------------------------------- devpi


def _uploads(project: dict[str, Any]) -> dict[str, set[str]]:
    """version -> set of uploaders, from devpi's per-file logs."""
    return {
        version: {
            entry["who"]
            for link in data["+links"]
            for entry in link["log"]
            if entry["what"] == "upload"
        }
        for version, data in project["result"].items()
    }


@pytest.fixture(scope="module")
def devpi_index(devpi: Devpi) -> str:
    """``alice/servers``: alice owns it; mallory may upload only once the ACL says so."""
    devpi.create_user("alice")
    devpi.create_user("mallory")
    devpi.create_index("alice/servers", acl_upload=["alice"])
    return "alice/servers"


def test_devpi_round_trip_records_who_uploaded(devpi: Devpi, devpi_index: str) -> None:
    started = datetime.now(UTC).replace(microsecond=0)
    publish_pypi(
        devpi, devpi_index, "Srv_Pkg", "1.0.0", uploader="alice", requires_dist=["requests>=2"]
    )
    with pytest.raises(AssertionError, match="HTTP 403"):
        publish_pypi(devpi, devpi_index, "Srv_Pkg", "1.0.1", uploader="mallory")

    config = devpi.set_acl_upload(devpi_index, ["alice", "mallory"])
    assert config["acl_upload"] == ["alice", "mallory"]
    assert config["bases"] == []
    publish_pypi(devpi, devpi_index, "Srv_Pkg", "1.0.1", uploader="mallory")

    project = devpi.project_json(devpi_index, "srv-pkg")
    assert project["type"] == "projectconfig"
    assert _uploads(project) == {"1.0.0": {"alice"}, "1.0.1": {"mallory"}}
    v100 = project["result"]["1.0.0"]
    assert v100["requires_dist"] == ["requests>=2"]
    assert sorted(link["href"].rsplit("/", 1)[1] for link in v100["+links"]) == [
        "srv_pkg-1.0.0-py3-none-any.whl",
        "srv_pkg-1.0.0.tar.gz",
    ]
    year, month, day, hour, minute, second = v100["+links"][0]["log"][0]["when"]
    when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    assert started - SLACK <= when <= datetime.now(UTC) + SLACK


def test_devpi_serves_pep_691_json_and_pep_658_metadata(devpi: Devpi, devpi_index: str) -> None:
    release = publish_pypi(
        devpi, devpi_index, "srv-meta", "2.0.0", uploader="alice", requires_dist=["idna"]
    )
    page_url = devpi.simple_url(devpi_index) + "srv-meta/"
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        response = client.get(page_url, headers={"accept": JSON_SIMPLE})
        html = client.get(page_url, headers={"accept": "text/html"})
    assert response.headers["content-type"].startswith(JSON_SIMPLE)
    page = response.json()
    assert page["meta"]["api-version"] == "1.0"
    files = {f["filename"]: f for f in page["files"]}
    wheel = files["srv_meta-2.0.0-py3-none-any.whl"]
    assert wheel["core-metadata"] is True
    assert "core-metadata" not in files["srv_meta-2.0.0.tar.gz"]
    assert wheel["hashes"]["sha256"] == hashlib.sha256(release.wheel.read_bytes()).hexdigest()
    assert 'data-core-metadata="true"' in html.text

    metadata = fetch_bytes(urljoin(page_url, wheel["url"]) + ".metadata").decode()
    assert metadata == release.metadata
    assert "Requires-Dist: idna" in metadata


def test_pip_installs_from_devpi(devpi: Devpi, devpi_index: str, tmp_path: Path) -> None:
    for version in ("3.0.0", "3.0.1"):
        publish_pypi(devpi, devpi_index, "srv-installable", version, uploader="alice")
    target = tmp_path / "target"
    argv = [sys.executable, "-m", "pip", "install", "--isolated", "--no-cache-dir"]
    argv += ["--index-url", devpi.simple_url(devpi_index), "--target", str(target)]
    argv += ["srv-installable==3.0.1"]
    # --isolated ignores PIP_* variables and user config; PIP_CONFIG_FILE=devnull also drops
    # the machine-wide config (constraints, extra indexes), which --isolated still reads.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    _run(argv, cwd=tmp_path, env=env)

    assert (target / "srv_installable" / "__init__.py").read_text() == '__version__ = "3.0.1"\n'
    assert (target / "srv_installable-3.0.1.dist-info" / "METADATA").is_file()


def test_devpi_client_talks_to_the_server(devpi: Devpi, devpi_index: str) -> None:
    done = devpi.client("getjson", devpi.index_url(devpi_index))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"]["acl_upload"][0] == "alice"


# --------------------------------------------------------------------------- process handling


def test_missing_tool_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"install-test-tools\.sh"):
        require_tool(tmp_path / "verdaccio")


def test_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"install-test-tools\.sh"):
        require_tool(tmp_path / "verdaccio")


def test_server_that_dies_fails_with_its_log_tail(tmp_path: Path) -> None:
    def argv(port: int) -> list[str]:
        return [sys.executable, "-c", f"print('cannot bind {port}'); raise SystemExit(3)"]

    with pytest.raises(pytest.fail.Exception, match=r"(?s)did not become ready.*cannot bind"):
        start_server("broken", argv, cwd=tmp_path, ready_path="/")


CHILD_AND_SERVER = """\
import http.server, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open("child.pid", "w").write(str(child.pid))
http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port=int(sys.argv[1]),
                 bind="127.0.0.1")
"""


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    (tmp_path / "serve.py").write_text(CHILD_AND_SERVER)
    proc, _port = start_server(
        "toy", lambda port: [sys.executable, "serve.py", str(port)], cwd=tmp_path, ready_path="/"
    )
    child = int((tmp_path / "child.pid").read_text())
    proc.stop()
    assert proc.popen.poll() is not None
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
