"""What npm and PyPI answers have in common: looking a package up (with the failures mapped to
clear HTTP errors), sending a rendered metadata document (ETag, 304, stale markers, audit of
withheld versions), and sending or refusing an artifact."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from custody.errors import PackageNotFound, RegistryUnavailable
from custody.model import Action, Ecosystem
from custody.proxy.artifacts import (
    ArtifactMismatch,
    ArtifactNotFound,
    ArtifactUnavailable,
    Served,
)
from custody.proxy.judging import Verdict
from custody.proxy.state import ProxyState
from custody.proxy.store import Answer, _Entry
from custody.proxy.web import base_url, client_of, error, json_response, mark_stale, refusal

log = logging.getLogger("custody.proxy")
Withheld = tuple[tuple[str, Action, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    etag: str
    withheld: Withheld  # (version, action, rules) of every version left out
    extra: Any = None  # per format: the filtered npm document (version routes use it)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class Unavailable(Exception):
    """Carries the error response for a package that cannot be judged."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


async def lookup(state: ProxyState, ecosystem: Ecosystem, name: str) -> tuple[Answer, _Entry]:
    """The package's verdicts; raises ``Unavailable`` with a 404 or a fail-closed 503."""
    try:
        return await state.store.answer(ecosystem, name)
    except PackageNotFound:
        raise Unavailable(
            error(404, f"{ecosystem.value}:{name} is not on the upstream registry")
        ) from None
    except RegistryUnavailable as exc:
        raise Unavailable(
            error(
                503,
                f"the upstream registry is unavailable and custody has no judged copy of "
                f"{ecosystem.value}:{name}: no verdict, so nothing is served ({exc.reason})",
                failed_closed=True,
            )
        ) from None
    except Exception as exc:  # a judgement that failed: no verdict, nothing served
        log.exception("no verdict for %s:%s", ecosystem.value, name)
        raise Unavailable(
            error(
                503,
                f"custody could not judge {ecosystem.value}:{name} ({type(exc).__name__}): "
                "no verdict, so nothing is served",
                failed_closed=True,
            )
        ) from None


def send_metadata(
    request: Request,
    state: ProxyState,
    ecosystem: Ecosystem,
    name: str,
    answer: Answer,
    rendered: Rendered,
    media_type: str,
) -> Response:
    client = client_of(request)
    for version, action, rules in rendered.withheld:
        state.audit.decision(
            client=client,
            ecosystem=ecosystem,
            package=name,
            version=version,
            action=action,
            rules=rules,
            request="metadata",
            stale=answer.stale,
            dedupe=True,
        )
        state.metrics.withheld.labels(ecosystem.value, action.value).inc()
    headers = {"ETag": rendered.etag, "Cache-Control": "no-cache", "Vary": "Accept"}
    if rendered.withheld:
        headers["X-Custody-Withheld"] = str(len(rendered.withheld))
        if ecosystem is Ecosystem.NPM:  # npm prints this header as "npm notice ..."
            headers["npm-notice"] = _notice(ecosystem, name, rendered.withheld)
    if request.headers.get("if-none-match") == rendered.etag:
        response = Response(status_code=304, headers=headers)
    else:
        body = b"" if request.method == "HEAD" else rendered.body
        response = Response(body, media_type=media_type, headers=headers)
        if request.method == "HEAD":
            response.headers["Content-Length"] = str(len(rendered.body))
    mark_stale(response.headers, answer.stale, answer.reason)
    return response


def _notice(ecosystem: Ecosystem, name: str, withheld: Withheld) -> str:
    shown = ", ".join(f"{v} ({a.value}: {', '.join(r[:2])})" for v, a, r in withheld[:3])
    more = f" and {len(withheld) - 3} more" if len(withheld) > 3 else ""
    text = (
        f"custody: {len(withheld)} version(s) of {ecosystem.value}:{name} withheld until "
        f"approved: {shown}{more}"
    )
    return text.encode("ascii", "replace").decode()[:400]


def refuse(
    request: Request,
    state: ProxyState,
    ecosystem: Ecosystem,
    name: str,
    version: str,
    verdict: Verdict | None,
    what: str,
) -> Response:
    action = verdict.action if verdict is not None else Action.HOLD
    state.audit.decision(
        client=client_of(request),
        ecosystem=ecosystem,
        package=name,
        version=version,
        action=action,
        rules=verdict.rules if verdict is not None else ("proxy.no-verdict",),
        request=what,
    )
    state.metrics.refused.labels(ecosystem.value, action.value).inc()
    admin = base_url(request, state.config.public_url)
    return json_response(403, refusal(ecosystem, name, version, verdict, admin))


async def send_artifact(
    request: Request,
    state: ProxyState,
    ecosystem: Ecosystem,
    name: str,
    version: str,
    verdict: Verdict,
    url: str,
    digests: Mapping[str, str],
    auth: str | None,
    media_type: str,
    what: str,
) -> Response:
    """Fetch (or take from the cache) and send an allowed artifact."""
    try:
        served: Served = await state.artifacts.fetch(url, digests, auth=auth)
    except ArtifactNotFound:
        return error(404, f"{what} of {ecosystem.value}:{name}@{version} is gone from the upstream")
    except ArtifactMismatch as exc:
        log.critical(
            "integrity mismatch for %s:%s@%s (%s): %s", ecosystem.value, name, version, what, exc
        )
        state.metrics.upstream_errors.labels(ecosystem.value, "integrity").inc()
        return error(
            502,
            f"the upstream served {what} of {ecosystem.value}:{name}@{version} with bytes that "
            f"do not match its published {exc.algorithm} digest: not served",
            rule="content.integrity-mismatch",
        )
    except ArtifactUnavailable as exc:
        state.metrics.upstream_errors.labels(ecosystem.value, "artifact").inc()
        return error(
            503,
            f"{what} of {ecosystem.value}:{name}@{version} is not in custody's cache and the "
            f"upstream failed: {exc}",
        )
    state.metrics.cache.labels("artifact", "hit" if served.cached else "miss").inc()
    state.audit.decision(
        client=client_of(request),
        ecosystem=ecosystem,
        package=name,
        version=version,
        action=Action.ALLOW,
        rules=verdict.rules,
        request=what,
        approved_by=verdict.approved_by,
    )
    headers = {"Cache-Control": "no-cache"}
    if served.digest:
        headers["ETag"] = f'"{served.digest[:80]}"'
    if served.data is not None:
        body = b"" if request.method == "HEAD" else served.data
        response = Response(body, media_type=media_type, headers=headers)
        if request.method == "HEAD":
            response.headers["Content-Length"] = str(served.size)
        return response
    assert served.path is not None
    return FileResponse(served.path, media_type=media_type, headers=headers)
