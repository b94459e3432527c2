"""``custody verify`` end to end: a PyPI index on loopback serving the real pypi-attestations
0.0.19 sdist and its PEP 740 provenance, and a local git repository holding its source."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from custody.content.archive import ArchiveContents, read_archive
from tests.fingerprint.helpers import Repo
from tests.provenance.assets import GITHUB_SOURCE, Asset
from tests.support.clients import Result, clean_env, custody

SIMPLE = "application/vnd.pypi.simple.v1+json"
RELEASE = "pypi:pypi-attestations@0.0.19"


def serve(server: HTTPServer, asset: Asset, provenance: dict[str, Any]) -> str:
    name = asset.dist.name
    page = {
        "meta": {"api-version": "1.1"},
        "name": "pypi-attestations",
        "files": [
            {
                "filename": name,
                "url": server.url_for(f"/files/{name}"),
                "hashes": {"sha256": asset.sha256},
                "provenance": server.url_for(f"/prov/{name}"),
            }
        ],
    }
    server.expect_request("/simple/pypi-attestations/").respond_with_data(
        json.dumps(page), content_type=SIMPLE
    )
    server.expect_request("/pypi/pypi-attestations/json").respond_with_data("", status=404)
    server.expect_request(f"/prov/{name}").respond_with_json(provenance)
    server.expect_request(f"/files/{name}").respond_with_data(asset.data)
    return server.url_for("/simple/")


@pytest.fixture
def source(tmp_path: Path, pa_sdist: Asset) -> Repo:
    """The sdist's files as a repository tagged v0.0.19 (PKG-INFO is the build's)."""
    contents = read_archive(pa_sdist.data)
    assert isinstance(contents, ArchiveContents)
    repo = Repo(tmp_path / "pypi-attestations")
    repo.commit({p: d for p, d in contents.files.items() if p != "PKG-INFO"}, tag="v0.0.19")
    return repo


def verify(tmp_path: Path, index: str, repo: Repo, *args: str) -> Result:
    env = clean_env(
        tmp_path / "home",
        CUSTODY_PYPI_INDEX=index,
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        CUSTODY_CACHE_DIR=str(tmp_path / "cache"),
    )
    return custody(
        "verify", RELEASE, "--allow-file-urls", "--source", repo.url, *args,
        cwd=tmp_path, env=env,
    )  # fmt: skip


def test_verify_json_reports_identity_and_fingerprint(
    tmp_path: Path, httpserver: HTTPServer, pa_sdist: Asset, source: Repo
) -> None:
    index = serve(httpserver, pa_sdist, pa_sdist.doc(".provenance"))
    result = verify(tmp_path, index, source, "--format", "json")

    assert result.code == 0, result.stderr
    doc = result.json()
    assert doc["schema"] == "custody/verify@1"
    prov = doc["provenance"]
    assert prov["verified"] is True and prov["source"] == GITHUB_SOURCE
    assert prov["workflow"] == ".github/workflows/release.yml"
    [fp] = doc["fingerprints"]
    assert fp["compared"] and fp["resolved_from"] == "tag v0.0.19"
    assert any("no commit 08802efe1f8e" in n for n in fp["notes"])  # the provenance commit
    assert [f["path"] for f in fp["files"]] == ["PKG-INFO"]
    assert [f["rule"] for f in doc["findings"]] == ["content.not-in-source"]
    assert doc["findings"][0]["severity"] == "info"


def test_verify_blocks_a_provenance_from_another_workflow(
    tmp_path: Path, httpserver: HTTPServer, pa_sdist: Asset, source: Repo
) -> None:
    doc = copy.deepcopy(pa_sdist.doc(".provenance"))
    doc["attestation_bundles"][0]["publisher"]["workflow"] = "evil.yml"
    index = serve(httpserver, pa_sdist, doc)
    result = verify(tmp_path, index, source, "--no-fingerprint")

    assert result.code == 1
    assert "provenance: invalid" in result.stdout
    assert "evil.yml" in result.stdout
