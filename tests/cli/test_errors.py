"""Bad input gets a clear error and never a pass: exit 2 names the file and line; a registry
that times out, fails or answers garbage is retried, then exit 3 names the registry."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.support.clients import Result, clean_env, custody, project_env

LOCK = """{
  "name": "app",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "packages": {
    "": {"name": "app", "dependencies": {"left-pad": "1.3.0"}},
    "node_modules/left-pad": {"version": "1.3.0"}
  }
}
"""
TRUST = '[[trusted."npm:left-pad"]]\ncustodian = "npm:user/alice"\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "package-lock.json").write_text(LOCK)
    (root / "custody.toml").write_text(TRUST)
    return root


def run(project: Path, registry: str, *args: str) -> Result:
    return custody(
        "check", "--timeout", "1", *args, cwd=project, env=project_env(project, registry)
    )


def test_malformed_lockfile_names_file_and_line(project: Path) -> None:
    (project / "package-lock.json").write_text(LOCK.replace('"version": "1.3.0"}', '"version": }'))
    result = run(project, "http://127.0.0.1:9/")
    assert result.code == 2
    assert "package-lock.json:7:" in result.stderr
    assert result.stdout == ""


def test_malformed_trust_file_names_file_and_line(project: Path) -> None:
    (project / "custody.toml").write_text(TRUST + '[policy]\ncooldown = "soon"\n')
    result = run(project, "http://127.0.0.1:9/")
    assert result.code == 2
    assert "custody.toml:4" in result.stderr


def test_missing_trust_file_says_run_init(project: Path) -> None:
    (project / "custody.toml").unlink()
    result = run(project, "http://127.0.0.1:9/")
    assert result.code == 2 and "custody init" in result.stderr


def test_unknown_format_is_usage_error(project: Path) -> None:
    result = run(project, "http://127.0.0.1:9/", "--format", "yaml")
    assert result.code == 2 and "--format" in result.stderr


def test_unreachable_registry_exits_3_naming_it(project: Path) -> None:
    result = run(project, "http://127.0.0.1:9/")
    assert result.code == 3, result.stdout + result.stderr
    assert "http://127.0.0.1:9/" in result.stderr
    assert result.stdout == ""


def test_server_errors_are_retried_then_exit_3(project: Path, httpserver: HTTPServer) -> None:
    calls = []

    def failing(request: Request) -> Response:
        calls.append(request.path)
        return Response("upstream down", status=503)

    httpserver.expect_request("/left-pad").respond_with_handler(failing)
    result = run(project, httpserver.url_for("/"))
    assert result.code == 3
    assert httpserver.url_for("/") in result.stderr
    assert len(calls) == 3


def test_garbage_json_exits_3(project: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/left-pad").respond_with_data(
        "<html>captive portal</html>", content_type="application/json"
    )
    result = run(project, httpserver.url_for("/"))
    assert result.code == 3
    assert "left-pad" in result.stderr


def test_timeout_exits_3(project: Path, httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(2.5)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/left-pad").respond_with_handler(slow)
    result = run(project, httpserver.url_for("/"))
    assert result.code == 3
    assert "timed out" in result.stderr.lower() or "timeout" in result.stderr.lower()


def test_unknown_package_is_held_not_passed(project: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/left-pad").respond_with_json({"error": "not found"}, status=404)
    result = run(project, httpserver.url_for("/"), "--format", "json")
    assert result.code == 1
    [decision] = result.json()["decisions"]
    assert decision["action"] == "hold"
    assert decision["findings"][0]["rule"] == "release.unpublished"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bogus",), "No such option: --bogus"),
        (("check", "--bogus"), "No such option: --bogus"),
        (("check", "--concurrency", "many"), "Invalid value"),
        (("approve", "npm:left-pad@1.3.0"), "Missing option"),
        (("nonsense",), "No such command"),
    ],
)
def test_bad_usage_is_exit_2_with_a_message_not_a_traceback(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    """Exit 1 means something was held: a mistyped option must never look like that (Typer's
    bundled click raised errors ``main`` did not recognise, so they ended in a traceback)."""
    result = custody(*args, cwd=tmp_path, env=clean_env(tmp_path / "home"))
    assert result.code == 2
    assert message in result.stderr and "Usage:" in result.stderr
    assert "Traceback" not in result.stderr
