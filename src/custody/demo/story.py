"""The event-stream hand-over of 2018, as registry documents in the public npm shape.

A reconstruction for the demo: the publishers, the dependency and the order of events follow
the public post-mortems; times are approximate and file digests are placeholders."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from typing import Any

DOMINIC = {"name": "dominictarr", "email": "dominic@example.invalid"}
RIGHT9 = {"name": "right9ctrl", "email": "right9ctrl@example.invalid"}
REPO = {"type": "git", "url": "git://github.com/dominictarr/event-stream.git"}

_EVENT_STREAM = [
    ("3.3.0", "2015-03-15T08:30:40.000Z", DOMINIC, [DOMINIC], {}),
    ("3.3.1", "2015-05-05T01:21:08.000Z", DOMINIC, [DOMINIC], {}),
    ("3.3.2", "2015-10-22T09:30:31.000Z", DOMINIC, [DOMINIC], {}),
    ("3.3.3", "2016-05-24T21:51:58.000Z", DOMINIC, [DOMINIC], {}),
    ("3.3.4", "2016-07-06T05:15:15.000Z", DOMINIC, [DOMINIC], {}),
    ("3.3.5", "2018-09-05T21:28:20.000Z", DOMINIC, [DOMINIC, RIGHT9], {}),
    ("3.3.6", "2018-09-09T11:43:21.000Z", RIGHT9, [DOMINIC, RIGHT9], {"flatmap-stream": "^0.1.0"}),
    ("4.0.0", "2018-09-09T12:03:46.000Z", RIGHT9, [RIGHT9], {}),
]
_BASE_DEPS = {
    "duplexer": "~0.1.1",
    "from": "~0",
    "map-stream": "~0.1.0",
    "pause-stream": "0.0.11",
    "split": "0.3",
    "stream-combiner": "~0.0.4",
    "through": "~2.3.1",
}


def _version(
    name: str,
    version: str,
    publisher: dict[str, str],
    maintainers: list[dict[str, str]],
    deps: dict[str, str],
    repository: dict[str, str] | None,
) -> dict[str, Any]:
    data = tarball(name, version, deps)
    doc: dict[str, Any] = {
        "name": name,
        "version": version,
        "dependencies": deps,
        "_npmUser": publisher,
        "maintainers": maintainers,
        "dist": {
            "tarball": f"{{REGISTRY}}/{name}/-/{name}-{version}.tgz",
            "shasum": hashlib.sha1(data).hexdigest(),
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(),
        },
    }
    if repository:
        doc["repository"] = repository
    return doc


# A harmless stand-in for flatmap-stream 0.1.1's payload: an encoded blob appended to the end of
# index.min.js and run through a computed require, the shape of the 2018 attack. It is never run.
_PAYLOAD = base64.b64encode(b"// stand-in for an encrypted payload, never executed\n" * 40).decode()
_APPENDED = (
    '\n!function(){try{var r=require,t=process;var e=r("crypto"),n=Buffer.from("'
    + _PAYLOAD
    + '","base64").toString();new Function(n)()}catch(e){}}();\n'
)


def tarball(name: str, version: str, deps: dict[str, str]) -> bytes:
    """A small, deterministic npm tarball for the demo registry."""
    manifest = {"name": name, "version": version, "main": "index.js", "dependencies": deps}
    index = "module.exports = require('./lib');\n"
    files = {"package/package.json": json.dumps(manifest, indent=2).encode()}
    if name == "flatmap-stream":
        index = "module.exports=function(n,t){return n.pipe?n:[].concat(n).map(t)};\n"
        files["package/index.min.js"] = (index + (_APPENDED if version == "0.1.1" else "")).encode()
    files["package/index.js"] = index.encode()
    raw = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path, body in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(body), 0o644, 499162500
            tar.addfile(info, io.BytesIO(body))
    return raw.getvalue()


def tarballs() -> dict[str, bytes]:
    """Every demo tarball by its registry path (``name/-/name-version.tgz``)."""
    out = {}
    for name, doc in documents().items():
        for version, manifest in doc["versions"].items():
            out[f"{name}/-/{name}-{version}.tgz"] = tarball(name, version, manifest["dependencies"])
    return out


def _packument(name: str, releases: list[Any], repository: dict[str, str] | None) -> dict[str, Any]:
    versions = {}
    time = {}
    for version, when, publisher, maintainers, deps in releases:
        versions[version] = _version(name, version, publisher, maintainers, deps, repository)
        time[version] = when
    latest = releases[-1]
    time["created"] = releases[0][1]
    time["modified"] = latest[1]
    return {
        "_id": name,
        "name": name,
        "dist-tags": {"latest": latest[0]},
        "versions": versions,
        "time": time,
        "maintainers": latest[3],
        "repository": repository,
    }


def documents() -> dict[str, Any]:
    es = [(v, t, p, m, {**_BASE_DEPS, **d}) for v, t, p, m, d in _EVENT_STREAM]
    flatmap: list[Any] = [
        ("0.1.0", "2018-09-09T10:59:50.000Z", RIGHT9, [RIGHT9], {}),
        ("0.1.1", "2018-10-05T18:33:05.000Z", RIGHT9, [RIGHT9], {}),
    ]
    return {
        "event-stream": _packument("event-stream", es, REPO),
        "flatmap-stream": _packument("flatmap-stream", flatmap, None),
    }


def lockfile(event_stream: str, flatmap: str | None) -> dict[str, Any]:
    """A package-lock.json (v3) for an app that depends on event-stream."""
    packages: dict[str, Any] = {
        "": {"name": "wallet-app", "version": "1.0.0", "dependencies": {"event-stream": "^3.3.4"}},
        "node_modules/event-stream": {
            "version": event_stream,
            "resolved": f"{{REGISTRY}}/event-stream/-/event-stream-{event_stream}.tgz",
            "dependencies": {"flatmap-stream": "^0.1.0"} if flatmap else {},
        },
    }
    if flatmap:
        packages["node_modules/flatmap-stream"] = {
            "version": flatmap,
            "resolved": f"{{REGISTRY}}/flatmap-stream/-/flatmap-stream-{flatmap}.tgz",
        }
    return {
        "name": "wallet-app",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": packages,
    }
