"""npm routes under ``/npm/``.

====================================================  ========================================
``GET /npm/NAME``, ``/npm/@SCOPE/NAME``,              the packument, filtered (full, or
``/npm/@SCOPE%2fNAME``                                abbreviated when asked for)
``GET /npm/NAME/-/FILE.tgz``                          the tarball, or 403 when held or blocked
``GET /npm/NAME/VERSION`` or ``/npm/NAME/TAG``        one version's document, or 403
``GET /npm/-/package/NAME/dist-tags``                 the filtered dist-tags
``GET /npm/-/ping``                                   answered by the proxy
anything else (publish, unpublish, login, whoami,     405, or passed upstream untouched with
audit, search, dist-tag changes...)                   ``--allow-writes``
====================================================  ========================================
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response

from custody.content.fetch import expected_digests
from custody.model import Action, Ecosystem
from custody.proxy.names import BadName, npm_name, tarball_filename, version_or_tag
from custody.proxy.packument import ABBREVIATED, abbreviate, filter_full
from custody.proxy.serving import (
    Rendered,
    Unavailable,
    etag_of,
    lookup,
    refuse,
    send_artifact,
    send_metadata,
)
from custody.proxy.state import ProxyState, state_of
from custody.proxy.store import Answer
from custody.proxy.upstream import NpmSource
from custody.proxy.web import BadRequest, base_url, client_of, error, json_response

log = logging.getLogger("custody.proxy")
NPM = Ecosystem.NPM
_READS = ("GET", "HEAD")
_UNSERVABLE = "proxy.unservable-tarball"
_MAX_RENDERED = 8
_FORWARDED_HEADERS = (
    "content-type",
    "accept",
    "authorization",
    "npm-otp",
    "npm-command",
    "npm-auth-type",
    "npm-scope",
    "npm-session",
    "npm-in-ci",
    "user-agent",
)


def _split(request: Request) -> list[str]:
    path: str = request.scope["path"]
    rest = path[len("/npm") :].lstrip("/") if path.startswith("/npm") else ""
    if not rest:
        return []
    parts = rest.split("/")
    for part in parts:
        if part in ("", ".", "..") or any(ord(c) < 0x21 or c in "\\%" for c in part):
            raise BadName("invalid path")
    return parts


async def dispatch(request: Request) -> Response:
    state = state_of(request)
    try:
        parts = _split(request)
        if not parts:
            return json_response(200, {"custody": "npm registry firewall", "db_name": "registry"})
        if parts[0] == "-":
            return await _dash(request, state, parts)
        if request.method not in _READS:
            return await _write(request, state, parts)
        scoped = parts[0].startswith("@")
        name = npm_name(parts[:2] if scoped else parts[:1])
        rest = parts[2:] if scoped else parts[1:]
        if not rest:
            return await _packument(request, state, name)
        if rest[0] == "-" and len(rest) == 2:
            return await _tarball(request, state, name, tarball_filename(rest[1]))
        if len(rest) == 1:
            return await _version(request, state, name, version_or_tag(rest[0]))
        return error(404, "not found")
    except BadName as exc:
        request.scope["custody.route"] = "npm.invalid"
        return error(400, str(exc))
    except BadRequest as exc:
        return error(400, str(exc))
    except Unavailable as exc:
        return exc.response


# -- metadata ----------------------------------------------------------------------------------


def _render(answer: Answer, name: str, base: str, abbreviated: bool) -> Rendered:
    view = answer.view
    source = view.snapshot.source
    assert isinstance(source, NpmSource)
    allowed = {
        v
        for v, verdict in view.verdicts.items()
        if verdict.action is Action.ALLOW and v not in source.unusable
    }
    full = filter_full(source.doc, name, allowed, source.tarballs, base)
    withheld: list[tuple[str, Action, tuple[str, ...]]] = []
    for version in source.doc.get("versions") or {}:
        if version in full["versions"]:
            continue
        verdict = view.verdicts.get(version)
        if verdict is None or verdict.action is Action.ALLOW:
            withheld.append((version, Action.HOLD, (_UNSERVABLE,)))
        else:
            withheld.append((version, verdict.action, verdict.rules))
    doc = abbreviate(full) if abbreviated else full
    body = orjson.dumps(doc)
    return Rendered(body, etag_of(body), tuple(withheld), full)


async def _rendered(
    request: Request, state: ProxyState, name: str, abbreviated: bool
) -> tuple[Answer, Rendered]:
    answer, entry = await lookup(state, NPM, name)
    base = base_url(request, state.config.public_url)
    key = ("npm", abbreviated, base)
    rendered = entry.rendered.get(key)
    if rendered is None:
        rendered = _render(answer, name, base, abbreviated)
        if len(entry.rendered) >= _MAX_RENDERED:  # one per Host a client used: bounded
            entry.rendered.clear()
        entry.rendered[key] = rendered
    return answer, rendered


async def _packument(request: Request, state: ProxyState, name: str) -> Response:
    request.scope["custody.route"] = "npm.packument"
    accept = request.headers.get("accept", "")
    abbreviated = ABBREVIATED in accept
    answer, rendered = await _rendered(request, state, name, abbreviated)
    media = ABBREVIATED if abbreviated else "application/json"
    return send_metadata(request, state, NPM, name, answer, rendered, media)


async def _version(request: Request, state: ProxyState, name: str, wanted: str) -> Response:
    request.scope["custody.route"] = "npm.version"
    answer, rendered = await _rendered(request, state, name, abbreviated=False)
    full: dict[str, Any] = rendered.extra
    version = full["dist-tags"].get(wanted, wanted)
    manifest = full["versions"].get(version)
    if manifest is not None:
        body = orjson.dumps(manifest)
        return Response(body, media_type="application/json", headers={"ETag": etag_of(body)})
    source = answer.view.snapshot.source
    assert isinstance(source, NpmSource)
    if version in (source.doc.get("versions") or {}):
        return refuse(
            request, state, NPM, name, version, answer.view.verdicts.get(version), "version"
        )
    return error(404, f"npm:{name} has no version or tag {wanted!r}")


async def _tarball(request: Request, state: ProxyState, name: str, filename: str) -> Response:
    request.scope["custody.route"] = "npm.tarball"
    answer, _entry = await lookup(state, NPM, name)
    source = answer.view.snapshot.source
    assert isinstance(source, NpmSource)
    tarball = source.tarballs.get(filename)
    if tarball is None:
        return error(404, f"{filename} is not a tarball of npm:{name} on the upstream registry")
    verdict = answer.view.verdicts.get(tarball.version)
    if verdict is None or verdict.action is not Action.ALLOW:
        return refuse(request, state, NPM, name, tarball.version, verdict, "tarball")
    release = answer.view.snapshot.source.history.release(tarball.version)
    digests = expected_digests(release.artifacts[0]) if release and release.artifacts else {}
    return await send_artifact(
        request,
        state,
        NPM,
        name,
        tarball.version,
        verdict,
        tarball.url,
        digests,
        state.upstreams.npm_auth(tarball.url),
        "application/octet-stream",
        "tarball",
    )


# -- the /-/ namespace and writes --------------------------------------------------------------


async def _dash(request: Request, state: ProxyState, parts: list[str]) -> Response:
    if parts == ["-", "ping"] and request.method in _READS:
        request.scope["custody.route"] = "npm.ping"
        return json_response(200, {})
    if (
        request.method in _READS
        and len(parts) in (4, 5)
        and parts[1] == "package"
        and parts[-1] == "dist-tags"
    ):
        request.scope["custody.route"] = "npm.dist-tags"
        name = npm_name(parts[2:-1])
        _answer, rendered = await _rendered(request, state, name, abbreviated=False)
        return json_response(200, rendered.extra["dist-tags"])
    return await _write(request, state, parts)


async def _write(request: Request, state: ProxyState, parts: list[str]) -> Response:
    """Publishes and every other request the firewall does not judge."""
    request.scope["custody.route"] = "npm.write"
    if not state.config.allow_writes:
        message = (
            f"custody proxy: {request.method} /npm/{'/'.join(parts)} is not passed to the "
            "upstream registry (the firewall is read-only). Publish to the upstream registry "
            "directly, or start the proxy with --allow-writes."
        )
        return json_response(405, {"error": message}, headers={"Allow": "GET, HEAD"})
    return await _forward(request, state, parts)


async def _forward(request: Request, state: ProxyState, parts: list[str]) -> Response:
    settings = state.upstreams.npm_settings
    if settings is None:
        return error(404, "no npm upstream configured")
    scoped = parts[0].startswith("@") and len(parts) >= 2
    registry = settings.registry_for("/".join(parts[:2])) if scoped else settings.registry
    raw = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0]
    suffix = raw[len("/npm/") :] if raw.startswith("/npm/") else ""
    if not suffix or any(c in suffix for c in "\\\r\n\t ") or "//" in suffix:
        return error(400, "invalid path")
    target = registry.rstrip("/") + "/" + suffix
    if request.url.query:
        target += "?" + request.url.query
    limit = state.config.max_body_bytes
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return error(413, f"request body larger than {limit} bytes")
    headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED_HEADERS}
    try:
        upstream = await state.http.request(
            request.method, target, content=bytes(body), headers=headers
        )
    except httpx.HTTPError as exc:
        return error(502, f"the upstream registry failed: {type(exc).__name__}")
    state.audit.event(
        "write",
        client=client_of(request),
        method=request.method,
        path="/" + "/".join(parts),
        status=upstream.status_code,
    )
    keep = {
        k: v
        for k, v in upstream.headers.items()
        if k.lower() in ("content-type", "www-authenticate", "npm-notice", "etag")
    }
    return Response(upstream.content, status_code=upstream.status_code, headers=keep)
