"""Small HTTP helpers shared by the routes: JSON errors, the client's address, the URL clients
reach the proxy at, stale markers, and the explanation sent with a refused release."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from email.utils import formatdate
from typing import Any

import orjson
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response

from custody.model import Action, Ecosystem
from custody.proxy.judging import Verdict

_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$"
)


class BadRequest(Exception):
    """Answered with 400 and the message."""


def json_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n",
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def error(status: int, message: str, **extra: Any) -> Response:
    return json_response(status, {"error": message, **extra})


def client_of(request: Request) -> str:
    return request.client.host if request.client is not None else "-"


def base_url(request: Request, public_url: str | None) -> str:
    """What clients reach the proxy at: ``--public-url``, else the request's own scheme and
    ``Host`` (checked: a host name or address and a port, nothing else)."""
    if public_url:
        return public_url.rstrip("/")
    host = request.headers.get("host", "")
    if not _HOST.match(host):
        raise BadRequest("invalid Host header")
    scheme = request.url.scheme if request.url.scheme in ("http", "https") else "http"
    return f"{scheme}://{host}{request.scope.get('root_path', '')}"


def path_prefix(request: Request, public_url: str | None) -> str:
    """The path the proxy is mounted at (for path-absolute links in PyPI pages)."""
    if public_url:
        from urllib.parse import urlsplit

        return urlsplit(public_url).path.rstrip("/")
    return str(request.scope.get("root_path", "")).rstrip("/")


def mark_stale(headers: MutableHeaders, stale: bool, reason: str | None) -> None:
    """``Warning: 110`` (RFC 7234: the response is stale), and ``111`` when revalidation failed
    (npm then says it is "using stale data"); ``X-Custody-Stale: 1`` and the reason."""
    if not stale:
        return
    headers.append("Warning", '110 - "Response is Stale"')
    if reason and reason.startswith("upstream unavailable"):
        headers.append("Warning", f'111 - "Revalidation Failed" "{formatdate(usegmt=True)}"')
    headers["X-Custody-Stale"] = "1"
    if reason:
        headers["X-Custody-Stale-Reason"] = re.sub(r"[^\x20-\x7e]", "?", reason)[:300]


def refusal(
    ecosystem: Ecosystem,
    package: str,
    version: str,
    verdict: Verdict | None,
    admin_url: str,
) -> dict[str, Any]:
    """The body of a 403 for a held or blocked release: why, and how to let it through."""
    ref = f"{ecosystem.value}:{package}@{version}"
    if verdict is None:
        return {
            "error": f"{ref} has no verdict from custody: it is held rather than passed",
            "ecosystem": ecosystem.value,
            "package": package,
            "version": version,
            "action": Action.HOLD.value,
        }
    findings = [
        {"rule": f.rule, "severity": f.severity.value, "message": f.message}
        for f in verdict.decision.findings
    ]
    why = findings[0]["message"] if findings else verdict.action.value
    body: dict[str, Any] = {"error": ""}
    body.update(
        ecosystem=ecosystem.value,
        package=package,
        version=version,
        action=verdict.action.value,
        rules=list(verdict.rules),
        findings=findings,
    )
    if verdict.action is Action.BLOCK:
        body["error"] = f"{ref} is blocked by custody: {why}"
        if verdict.reviewed == "deny":
            body["how_to_allow"] = (
                "it was denied at the registry firewall; an approval through the admin API "
                "replaces the denial"
            )
        else:
            body["how_to_allow"] = "known malicious: no approval lets it through"
        return body
    body["error"] = (
        f"{ref} is held by custody until a person approves it ({', '.join(verdict.rules)}): {why}"
    )
    payload = orjson.dumps(
        {
            "package": f"{ecosystem.value}:{package}",
            "version": version,
            "reason": "...",
            "by": "you@example.com",
        }
    ).decode()
    body["how_to_approve"] = {
        "trust_file": (
            f'custody approve {ref} --reason "what you checked"   '
            "(then commit custody.toml; the proxy reloads it)"
        ),
        "admin_api": (
            'curl -X POST -H "Authorization: Bearer $CUSTODY_PROXY_ADMIN_TOKEN" '
            f"-H 'Content-Type: application/json' -d {shlex.quote(payload)} "
            f"{admin_url}/-/custody/approve"
        ),
    }
    return body
