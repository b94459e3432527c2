"""PyPI routes under ``/pypi/``.

===========================================  =================================================
``GET /pypi/simple/``                        the project list (PEP 503 HTML or PEP 691 JSON)
``GET /pypi/simple/NAME/``                   the project page with held releases' files removed
``GET /pypi/files/NAME/FILE``                a distribution file, or 403 when held or blocked
``GET /pypi/files/NAME/FILE.metadata``       its PEP 658 core metadata, or 403
===========================================  =================================================

A name that is not normalised (``Stream_Kit``) is redirected to its PEP 503 form. Uploads are
not accepted: publish to the index directly."""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from custody.errors import PackageNotFound, RegistryUnavailable
from custody.model import Action, Ecosystem
from custody.proxy.judging import version_key
from custody.proxy.names import BadName, dist_filename, pypi_name
from custody.proxy.serving import (
    Rendered,
    Unavailable,
    etag_of,
    lookup,
    refuse,
    send_artifact,
    send_metadata,
)
from custody.proxy.simple import (
    JSON_V1,
    choose_format,
    render_html,
    render_index_html,
    render_index_json,
    render_json,
)
from custody.proxy.state import ProxyState, state_of
from custody.proxy.store import Answer
from custody.proxy.upstream import PypiSource
from custody.proxy.web import error, mark_stale, path_prefix

log = logging.getLogger("custody.proxy")
PYPI = Ecosystem.PYPI
_UNSERVABLE = "proxy.unservable-file"
_NOT_ACCEPTABLE = (
    "no acceptable format: the simple API is served as text/html, "
    "application/vnd.pypi.simple.v1+html and application/vnd.pypi.simple.v1+json"
)


def _prefix(request: Request, state: ProxyState) -> str:
    return path_prefix(request, state.config.public_url) + "/pypi"


def _canonical(request: Request) -> tuple[str, str]:
    raw = request.path_params["name"]
    return raw, pypi_name(raw)


def _render(answer: Answer, state: ProxyState, fmt: str, prefix: str) -> Rendered:
    view = answer.view
    source = view.snapshot.source
    assert isinstance(source, PypiSource)
    kept = []
    withheld: dict[str, tuple[str, Action, tuple[str, ...]]] = {}
    for f in source.page.files:
        vkey = version_key(PYPI, f.version) if f.version else None
        verdict = view.verdicts.get(vkey) if vkey else None
        servable = state.upstreams.artifact_allowed(f.url)
        if verdict is not None and verdict.action is Action.ALLOW and servable:
            kept.append(f)
            continue
        label = f.version or f.filename
        if verdict is None or verdict.action is Action.ALLOW:
            withheld.setdefault(label, (label, Action.HOLD, (_UNSERVABLE,)))
        else:
            withheld.setdefault(label, (label, verdict.action, verdict.rules))
    if fmt == JSON_V1:
        versions = [v for v, verdict in view.verdicts.items() if verdict.action is Action.ALLOW]
        body = render_json(source.page, kept, versions, prefix)
    else:
        body = render_html(source.page, kept, prefix)
    return Rendered(body, etag_of(body), tuple(withheld.values()))


async def project(request: Request) -> Response:
    request.scope["custody.route"] = "pypi.project"
    state = state_of(request)
    try:
        raw, name = _canonical(request)
    except BadName as exc:
        return error(400, str(exc))
    prefix = _prefix(request, state)
    if raw != name or not request.scope["path"].endswith("/"):
        return RedirectResponse(f"{prefix}/simple/{name}/", status_code=301)
    fmt = choose_format(request.headers.get("accept"))
    if fmt is None:
        return error(406, _NOT_ACCEPTABLE)
    try:
        answer, entry = await lookup(state, PYPI, name)
    except Unavailable as exc:
        return exc.response
    key = ("pypi", fmt, prefix)
    rendered = entry.rendered.get(key)
    if rendered is None:
        rendered = _render(answer, state, fmt, prefix)
        entry.rendered[key] = rendered
    return send_metadata(request, state, PYPI, name, answer, rendered, fmt)


async def index(request: Request) -> Response:
    request.scope["custody.route"] = "pypi.index"
    state = state_of(request)
    if state.upstreams.pypi_settings is None:
        return error(404, "no PyPI upstream configured")
    fmt = choose_format(request.headers.get("accept"))
    if fmt is None:
        return error(406, _NOT_ACCEPTABLE)
    cache = state.index_cache
    now = time.monotonic()
    stale = False
    if cache is None or now - cache[0] >= state.config.max_age:
        try:
            names, stale = await state.upstreams.pypi_index()
            state.index_cache = cache = (now, names)
        except (RegistryUnavailable, PackageNotFound) as exc:
            if cache is None:
                return error(503, f"the upstream index is unavailable: {exc}")
            stale = True
        finally:
            state.upstreams.flush()
    names = cache[1]
    prefix = _prefix(request, state)
    body = render_index_json(names) if fmt == JSON_V1 else render_index_html(names, prefix)
    response = Response(
        body, media_type=fmt, headers={"Cache-Control": "no-cache", "Vary": "Accept"}
    )
    mark_stale(response.headers, stale, "upstream unavailable" if stale else None)
    return response


async def file(request: Request) -> Response:
    request.scope["custody.route"] = "pypi.file"
    state = state_of(request)
    try:
        _raw, name = _canonical(request)
        filename = dist_filename(request.path_params["filename"])
    except BadName as exc:
        return error(400, str(exc))
    metadata = filename.endswith(".metadata")
    wanted = filename[: -len(".metadata")] if metadata else filename
    try:
        answer, _entry = await lookup(state, PYPI, name)
    except Unavailable as exc:
        return exc.response
    source = answer.view.snapshot.source
    assert isinstance(source, PypiSource)
    found = source.page.file(wanted)
    if found is None or (metadata and found.core_metadata is False):
        return error(404, f"{filename} is not a file of pypi:{name} on the upstream index")
    label = found.version or found.filename
    verdict = answer.view.verdicts.get(version_key(PYPI, found.version)) if found.version else None
    what = "core metadata" if metadata else "file"
    if verdict is None or verdict.action is not Action.ALLOW:
        return refuse(request, state, PYPI, name, label, verdict, what)
    if not state.upstreams.artifact_allowed(found.url):
        return error(403, f"{filename} is hosted outside the allowed artifact hosts")
    if metadata:
        url = found.url + ".metadata"
        digests = dict(found.core_metadata) if not isinstance(found.core_metadata, bool) else {}
        media = "application/octet-stream"
    else:
        url = found.url
        digests = dict(found.hashes)
        media = "application/octet-stream"
    return await send_artifact(
        request,
        state,
        PYPI,
        name,
        label,
        verdict,
        url,
        digests,
        state.upstreams.pypi_auth(url),
        media,
        what,
    )


async def upload(request: Request) -> Response:
    request.scope["custody.route"] = "pypi.upload"
    return error(
        405,
        "custody proxy does not accept uploads: upload to the Python index directly",
    )
