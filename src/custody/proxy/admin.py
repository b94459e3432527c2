"""The admin API: list what the firewall holds, approve or deny a release.

Every call needs ``Authorization: Bearer <token>`` (``CUSTODY_PROXY_ADMIN_TOKEN`` or
``--admin-token-file``), compared in constant time. Without a configured token the API is off.

- ``GET  /-/custody/holds[?ecosystem=npm&package=NAME&status=pending|approved|denied|all]``
- ``POST /-/custody/approve`` ``{"package": "npm:NAME", "version": "1.0.6", "reason": "...",
  "by": "alice@example.com"}`` (or ``"ecosystem": "npm", "package": "NAME"``)
- ``POST /-/custody/deny`` with the same body
- ``GET  /-/custody/reviews``: every approval and denial, oldest first

Reviews go to the ledger (table ``proxy_reviews``), which every replica reads; they reach a
repository's trust file, and so the CI gate, with ``custody proxy approvals export``."""

from __future__ import annotations

import asyncio
import hmac
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from custody.model import Ecosystem
from custody.proxy.names import BadName, npm_name, pypi_name
from custody.proxy.state import ProxyState, state_of
from custody.proxy.web import client_of, error, json_response

MAX_BODY = 64 * 1024
_STATUSES = ("pending", "approved", "denied", "all")


def _authorized(request: Request, state: ProxyState) -> Response | None:
    """None when the request carries the admin token, else the error to send."""
    token = state.config.admin_token
    if not token:
        return error(
            403,
            "the admin API is disabled: start the proxy with CUSTODY_PROXY_ADMIN_TOKEN set or "
            "--admin-token-file",
        )
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        return json_response(
            401,
            {"error": "admin API: a valid bearer token is required"},
            headers={"WWW-Authenticate": 'Bearer realm="custody"'},
        )
    return None


def _package(body: dict[str, Any]) -> tuple[Ecosystem, str]:
    raw = body.get("package")
    eco_raw = body.get("ecosystem")
    if not isinstance(raw, str) or not raw:
        raise BadName('\'package\' is required: "npm:NAME" or "pypi:NAME"')
    if eco_raw is None:
        eco_raw, sep, raw = raw.partition(":")
        if not sep:
            raise BadName('\'package\' must say its ecosystem: "npm:NAME" or "pypi:NAME"')
    try:
        eco = Ecosystem(str(eco_raw).lower())
    except ValueError:
        raise BadName(f"unknown ecosystem {eco_raw!r}; use npm or pypi") from None
    if eco is Ecosystem.NPM:
        name = npm_name(raw.split("/", 1) if raw.startswith("@") else [raw])
    else:
        name = pypi_name(raw)
    return eco, name


def _text(body: dict[str, Any], key: str, limit: int) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadName(f"'{key}' is required and must not be empty")
    value = value.strip()
    if len(value) > limit or any(ord(c) < 0x20 and c not in "\t" for c in value):
        raise BadName(f"'{key}' must be at most {limit} printable characters")
    return value


async def _review(request: Request, verdict: str) -> Response:
    request.scope["custody.route"] = f"admin.{verdict}"
    state = state_of(request)
    denied = _authorized(request, state)
    if denied is not None:
        return denied
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            return error(413, f"request body larger than {MAX_BODY} bytes")
    try:
        body = orjson.loads(bytes(raw))
    except orjson.JSONDecodeError:
        return error(400, "the body must be a JSON object")
    if not isinstance(body, dict):
        return error(400, "the body must be a JSON object")
    try:
        ecosystem, package = _package(body)
        version = _text(body, "version", 256)
        reason = _text(body, "reason", 2000)
        by = _text(body, "by", 200)
    except BadName as exc:
        return error(400, str(exc))
    review = await asyncio.to_thread(
        state.ledger.add_review,
        at=datetime.now(UTC),
        ecosystem=ecosystem,
        package=package,
        version=version,
        verdict=verdict,
        by=by,
        reason=reason,
    )
    state.reviews.apply([review])
    state.metrics.reviews.labels(verdict).inc()
    state.audit.event(
        "review",
        client=client_of(request),
        verdict=verdict,
        ecosystem=ecosystem.value,
        package=package,
        version=version,
        by=by,
        reason=reason,
    )
    return json_response(
        200,
        {
            "ok": True,
            "review": _review_json(review),
            "note": (
                "recorded in the ledger: every replica applies it within "
                f"{state.config.sync_interval:g}s. `custody proxy approvals export` writes "
                "approvals into custody.toml for the CI gate."
            ),
        },
    )


def _review_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "at": r.at.isoformat(),
        "package": f"{r.ecosystem.value}:{r.package}",
        "version": r.version,
        "verdict": r.verdict,
        "by": r.by,
        "reason": r.reason,
    }


async def approve(request: Request) -> Response:
    return await _review(request, "approve")


async def deny(request: Request) -> Response:
    return await _review(request, "deny")


async def holds(request: Request) -> Response:
    request.scope["custody.route"] = "admin.holds"
    state = state_of(request)
    denied = _authorized(request, state)
    if denied is not None:
        return denied
    status = request.query_params.get("status", "pending")
    if status not in _STATUSES:
        return error(400, f"status must be one of {', '.join(_STATUSES)}")
    eco_raw = request.query_params.get("ecosystem")
    package = request.query_params.get("package")
    try:
        ecosystem = Ecosystem(eco_raw) if eco_raw else None
        if package is not None:
            if ecosystem is None:
                return error(400, "package needs ecosystem")
            package = (
                pypi_name(package)
                if ecosystem is Ecosystem.PYPI
                else npm_name(package.split("/", 1) if package.startswith("@") else [package])
            )
    except (ValueError, BadName) as exc:
        return error(400, str(exc))
    rows = await asyncio.to_thread(state.ledger.held_releases, ecosystem=ecosystem, package=package)
    out = []
    for row in rows:
        review = state.reviews.latest(row.ecosystem, row.package, row.version)
        row_status = (
            "pending" if review is None else "approved" if review.verdict == "approve" else "denied"
        )
        if status != "all" and row_status != status:
            continue
        ref = f"{row.ecosystem.value}:{row.package}@{row.version}"
        item: dict[str, Any] = {
            "package": f"{row.ecosystem.value}:{row.package}",
            "version": row.version,
            "action": row.action.value,
            "rules": list(row.rules),
            "summary": row.summary,
            "first_seen": row.first_seen.isoformat(),
            "last_seen": row.last_seen.isoformat(),
            "status": row_status,
            "approve_with": f'custody approve {ref} --reason "..."',
        }
        if review is not None:
            item["review"] = {"verdict": review.verdict, "by": review.by, "reason": review.reason}
        out.append(item)
    return json_response(200, {"holds": out, "count": len(out)})


async def reviews(request: Request) -> Response:
    request.scope["custody.route"] = "admin.reviews"
    state = state_of(request)
    denied = _authorized(request, state)
    if denied is not None:
        return denied
    rows = await asyncio.to_thread(state.ledger.reviews_since, 0)
    return json_response(200, {"reviews": [_review_json(r) for r in rows]})
