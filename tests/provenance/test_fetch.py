"""The readers fetch attestation documents (cached), ``verify_histories`` verifies them and
writes the verified identity into the custody records: indexes served on loopback."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from pypi_attestations import Attestation
from pytest_httpserver import HTTPServer

from custody.model import Custodian, Ecosystem, PackageHistory, Provenance, Release
from custody.provenance import Failure, Status, provenance_versions, verify_histories
from custody.registries.facade import make_readers
from custody.registries.settings import NpmSettings, PypiSettings, RegistrySettings
from tests.provenance.assets import GITHUB_REPO_ID, GITHUB_SOURCE, Asset
from tests.registries.conftest import FAST, MemoryCache, run

SIMPLE = "application/vnd.pypi.simple.v1+json"


def serve_pypi(server: HTTPServer, asset: Asset, provenance: dict[str, Any] | None) -> str:
    name = asset.dist.name
    page = {
        "meta": {"api-version": "1.1"},
        "name": "pypi-attestations",
        "files": [
            {
                "filename": name,
                "url": f"../../files/{name}",
                "hashes": {"sha256": asset.sha256},
                "provenance": server.url_for(
                    f"/integrity/pypi-attestations/0.0.19/{name}/provenance"
                ),
            }
        ],
    }
    server.expect_request("/simple/pypi-attestations/").respond_with_data(
        json.dumps(page), content_type=SIMPLE
    )
    server.expect_request("/pypi/pypi-attestations/json").respond_with_data("", status=404)
    path = f"/integrity/pypi-attestations/0.0.19/{name}/provenance"
    if provenance is None:
        server.expect_request(path).respond_with_data("not found", status=404)
    else:
        server.expect_request(path).respond_with_json(provenance)
    return server.url_for("/simple/")


async def verify_pypi(index: str, cache: MemoryCache) -> tuple[PackageHistory, dict[str, Any]]:
    settings = RegistrySettings(pypi=PypiSettings(index_url=index, source="test"))
    async with make_readers(settings, cache, options=FAST) as regs:
        history = await regs.readers[Ecosystem.PYPI].history("pypi-attestations")
        pid = (Ecosystem.PYPI, "pypi-attestations")
        out, checks = await verify_histories(regs.readers, {pid: history}, {pid: ["0.0.19"]})
        return out[pid], checks


def provenance_requests(server: HTTPServer) -> int:
    return sum(1 for req, _resp in server.log if "/integrity/" in req.path)


def test_pypi_provenance_is_fetched_verified_recorded_and_cached(
    httpserver: HTTPServer, pa_sdist: Asset
) -> None:
    index = serve_pypi(httpserver, pa_sdist, pa_sdist.doc(".provenance"))
    cache = MemoryCache()
    history, checks = run(verify_pypi(index, cache))

    release = history.release("0.0.19")
    assert release is not None and release.provenance is not None
    assert release.provenance.verified is True
    assert release.provenance.source is not None
    assert release.provenance.source.id == GITHUB_SOURCE
    assert release.provenance.source.numeric_id == GITHUB_REPO_ID
    assert checks["pypi:pypi-attestations@0.0.19"].status is Status.VERIFIED
    assert provenance_requests(httpserver) == 1

    run(verify_pypi(index, cache))  # immutable: the warm run answers from the cache
    assert provenance_requests(httpserver) == 1


def test_pypi_provenance_with_the_wrong_publisher_is_recorded_as_failed(
    httpserver: HTTPServer, pa_sdist: Asset
) -> None:
    doc = copy.deepcopy(pa_sdist.doc(".provenance"))
    doc["attestation_bundles"][0]["publisher"]["workflow"] = "evil.yml"
    index = serve_pypi(httpserver, pa_sdist, doc)
    history, checks = run(verify_pypi(index, MemoryCache()))

    check = checks["pypi:pypi-attestations@0.0.19"]
    assert check.status is Status.INVALID and check.failure is Failure.IDENTITY
    release = history.release("0.0.19")
    assert release is not None
    assert release.provenance == Provenance(kind="pep740", verified=False)


def test_provenance_the_index_does_not_serve_stays_unverified(
    httpserver: HTTPServer, pa_sdist: Asset
) -> None:
    """A mirror that lists provenance but 404s it: present, not verified, no finding."""
    index = serve_pypi(httpserver, pa_sdist, None)
    history, checks = run(verify_pypi(index, MemoryCache()))

    check = checks["pypi:pypi-attestations@0.0.19"]
    assert check.status is Status.UNVERIFIED and check.finding() is None
    release = history.release("0.0.19")
    assert release is not None and release.provenance == Provenance(kind="pep740")


@pytest.fixture(scope="module")
def slsa_doc(pa_sdist: Asset) -> dict[str, Any]:
    text = (pa_sdist.dist.parent / f"{pa_sdist.dist.name}.slsa.attestation").read_text()
    bundle = json.loads(Attestation.model_validate_json(text).to_bundle().to_json())
    return {"attestations": [{"predicateType": "https://slsa.dev/provenance/v1", "bundle": bundle}]}


def test_npm_attestations_are_fetched_from_the_registry_and_verified(
    httpserver: HTTPServer, pa_sdist: Asset, slsa_doc: dict[str, Any]
) -> None:
    """The bundle is real but names a file, not pkg:npm/@scope/demo@1.0.0: a subject failure,
    which shows the document was fetched from the configured registry and checked."""
    sha512 = base64.b64encode(bytes(64)).decode()
    packument = {
        "name": "@scope/demo",
        "versions": {
            "1.0.0": {
                "name": "@scope/demo",
                "version": "1.0.0",
                "_npmUser": {"name": "GitHub Actions", "trustedPublisher": {"id": "github"}},
                "dist": {
                    "tarball": httpserver.url_for("/@scope/demo/-/demo-1.0.0.tgz"),
                    "integrity": f"sha512-{sha512}",
                    "attestations": {"url": "https://elsewhere.invalid/x", "provenance": {}},
                },
            }
        },
        "time": {"created": "2025-01-01T00:00:00Z", "1.0.0": "2025-01-01T00:00:00Z"},
    }
    httpserver.expect_request("/@scope/demo").respond_with_json(packument)
    httpserver.expect_request("/-/npm/v1/attestations/@scope/demo@1.0.0").respond_with_json(
        slsa_doc
    )
    settings = RegistrySettings(npm=NpmSettings(registry=httpserver.url_for("/"), source="test"))

    async def go() -> tuple[PackageHistory, dict[str, Any]]:
        async with make_readers(settings, MemoryCache(), options=FAST) as regs:
            history = await regs.readers[Ecosystem.NPM].history("@scope/demo")
            pid = (Ecosystem.NPM, "@scope/demo")
            out, checks = await verify_histories(regs.readers, {pid: history}, {pid: ["1.0.0"]})
            return out[pid], checks

    history, checks = run(go())
    check = checks["npm:@scope/demo@1.0.0"]
    assert check.status is Status.INVALID and check.failure is Failure.SUBJECT
    assert check.expected == {"subject": "pkg:npm/%40scope/demo@1.0.0"}
    assert history.release("1.0.0").provenance.verified is False  # type: ignore[union-attr]


def test_provenance_versions_are_the_locked_release_and_a_few_before() -> None:
    def rel(v: str, prov: bool) -> Release:
        return Release(
            Ecosystem.NPM,
            "p",
            v,
            publisher=Custodian.npm_user("alice"),  # a release, not a bare number (as_of)
            provenance=Provenance("npm-attestation") if prov else None,
        )

    releases = tuple(rel(f"1.0.{i}", i not in (5, 6)) for i in range(8))
    history = PackageHistory(Ecosystem.NPM, "p", "r", releases[0].published_at, releases)  # type: ignore[arg-type]
    assert provenance_versions(history, ["1.0.7"]) == ["1.0.7", "1.0.6", "1.0.2", "1.0.3", "1.0.4"]
    assert provenance_versions(history, ["9.9.9"]) == []
