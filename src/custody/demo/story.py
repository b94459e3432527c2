"""The event-stream hand-over of 2018, as registry documents in the public npm shape.

A reconstruction for the demo: the publishers, the dependency and the order of events follow
the public post-mortems; times are approximate and file digests are placeholders."""

from __future__ import annotations

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
    doc: dict[str, Any] = {
        "name": name,
        "version": version,
        "dependencies": deps,
        "_npmUser": publisher,
        "maintainers": maintainers,
        "dist": {
            "tarball": f"{{REGISTRY}}/{name}/-/{name}-{version}.tgz",
            "shasum": "0" * 40,
        },
    }
    if repository:
        doc["repository"] = repository
    return doc


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
