"""Real Sigstore attestations: the ``test/assets/`` of the ``pypi-attestations`` source
distribution (the installed version), downloaded once with pip into ``.tools/`` and unpacked.

Outside CI a failed download skips the tests; under CI (``CI`` set) it fails them."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from custody.model import Artifact, Ecosystem, Release

ROOT = Path(__file__).resolve().parents[2]
SDIST_DIR = ROOT / ".tools" / "pypi-attestations-sdist"

PYPI_ATTESTATIONS_SDIST = "pypi_attestations-0.0.19.tar.gz"
GITHUB_SOURCE = "github:trailofbits/pypi-attestations"
GITHUB_REPO_ID = "772247423"
GITHUB_OWNER_ID = "2314423"
GITHUB_COMMIT = "08802efe1f8e5fec4ad842d6b8ce97656092ee72"
GITLAB_SDIST = "gitlab_oidc_project-0.0.3.tar.gz"
GITLAB_SOURCE = "gitlab:facutuesca/gitlab-oidc-project"
GITLAB_REPO_ID = "55235664"


def _unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so missing test assets are a failure)")
    pytest.skip(message)


def assets_dir() -> Path:
    """The unpacked ``test/assets`` folder (downloaded and unpacked on first use)."""
    version = importlib.metadata.version("pypi-attestations")
    target = SDIST_DIR / f"assets-{version}"
    if (target / PYPI_ATTESTATIONS_SDIST).exists():
        return target
    sdist = SDIST_DIR / f"pypi_attestations-{version}.tar.gz"
    if not sdist.exists():
        cmd = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--no-binary", ":all:", f"pypi-attestations=={version}", "-d", str(SDIST_DIR),
        ]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            _unavailable(f"pip download of the pypi-attestations sdist failed: {exc}")
        if done.returncode != 0 or not sdist.exists():
            _unavailable(
                f"pip download of the pypi-attestations sdist failed: {done.stderr[-500:]}"
            )
    tmp = target.with_name(f"{target.name}.{os.getpid()}.part")
    tmp.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) >= 4 and parts[1:3] == ["test", "assets"] and member.isfile():
                data = tar.extractfile(member)
                assert data is not None
                (tmp / parts[-1]).write_bytes(data.read())
    try:
        tmp.rename(target)
    except OSError:  # another worker unpacked it first
        if not (target / PYPI_ATTESTATIONS_SDIST).exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass(frozen=True)
class Asset:
    """A distribution and its attestation documents."""

    dist: Path

    @property
    def data(self) -> bytes:
        return self.dist.read_bytes()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def artifact(self, *, sha256: str | None = None, url: str | None = None) -> Artifact:
        kind = "wheel" if self.dist.name.endswith(".whl") else "sdist"
        return Artifact(
            self.dist.name,
            url=url,
            digests={"sha256": sha256 or self.sha256},
            kind=kind,
            has_attestations=True,
        )

    def release(self, name: str, version: str, **kw: Any) -> Release:
        return Release(Ecosystem.PYPI, name, version, artifacts=(self.artifact(**kw),))

    def doc(self, suffix: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(Path(f"{self.dist}{suffix}").read_text())
        return loaded


def gitlab_provenance(assets: Path) -> dict[str, Any]:
    """A PEP 740 provenance object for the GitLab-signed sdist (the assets ship only its
    attestation): the publisher is the one its certificate names."""
    attestation = json.loads((assets / f"{GITLAB_SDIST}.publish.attestation").read_text())
    return {
        "version": 1,
        "attestation_bundles": [
            {
                "publisher": {
                    "kind": "GitLab",
                    "repository": "facutuesca/gitlab-oidc-project",
                    "workflow_filepath": ".gitlab-ci.yml",
                },
                "attestations": [attestation],
            }
        ],
    }
