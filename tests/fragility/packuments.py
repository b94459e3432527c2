"""The real npm packuments in ../shared/fixtures/npm-packuments (captured 2020-2022 by the npm
CLI project), parsed, and served by a local HTTP server as an npm registry would."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from custody.model import PackageHistory
from custody.registries.npm_packument import parse_packument

PACKUMENTS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "npm-packuments"
CAPTURED = datetime(2022, 6, 1, tzinfo=UTC)  # "now" for the fixtures: after the last capture

needs_packuments = pytest.mark.skipif(
    not PACKUMENTS.is_dir(), reason="../shared/fixtures/npm-packuments absent"
)


def documents() -> dict[str, bytes]:
    """Full packuments (with versions) by package name."""
    out = {}
    for path in sorted(PACKUMENTS.rglob("*.json")):
        raw = path.read_bytes()
        doc = orjson.loads(raw)
        if isinstance(doc, dict) and doc.get("versions") and isinstance(doc.get("name"), str):
            out[doc["name"]] = raw
    return out


def histories() -> list[PackageHistory]:
    return [
        parse_packument(
            orjson.loads(raw), name=name, registry="http://127.0.0.1:1/", fetched_at=CAPTURED
        )
        for name, raw in documents().items()
    ]


def serve(httpserver: HTTPServer, docs: dict[str, bytes]) -> str:
    """Serve ``docs`` at ``/<name>`` (``@scope%2fname`` too); the registry URL."""

    def handler(request: Request) -> Response:
        name = unquote(request.path.lstrip("/"))
        body = docs.get(name)
        if body is None:
            return Response('{"error":"Not found"}', status=404, content_type="application/json")
        return Response(body, content_type="application/json")

    httpserver.expect_request(re.compile(r"/.*")).respond_with_handler(handler)
    return httpserver.url_for("/")


def package_lock(project: Path, docs: dict[str, bytes]) -> Path:
    """A lockfile v3 with every package as a direct dependency at its latest version."""
    deps: dict[str, str] = {}
    packages: dict[str, Any] = {}
    for name, raw in docs.items():
        doc = orjson.loads(raw)
        latest = (doc.get("dist-tags") or {}).get("latest")
        if latest not in doc["versions"]:
            latest = sorted(doc["versions"])[-1]
        deps[name] = latest
        packages[f"node_modules/{name}"] = {"version": latest}
    packages = {"": {"name": "app", "version": "1.0.0", "dependencies": deps}, **packages}
    lock = {
        "name": "app",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": packages,
    }
    project.mkdir(parents=True, exist_ok=True)
    (project / "package.json").write_text(
        json.dumps({"name": "app", "version": "1.0.0", "dependencies": deps})
    )
    path = project / "package-lock.json"
    path.write_text(json.dumps(lock, indent=2))
    return path


def top(assessments: list[Any], n: int = 10) -> Iterator[str]:
    for i, a in enumerate(assessments[:n], 1):
        why = "; ".join(f"+{f['points']} {f['rule'].split('.', 1)[1]}" for f in a["factors"])
        key = f"{a['ecosystem']}:{a['package']}"
        yield f"{i:>2}. {key} score {a['score']} fragile {a['fragility']}: {why}"
