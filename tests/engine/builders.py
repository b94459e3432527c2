"""Small builders for custody records in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custody.model import (
    Custodian,
    DeclaredDependency,
    Ecosystem,
    LockedDependency,
    PackageHistory,
    Provenance,
    Release,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def release(
    version: str,
    day: float,
    publisher: str | None = "alice",
    maintainers: list[str] | None = None,
    *,
    deps: dict[str, str] | None = None,
    scripts: dict[str, str] | None = None,
    repo: str | None = None,
    provenance: str | None = None,
    repo_id: str | None = None,
    workflow: str | None = None,
    name: str = "pkg",
    ecosystem: Ecosystem = Ecosystem.NPM,
) -> Release:
    prov = None
    if provenance is not None:
        prov = Provenance(
            "npm-attestation", source=Custodian(f"github:{provenance}", repo_id), workflow=workflow
        )
    make = Custodian.npm_user if ecosystem is Ecosystem.NPM else Custodian.pypi_user
    return Release(
        ecosystem,
        name,
        version,
        published_at=T0 + timedelta(days=day),
        publisher=make(publisher) if publisher else None,
        maintainers=frozenset(make(m) for m in maintainers) if maintainers is not None else None,
        provenance=prov,
        dependencies=tuple(DeclaredDependency(n, s) for n, s in (deps or {}).items()),
        install_scripts=scripts or {},
        repository=repo,
    )


def history(
    *releases: Release, name: str = "pkg", ecosystem: Ecosystem = Ecosystem.NPM
) -> PackageHistory:
    return PackageHistory(
        ecosystem, name, "http://127.0.0.1:1/", T0 + timedelta(days=3650), tuple(releases)
    )


def locked(
    version: str, name: str = "pkg", ecosystem: Ecosystem = Ecosystem.NPM
) -> LockedDependency:
    return LockedDependency(ecosystem, name, version, direct=True, paths=((name,),))
