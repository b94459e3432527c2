"""``custody watch --once`` against a real Verdaccio: a new maintainer's release is reported in
the first poll after it appears, as a JSON line and to a loopback webhook, and only once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.recovery.npm_env import npm_env
from tests.support.clients import custody, npm_lock
from tests.support.publish import publish_npm
from tests.support.servers import Verdaccio

pytestmark = pytest.mark.registry


def test_watch_reports_a_new_maintainers_release(
    verdaccio: Verdaccio, httpserver: HTTPServer, tmp_path: Path
) -> None:
    for i in range(3):
        publish_npm(verdaccio, "wk-kit", f"1.0.{i}", publisher="alice", maintainers=["alice"])
    verdaccio.set_times("wk-kit", {f"1.0.{i}": f"2024-0{i + 1}-10T12:00:00.000Z" for i in range(3)})
    registry = verdaccio.url
    env = npm_env(tmp_path, registry)
    project = tmp_path / "svc"
    npm_lock(project, registry, "wk-kit@1.0.2", home=Path(env["HOME"]))
    assert custody("init", cwd=project, env=env).code == 0
    recorded = custody("check", "--record", cwd=project, env=env)
    assert recorded.code == 0, recorded.stdout + recorded.stderr

    quiet = custody("watch", "--once", cwd=tmp_path, env=env)
    assert quiet.code == 0, quiet.stderr
    assert quiet.stdout == ""

    publish_npm(verdaccio, "wk-kit", "1.0.3", publisher="mallory", maintainers=["alice", "mallory"])
    received: list[dict[str, object]] = []

    def hook(request: Request) -> Response:
        received.append(json.loads(request.get_data()))
        return Response("", status=204)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(hook)
    seen = custody(
        "watch", "--once", "--webhook", httpserver.url_for("/hook"), cwd=tmp_path, env=env
    )
    assert seen.code == 1, seen.stdout + seen.stderr
    [line] = seen.stdout.splitlines()
    event = json.loads(line)
    assert event["schema"] == "custody/watch-event@1"
    assert (event["kind"], event["package"], event["version"]) == ("release", "wk-kit", "1.0.3")
    assert event["action"] == "hold" and event["from_version"] == "1.0.2"
    rules = {f["rule"]: f for f in event["findings"]}
    assert {"custody.new-publisher", "custody.new-maintainer"} <= set(rules)
    assert rules["custody.new-publisher"]["evidence"]["publisher"] == "npm:user/mallory"
    assert event["projects"] == [str(project.resolve())]
    assert event["locked"] == ["1.0.2"]
    assert received == [event]

    once = custody("watch", "--once", cwd=tmp_path, env=env)  # reported once, not every poll
    assert once.code == 0 and once.stdout == ""


def test_a_webhook_that_is_down_never_stops_the_watch(
    verdaccio: Verdaccio, httpserver: HTTPServer, tmp_path: Path
) -> None:
    for i in range(2):
        publish_npm(verdaccio, "wk-down", f"2.0.{i}", publisher="alice", maintainers=["alice"])
    verdaccio.set_times(
        "wk-down", {"2.0.0": "2024-01-10T12:00:00.000Z", "2.0.1": "2024-02-10T12:00:00.000Z"}
    )
    env = npm_env(tmp_path, verdaccio.url)
    project = tmp_path / "svc"
    npm_lock(project, verdaccio.url, "wk-down@2.0.0", home=Path(env["HOME"]))
    assert custody("init", cwd=project, env=env).code == 0
    assert custody("check", "--record", cwd=project, env=env).code == 0
    publish_npm(verdaccio, "wk-down", "2.0.2", publisher="eve", maintainers=["eve"])
    httpserver.expect_request("/hook", method="POST").respond_with_data("no", status=503)
    seen = custody(
        "watch", "--once", "--webhook", httpserver.url_for("/hook"), cwd=tmp_path, env=env
    )
    assert seen.code == 1, seen.stderr
    assert [json.loads(x)["version"] for x in seen.stdout.splitlines()] == ["2.0.2"]
    assert "webhook: gave up on npm:wk-down after HTTP 503" in seen.stderr
    assert len([r for r, _ in httpserver.log if r.path == "/hook"]) == 3


def test_watch_needs_an_inventory(tmp_path: Path) -> None:
    env = npm_env(tmp_path, "http://127.0.0.1:9/")
    empty = custody("watch", "--once", cwd=tmp_path, env=env)
    assert empty.code == 2 and "inventory is empty" in empty.stderr
