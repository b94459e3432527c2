"""Registry locations and credentials from the user's own configuration.

Custody names no registry host of its own: the npm registry comes from flags, ``CUSTODY_*``
variables, ``.npmrc`` files or ``npm config get registry``; the Python index from flags,
``CUSTODY_PYPI_INDEX``, ``PIP_INDEX_URL``, pip and uv configuration or the installed pip's
default. See npm_config.py and pypi_config.py for the exact precedence."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from custody.model import Ecosystem
from custody.registries.npm_config import resolve_npm
from custody.registries.pypi_config import resolve_pypi
from custody.registries.settings import Auth, NpmSettings, PypiSettings, RegistrySettings

__all__ = [
    "Auth",
    "NpmSettings",
    "PypiSettings",
    "RegistrySettings",
    "resolve_settings",
]


def resolve_settings(
    project_dir: Path,
    npm_registry: str | None,
    pypi_index: str | None,
    env: Mapping[str, str],
    *,
    ecosystems: Collection[Ecosystem] = (Ecosystem.NPM, Ecosystem.PYPI),
    system_root: Path = Path("/"),
) -> RegistrySettings:
    """Resolve the settings of the ``ecosystems`` a run needs (others stay None, so a Python-only
    project never needs npm configured). ``env`` is passed explicitly (tests pass a dict);
    ``system_root`` relocates ``/etc`` for tests. CA bundles named by ``CUSTODY_CA_FILE``,
    ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``, ``NODE_EXTRA_CA_CERTS``, npm's ``cafile`` and pip's
    ``cert`` are trusted in addition to the system store. Raises ``InputError`` when an
    ecosystem that is needed has no registry configured anywhere."""
    npm = resolve_npm(project_dir, npm_registry, env) if Ecosystem.NPM in ecosystems else None
    pypi = (
        resolve_pypi(project_dir, pypi_index, env, system_root)
        if Ecosystem.PYPI in ecosystems
        else None
    )
    ca_files = [
        env.get(name)
        for name in (
            "CUSTODY_CA_FILE",
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS",
        )
    ]
    ca_files += [npm.ca_file if npm else None, pypi.ca_file if pypi else None]
    existing = tuple(dict.fromkeys(f for f in ca_files if f and Path(f).is_file()))
    return RegistrySettings(npm=npm, pypi=pypi, ca_files=existing)
