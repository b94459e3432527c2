"""The custody timeline around a release unpublished later: with ``--as-of`` it was published
then, but the registry removed its publisher, maintainers and provenance; the releases after it
are compared with the last release whose custody is known, so no maintainer or provenance
change is lost and none is made up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import msgspec
from pytest_httpserver import HTTPServer

from custody.model import Artifact, Ecosystem, PackageHistory, Provenance, Release
from custody.timeline import REMOVED_DETAILS, Event, timeline
from tests.support.clients import custody, project_env

from .builders import T0, history, release


def _unpublished(version: str, day: float) -> Release:
    """As the npm reader records a version with a ``time`` entry and no ``versions`` entry."""
    r = release(version, day)
    return Release(r.ecosystem, r.name, version, published_at=r.published_at, unpublished=True)


def _handover() -> PackageHistory:
    """The hunt's ``handover`` packument."""
    h = history(
        release("1.0.0", 0, "alice", ["alice"]),
        _unpublished("1.0.1", 31),
        release("1.0.2", 60, "alice", ["alice", "bob"]),
        release("1.1.0", 90, "bob", ["bob"], provenance="bob/pkg"),
        release("1.2.0", 120, "bob", ["bob", "carol"], provenance="bob/pkg"),
    )
    return h


LATER = T0 + timedelta(days=700)  # after every release


def _changes(events: list[Event]) -> list[tuple[str, str | None, str]]:
    return [(e.kind, e.version, e.text) for e in events if e.version != "1.0.1"]


def test_as_of_after_every_release_loses_no_custody_change() -> None:
    h = _handover()
    now = timeline(h)
    then = timeline(h, as_of=LATER)
    assert _changes(then) == _changes(now)
    assert ("maintainer-added", "1.0.2", "maintainer added: npm:user/bob") in _changes(then)
    [stub] = [e for e in then if e.version == "1.0.1"]
    assert stub.text == f"1.0.1 published ({REMOVED_DETAILS})"
    assert stub.data["details_removed"] is True
    assert [e.kind for e in now if e.version == "1.0.1"] == ["unpublished"]


def test_a_history_cut_by_as_of_is_read_the_same_way() -> None:
    """``PackageHistory.as_of`` (what the judge and the fragility report use) turns the
    unpublished release into a plain one without details: it is still not compared with."""
    h = _handover()
    cut = timeline(h.as_of(LATER))
    assert _changes(cut) == _changes(timeline(h))
    [stub] = [e for e in cut if e.version == "1.0.1"]
    assert stub.text == f"1.0.1 published ({REMOVED_DETAILS})"


def test_no_provenance_change_is_made_up_around_an_unpublished_release() -> None:
    h = history(
        release("1.0.0", 0, "alice", ["alice"], provenance="alice/pkg"),
        _unpublished("1.0.1", 10),
        release("1.0.2", 20, "alice", ["alice"], provenance="alice/pkg"),
        _unpublished("1.0.3", 30),
        release("1.0.4", 40, "alice", ["alice"]),
    )
    for events in (timeline(h, as_of=LATER), timeline(h.as_of(LATER))):
        provenance = [(e.kind, e.version) for e in events if e.kind.startswith("provenance")]
        assert provenance == [("provenance-off", "1.0.4")]


def test_as_of_between_releases_keeps_only_what_was_published_then() -> None:
    h = _handover()
    when = T0 + timedelta(days=70)
    events = timeline(h, as_of=when)
    assert [e.version for e in events if e.kind == "publish"] == ["1.0.0", "1.0.1", "1.0.2"]
    assert ("maintainer-added", "1.0.2") in [(e.kind, e.version) for e in events]


def test_a_release_the_registry_keeps_without_custody_details_is_compared_with() -> None:
    """A published release whose registry hides who published it (a PyPI release: files, no
    uploader, no maintainers) is a real release, not an unpublished one: the next release is
    compared with it as before, and it is not shown as unpublished."""
    files = (Artifact("pkg-1.0.1.tar.gz", kind="sdist"),)
    bare = Release(Ecosystem.PYPI, "pkg", "1.0.1", published_at=T0, artifacts=files)
    with_provenance = msgspec.structs.replace(
        bare, version="1.0.2", published_at=T0 + timedelta(days=1), provenance=Provenance("pep740")
    )
    h = history(bare, with_provenance, ecosystem=Ecosystem.PYPI)
    for events in (timeline(h), timeline(h, as_of=LATER), timeline(h.as_of(LATER))):
        assert [(e.kind, e.version) for e in events] == [
            ("publish", "1.0.1"),
            ("publish", "1.0.2"),
            ("provenance-on", "1.0.2"),
        ]
        assert events[0].text == "1.0.1 published by unknown publisher"


def _packument(registry: str) -> dict[str, object]:
    def version(v: str, publisher: str, maintainers: list[str], **extra: object) -> object:
        return {
            "name": "handover",
            "version": v,
            "_npmUser": {"name": publisher},
            "maintainers": [{"name": m} for m in maintainers],
            "dist": {"tarball": f"{registry}handover/-/handover-{v}.tgz", **extra},
        }

    return {
        "name": "handover",
        "versions": {
            "1.0.0": version("1.0.0", "alice", ["alice"]),
            "1.0.2": version("1.0.2", "alice", ["alice", "bob"]),
            "1.1.0": version(
                "1.1.0",
                "bob",
                ["bob"],
                attestations={"url": f"{registry}att", "provenance": {"predicateType": "x"}},
            ),
        },
        "time": {
            "created": "2020-01-01T00:00:00Z",
            "modified": "2020-05-01T00:00:00Z",
            "1.0.0": "2020-01-01T00:00:00Z",
            "1.0.1": "2020-02-01T00:00:00Z",
            "1.0.2": "2020-03-01T00:00:00Z",
            "1.1.0": "2020-04-01T00:00:00Z",
        },
        "maintainers": [{"name": "bob"}],
    }


def test_history_as_of_from_the_cli_shows_the_maintainer_added(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    registry = httpserver.url_for("/")
    httpserver.expect_request("/handover").respond_with_json(_packument(registry))
    project = tmp_path / "project"
    project.mkdir()
    env = project_env(project, registry)
    now = custody("history", "npm:handover", "--format", "json", cwd=project, env=env)
    then = custody(
        "history", "npm:handover", "--format", "json", "--as-of", "2021-12-01", cwd=project, env=env
    )
    assert now.code == 0 and then.code == 0, now.stderr + then.stderr

    def changes(doc: dict[str, list[dict[str, object]]]) -> list[tuple[object, ...]]:
        return [
            (e["kind"], e["version"], e["text"])
            for e in doc["events"]
            if e["version"] not in (None, "1.0.1")  # Custody's own observations are from today
        ]

    assert changes(then.json()) == changes(now.json())
    assert ("maintainer-added", "1.0.2", "maintainer added: npm:user/bob") in changes(then.json())
    [stub] = [e for e in then.json()["events"] if e["version"] == "1.0.1"]
    assert stub["text"] == f"1.0.1 published ({REMOVED_DETAILS})"
    text = custody("history", "npm:handover", "--as-of", "2021-12-01", cwd=project, env=env)
    assert "maintainer added: npm:user/bob" in text.stdout
    assert "1.0.1 published by unknown publisher" not in text.stdout
