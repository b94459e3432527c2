from __future__ import annotations

from pathlib import Path

import pytest

from tests.provenance.assets import PYPI_ATTESTATIONS_SDIST, Asset, assets_dir


@pytest.fixture(scope="session")
def assets() -> Path:
    return assets_dir()


@pytest.fixture(scope="session")
def pa_sdist(assets: Path) -> Asset:
    """pypi_attestations-0.0.19.tar.gz: PEP 740 provenance from GitHub Actions (release.yml),
    with a publish attestation and a SLSA v1 provenance attestation."""
    return Asset(assets / PYPI_ATTESTATIONS_SDIST)
