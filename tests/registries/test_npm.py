"""npm packuments -> custody histories: the real documents in ../shared, synthetic shapes for what
they predate (trusted publishing, staged publishing, provenance) and the mirror's stripped shape,
and the reader over HTTP with its derived-history cache."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nodesemver
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from custody.errors import PackageNotFound, RegistryUnavailable
from custody.model import Custodian, DeclaredDependency, Ecosystem, PackageHistory
from custody.registries.documents import BadDocument
from custody.registries.facade import make_readers
from custody.registries.npm import NpmReader, escaped_name
from custody.registries.npm_packument import parse_packument, semver_key
from custody.registries.repo_urls import normalise_repository
from custody.registries.settings import Auth, NpmSettings, RegistrySettings
from custody.registries.times import parse_time
from custody.trust._ids import check_custodian

from .conftest import FAST, MemoryCache, run

PACKUMENTS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "npm-packuments"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
META_TIME_KEYS = {"created", "modified", "unpublished"}


def fixture_paths() -> list[Path]:
    return sorted(PACKUMENTS.rglob("*.json")) if PACKUMENTS.is_dir() else []


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(path.read_bytes())
    return doc


def parse(doc: Any, name: str = "pkg") -> PackageHistory:
    return parse_packument(doc, name=name, registry="http://127.0.0.1:1/", fetched_at=NOW)


needs_fixtures = pytest.mark.skipif(not PACKUMENTS.is_dir(), reason="shared fixtures absent")


# --------------------------------------------------------------------------- real packuments


@needs_fixtures
def test_every_real_packument_parses_with_its_invariants() -> None:
    paths = fixture_paths()
    assert len(paths) > 200
    unpublished: set[tuple[str, str]] = set()
    publisher_changes = 0
    for path in paths:
        doc = load(path)
        history = parse(doc, doc["name"])
        versions: dict[str, Any] = doc["versions"]
        by_version = {r.version: r for r in history.releases}
        assert len(by_version) == len(history.releases), path  # one release per version
        for version, manifest in versions.items():
            release = by_version[version]
            assert not release.unpublished
            assert release.published_at == parse_time(doc["time"].get(version))
            user = manifest.get("_npmUser")
            expected = Custodian.npm_user(user["name"]) if isinstance(user, dict) else None
            assert release.publisher == expected, (path, version)
            if isinstance(manifest.get("maintainers"), list):
                assert release.maintainers is not None
                names = {m["name"] for m in manifest["maintainers"] if isinstance(m, dict)}
                assert {c.name for c in release.maintainers} == names
            tarball = manifest["dist"]["tarball"]
            assert release.artifacts[0].url == tarball
            assert release.artifacts[0].digests.get("sha1") == manifest["dist"].get("shasum")
        gone = set(doc["time"]) - META_TIME_KEYS - set(versions)
        for version in gone:
            assert by_version[version].unpublished, (path, version)
            assert by_version[version].published_at == parse_time(doc["time"][version])
            unpublished.add((doc["name"], version))
        times = [r.published_at for r in history.releases if r.published_at is not None]
        assert times == sorted(times), path  # oldest first
        owners = {o.custodian.name for o in history.current_owners or ()}
        assert owners == {m["name"] for m in doc["maintainers"]}
        publishers = {r.publisher for r in history.releases if r.publisher is not None}
        publisher_changes += len(publishers) > 1
    assert {("type-detect", "4.0.4"), ("hoek", "6.1.0"), ("node-pre-gyp", "0.5.0-alpha")} <= (
        unpublished
    )
    assert publisher_changes > 50  # hand-overs are common and mostly benign


@needs_fixtures
def test_align_text_shows_a_one_off_publisher() -> None:
    history = parse(load(PACKUMENTS / "align-text.json"), "align-text")
    publishers = [(r.version, r.publisher.name if r.publisher else None) for r in history.releases]
    assert ("0.1.4", "shinnn") in publishers
    assert publishers[-1] == ("1.0.2", "jonschlinkert")
    assert history.repository == "https://github.com/jonschlinkert/align-text"


@needs_fixtures
def test_install_scripts_funding_bundles_and_deprecation() -> None:
    big = parse(load(PACKUMENTS / "big.js.json"), "big.js")
    release = big.release("5.2.1")
    assert release is not None
    assert release.install_scripts == {"postinstall": "opencollective postinstall"}
    assert big.funding == ("https://opencollective.com/bigjs",)
    assert len(parse(load(PACKUMENTS / "buffer.json"), "buffer").funding) == 3
    minimatch = parse(load(PACKUMENTS / "minimatch.json"), "minimatch").release("0.0.2")
    assert minimatch is not None and minimatch.dependencies == (
        DeclaredDependency("lru-cache", "~1.0.2", "bundled"),
    )
    hoek = parse(load(PACKUMENTS / "hoek.json"), "hoek")
    assert hoek.deprecated is not None and "moved" in hoek.deprecated


@needs_fixtures
def test_scoped_fixture_over_http(httpserver: HTTPServer) -> None:
    """A real scoped packument served on loopback, ``{REGISTRY}`` replaced by the server."""
    base = httpserver.url_for("/")
    text = (PACKUMENTS / "types" / "minimatch.json").read_text().replace("{REGISTRY}", base[:-1])
    httpserver.expect_request("/@types/minimatch").respond_with_data(
        text, content_type="application/json"
    )
    history = run(read_history(base, "@types/minimatch"))
    assert history.name == "@types/minimatch"
    assert all(a.url and a.url.startswith(base) for r in history.releases for a in r.artifacts)
    raw = httpserver.log[-1][0].environ.get("RAW_URI") or httpserver.log[-1][0].environ.get(
        "REQUEST_URI"
    )
    assert raw is None or raw.lower() == "/@types%2fminimatch"


# --------------------------------------------------------------------------- synthetic shapes


def manifest(version: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "pkg",
        "version": version,
        "dist": {
            "tarball": f"http://127.0.0.1:1/pkg/-/pkg-{version}.tgz",
            "shasum": "00" * 20,
            "integrity": "sha512-" + "A" * 86 + "==",
        },
        **extra,
    }


def test_trusted_publishing_staged_approval_and_attestations() -> None:
    doc: dict[str, Any] = {
        "name": "pkg",
        "dist-tags": {"latest": "2.0.0"},
        "maintainers": [{"name": "ivy", "email": "ivy@example.com"}, "jack <jack@example.com>"],
        "time": {
            "created": "2025-01-01T00:00:00.000Z",
            "modified": "2025-03-01T00:00:00.000Z",
            "1.0.0": "2025-01-01T00:00:00.000Z",
            "1.1.0": "2025-02-01T00:00:00.000Z",
            "2.0.0": "2025-03-01T00:00:00.000Z",
        },
        "versions": {
            "1.0.0": manifest("1.0.0", _npmUser={"name": "ivy", "email": "ivy@example.com"}),
            "1.1.0": manifest(
                "1.1.0",
                _npmUser={
                    "name": "GitHub Actions",
                    "email": "npm-oidc-no-reply@github.com",
                    "trustedPublisher": {"id": "github", "oidcConfigId": "oidc:abc"},
                },
            ),
            "2.0.0": manifest(
                "2.0.0",
                _npmUser={
                    "name": "GitHub Actions",
                    "email": "npm-oidc-no-reply@github.com",
                    "trustedPublisher": {"id": "github", "oidcConfigId": "oidc:abc"},
                    "approver": {"name": "ivy", "email": "ivy@example.com"},
                },
                maintainers=["ivy <ivy@example.com>"],
            ),
        },
    }
    doc["versions"]["2.0.0"]["dist"]["attestations"] = {
        "url": "http://127.0.0.1:1/-/npm/v1/attestations/pkg@2.0.0",
        "provenance": {"predicateType": "https://slsa.dev/provenance/v1"},
    }
    doc["versions"]["2.0.0"]["dist"]["signatures"] = [{"keyid": "k", "sig": "s"}]
    history = parse(doc)
    first, trusted, staged = history.releases
    assert first.publisher == Custodian.npm_user("ivy") and first.provenance is None
    # the CI system npm let publish ("GitHub Actions"), not an account named after it
    ci = Custodian("npm:trusted-publisher/github")
    assert trusted.publisher == ci and staged.publisher == ci
    assert trusted.artifacts[0].uploader == ci
    assert trusted.provenance is not None and trusted.provenance.kind == "npm-trusted-publisher"
    assert trusted.provenance.issuer == "github" and trusted.provenance.verified is None
    assert trusted.approver is None
    assert staged.approver == Custodian.npm_user("ivy")
    assert staged.provenance is not None and staged.provenance.kind == "npm-attestation"
    assert staged.provenance.source is None  # the packument only points at the attestation
    assert staged.artifacts[0].has_attestations and staged.artifacts[0].has_signatures
    assert staged.maintainers == frozenset({Custodian.npm_user("ivy")})
    assert {o.custodian.name for o in history.current_owners or ()} == {"ivy", "jack"}
    assert staged.artifacts[0].digests["sha512"] == "00" * 64


@pytest.mark.parametrize(
    ("trusted_publisher", "custodian"),
    [
        ({"id": "github", "oidcConfigId": "oidc:abc"}, "npm:trusted-publisher/github"),
        ({"id": "gitlab"}, "npm:trusted-publisher/gitlab"),
        ({"id": " CircleCI "}, "npm:trusted-publisher/circleci"),
        ({"id": "GitHub Actions/../x y"}, "npm:trusted-publisher/github-actions-..-x-y"),
        ({"id": "--*--"}, "npm:trusted-publisher/unknown"),
        ({"id": 7}, "npm:trusted-publisher/unknown"),
        ({}, "npm:trusted-publisher/unknown"),
    ],
)
def test_a_trusted_publish_is_published_by_its_ci_system(
    trusted_publisher: dict[str, Any], custodian: str
) -> None:
    user = {"name": "GitHub Actions", "email": "x@example.com"}
    doc = {
        "versions": {
            "1.0.0": manifest("1.0.0", _npmUser={**user, "trustedPublisher": trusted_publisher}),
            "1.0.1": manifest("1.0.1", _npmUser={"name": "alice"}),
        },
        "time": {"modified": "2025-01-01T00:00:00Z"},
    }
    trusted, plain = parse(doc).releases
    assert trusted.publisher == Custodian(custodian)
    assert trusted.provenance is not None and trusted.provenance.kind == "npm-trusted-publisher"
    assert plain.publisher == Custodian.npm_user("alice") and plain.provenance is None
    check_custodian(custodian)  # a trust file can hold it


@given(st.one_of(st.text(), st.none(), st.integers()))
def test_every_trusted_publisher_id_is_a_valid_custodian(ci: Any) -> None:
    doc = {"versions": {"1.0.0": manifest("1.0.0", _npmUser={"trustedPublisher": {"id": ci}})}}
    [release] = parse(doc).releases
    assert release.publisher is not None
    assert release.publisher.id.startswith("npm:trusted-publisher/")
    check_custodian(release.publisher.id)


def test_version_level_approver_is_read_too() -> None:
    doc = {
        "versions": {"1.0.0": manifest("1.0.0", approver="kim <kim@example.com>")},
        "time": {"modified": "2025-01-01T00:00:00Z"},
    }
    assert parse(doc).releases[0].approver == Custodian.npm_user("kim")


def test_the_mirror_shape_yields_unknowns_not_errors() -> None:
    """No _npmUser, no maintainers, no signatures, ingest times instead of publish times, only
    the latest dist-tag: fields become None and releases follow SemVer order."""
    doc = {
        "_id": "pkg",
        "name": "pkg",
        "dist-tags": {"latest": "1.10.0"},
        "versions": {v: manifest(v) for v in ["1.2.0", "1.10.0", "1.9.0", "1.0.0-beta.2"]},
        "time": {
            "1.2.0": "2024-12-09T00:54:30.508000+00:00",
            "1.10.0": "2024-11-23T04:03:10.128000+00:00",
            "1.9.0": "2026-06-17T02:16:22.552000+00:00",
            "1.0.0-beta.2": "2025-01-01T00:00:00+00:00",
        },
    }
    history = parse(doc)
    assert [r.version for r in history.releases] == ["1.0.0-beta.2", "1.2.0", "1.9.0", "1.10.0"]
    for release in history.releases:
        assert release.publisher is None and release.maintainers is None
        assert release.published_at is None and not release.unpublished
        assert not release.artifacts[0].has_signatures
    assert history.current_owners is None
    assert history.dist_tags == {"latest": "1.10.0"}


def test_untimed_releases_keep_their_semver_place() -> None:
    doc = {
        "versions": {v: manifest(v) for v in ["1.0.0", "1.1.0", "2.0.0"]},
        "time": {"created": "2020-01-01T00:00:00Z", "1.0.0": "2020-01-01T00:00:00Z",
                 "2.0.0": "2021-01-01T00:00:00Z"},
    }  # fmt: skip
    assert [r.version for r in parse(doc).releases] == ["1.0.0", "1.1.0", "2.0.0"]


def test_fully_unpublished_package() -> None:
    doc = {
        "name": "pkg",
        "time": {
            "created": "2020-01-01T00:00:00Z",
            "modified": "2020-02-01T00:00:00Z",
            "1.0.0": "2020-01-01T00:00:00Z",
            "unpublished": {"time": "2020-02-01T00:00:00Z", "versions": ["1.0.0", "1.0.1"]},
        },
    }
    history = parse(doc)
    assert [(r.version, r.unpublished) for r in history.releases] == [
        ("1.0.0", True),
        ("1.0.1", True),
    ]


def test_dependency_kinds_and_gypfile() -> None:
    doc = {
        "versions": {
            "1.0.0": manifest(
                "1.0.0",
                dependencies={"a": "^1", "opt": "^2"},
                optionalDependencies={"opt": "^2"},
                peerDependencies={"react": ">=16"},
                devDependencies={"jest": "*"},
                bundleDependencies=True,
                gypfile=True,
                scripts={"prepare": "tsc", "test": "jest"},
            )
        },
        "time": {"modified": "2020-01-01T00:00:00Z"},
    }
    release = parse(doc).releases[0]
    assert release.dependencies == (
        DeclaredDependency("a", "^1", "bundled"),
        DeclaredDependency("opt", "^2", "optional"),
        DeclaredDependency("react", ">=16", "peer"),
    )
    assert release.install_scripts == {"install": "node-gyp rebuild"}


@pytest.mark.parametrize(
    "doc",
    [[], "text", 42, {"versions": []}, {"versions": "1.0.0"}],
)
def test_garbage_is_a_bad_document(doc: Any) -> None:
    with pytest.raises(BadDocument):
        parse(doc)


def test_odd_fields_do_not_crash() -> None:
    doc = {
        "dist-tags": ["latest"],
        "maintainers": "solo <solo@example.com>",
        "repository": 7,
        "time": {"created": 5, "1.0.0": "not a date"},
        "versions": {
            "1.0.0": {"_npmUser": "ann <ann@example.com>", "dist": "x", "deprecated": True},
            "2.0.0": None,
        },
    }
    history = parse(doc)
    assert history.releases[0].publisher == Custodian.npm_user("ann")
    assert history.releases[0].deprecated == "deprecated"
    assert history.current_owners is not None
    assert [o.custodian.id for o in history.current_owners] == ["npm:user/solo"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("github:owner/repo", "https://github.com/owner/repo"),
        ("owner/repo", "https://github.com/owner/repo"),
        ("gitlab:group/repo", "https://gitlab.com/group/repo"),
        ("git+https://github.com/Owner/Repo.git", "https://github.com/Owner/Repo"),
        ("git://github.com/owner/repo.git", "https://github.com/owner/repo"),
        ("git+ssh://git@github.com/owner/repo.git", "https://github.com/owner/repo"),
        ("git@github.com:owner/repo.git", "https://github.com/owner/repo"),
        ("https://GitHub.com/owner/repo/tree/main/packages/x", "https://github.com/owner/repo"),
        ("https://www.github.com/owner/repo#readme", "https://github.com/owner/repo"),
        ("https://gitlab.com/group/sub/repo/-/tree/main", "https://gitlab.com/group/sub/repo"),
        ("https://user:pw@git.example.org/team/repo.git/", "https://git.example.org/team/repo"),
        ({"type": "git", "url": "https://github.com/o/r.git", "directory": "pk"},
         "https://github.com/o/r"),
        ("", None),
        ("not a url", None),
        (None, None),
    ],
)  # fmt: skip
def test_repository_normalisation(raw: Any, expected: str | None) -> None:
    assert normalise_repository(raw) == expected


# --------------------------------------------------------------------------- the reader


async def read_history(base: str, name: str, cache: MemoryCache | None = None) -> PackageHistory:
    settings = RegistrySettings(npm=NpmSettings(registry=base, source="test"))
    async with make_readers(settings, cache, options=FAST) as regs:
        return await regs.readers[Ecosystem.NPM].history(name)


def served_doc() -> dict[str, Any]:
    return {
        "name": "pkg",
        "dist-tags": {"latest": "1.0.0"},
        "time": {"created": "2020-01-01T00:00:00Z", "1.0.0": "2020-01-01T00:00:00Z"},
        "versions": {"1.0.0": manifest("1.0.0", _npmUser={"name": "lee"})},
    }


def test_reader_sends_accept_json_and_auth(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        "/pkg", headers={"Accept": "application/json", "Authorization": "Bearer npm-tok"}
    ).respond_with_json(served_doc())
    base = httpserver.url_for("/")
    settings = NpmSettings(
        registry=base, source="test", auth={"//" + base.split("://", 1)[1]: Auth(token="npm-tok")}
    )

    async def scenario() -> PackageHistory:
        async with make_readers(RegistrySettings(npm=settings), None, options=FAST) as regs:
            return await regs.readers[Ecosystem.NPM].history("pkg")

    history = run(scenario())
    assert history.releases[0].publisher == Custodian.npm_user("lee")


def test_reader_garbage_and_not_found(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/bad").respond_with_data("[1, 2]", content_type="application/json")
    httpserver.expect_request("/missing").respond_with_data("", status=404)
    base = httpserver.url_for("/")
    with pytest.raises(RegistryUnavailable) as info:
        run(read_history(base, "bad"))
    assert "invalid packument for bad" in info.value.reason
    assert info.value.registry == base
    with pytest.raises(PackageNotFound):
        run(read_history(base, "missing"))


def test_304_reuses_the_derived_history(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/pkg", headers={"If-None-Match": '"e1"'}).respond_with_data(
        "", status=304
    )
    httpserver.expect_request("/pkg").respond_with_json(served_doc(), headers={"ETag": '"e1"'})
    base = httpserver.url_for("/")
    cache = MemoryCache()
    first = run(read_history(base, "pkg", cache))
    entry = cache.entries[base + "pkg"]
    assert entry.derived is not None and entry.derived_version

    def no_parsing(*_args: object, **_kw: object) -> Iterator[None]:
        raise AssertionError("a 304 must not parse the packument again")

    monkeypatch.setattr("custody.registries.npm.parse_packument_body", no_parsing)
    second = run(read_history(base, "pkg", cache))
    assert second.releases == first.releases
    assert second.fetched_at >= first.fetched_at
    assert httpserver.log[-1][1].status_code == 304


def test_escaped_names() -> None:
    assert escaped_name("@scope/name") == "@scope%2fname"
    assert escaped_name("left-pad") == "left-pad"
    reader = NpmReader(
        NpmSettings(
            registry="http://127.0.0.1:1/",
            source="test",
            scopes={"@corp": "http://127.0.0.1:2/npm/"},
        ),
        client=None,  # type: ignore[arg-type]
    )
    assert reader.packument_url("@corp/x") == "http://127.0.0.1:2/npm/@corp%2fx"


@given(st.integers(0, 10**15 - 1), st.integers(0, 10**15 - 1), st.integers(0, 10**15 - 1))
def test_plain_versions_sort_exactly_as_node_semver_sorts_them(a: int, b: int, c: int) -> None:
    """``semver_key`` reads plain MAJOR.MINOR.PATCH itself; node-semver must agree."""
    version = f"{a}.{b}.{c}"
    parsed = nodesemver.make_semver(version, loose=True)
    assert semver_key(version) == (0, parsed.major, parsed.minor, parsed.patch, 1, ())


@pytest.mark.parametrize("version", ["01.2.3", "1.2.3-beta.1", "v1.2.3", " 1.2.3", "1.2", "x"])
def test_other_versions_still_go_through_node_semver(version: str) -> None:
    try:
        parsed = nodesemver.make_semver(version, loose=True)
    except (ValueError, TypeError):
        assert semver_key(version) == (1, version)
        return
    assert semver_key(version)[:4] == (0, parsed.major, parsed.minor, parsed.patch)
