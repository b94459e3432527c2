"""Fetch and verify the provenance of chosen releases, and write the verified identity into
their custody records.

The engine calls ``verify_histories`` after the readers fetched the histories, for the locked
releases and the few before each that its signals compare (``provenance_versions``). Documents
are fetched concurrently through the shared client (cached as immutable, so a warm run sends
no request); the signatures are then checked in one worker thread (a few milliseconds each).
A document the registry does not serve, or a registry that cannot be reached, leaves the
release's provenance as the registry described it ("present, not verified")."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeGuard

import msgspec

from custody.errors import RegistryUnavailable
from custody.model import Artifact, Ecosystem, PackageHistory, Release
from custody.provenance.result import ProvenanceCheck, Status, unverified
from custody.registries.npm import NpmReader

if TYPE_CHECKING:
    from custody.registries.pypi import PypiReader

    Reader = NpmReader | PypiReader

PackageId = tuple[Ecosystem, str]
NPM_KIND = "npm-attestation"  # custody.provenance.npm.KIND
PEP740_KIND = "pep740"  # custody.provenance.pep740.KIND
# The verifiers (sigstore, pypi-attestations: half a second of imports) load only when a
# release actually has provenance to verify.
_Docs = list[tuple[Artifact, bytes | None]]


def _verifiable(reader: object) -> TypeGuard[Reader]:
    """A reader of the registries Custody verifies provenance from. The PyPI reader's module is
    only loaded when a PyPI reader was made, so it is not imported just to ask."""
    if isinstance(reader, NpmReader):
        return True
    pypi = sys.modules.get("custody.registries.pypi")
    return pypi is not None and isinstance(reader, pypi.PypiReader)


def needs_verification(release: Release) -> bool:
    """A release whose registry record points at signed provenance not yet verified."""
    prov = release.provenance
    return (
        prov is not None
        and prov.verified is None
        and prov.kind in (NPM_KIND, PEP740_KIND)
        and any(a.has_attestations for a in release.artifacts)
    )


def provenance_versions(
    history: PackageHistory, locked: Iterable[str], depth: int = 3
) -> list[str]:
    """For each locked version: itself, the release just before it, and the ``depth`` newest
    earlier releases with provenance (the trusted baseline is usually among them)."""
    wanted: list[str] = []
    for version in locked:
        release = history.release(version)
        if release is None:
            continue
        wanted.append(release.version)
        before = history.predecessors(release.version)
        if before:
            wanted.append(before[-1].version)
        wanted += [r.version for r in before if r.provenance is not None][-depth:]
    return list(dict.fromkeys(wanted))


async def _documents(reader: Reader, release: Release) -> _Docs:
    from custody.provenance import npm as npm_verify

    if isinstance(reader, NpmReader):
        tarball = npm_verify.tarball(release)
        return [(tarball, await reader.attestations(release))] if tarball else []
    attested = [a for a in release.artifacts if a.has_attestations]
    docs = await asyncio.gather(*(reader.provenance(release, a) for a in attested))
    return list(zip(attested, docs, strict=True))


def _verify(release: Release, docs: _Docs, online: bool) -> ProvenanceCheck:
    from custody.provenance import npm as npm_verify
    from custody.provenance import pep740, trustroot

    kind = release.provenance.kind if release.provenance else PEP740_KIND
    if not docs or all(doc is None for _a, doc in docs):
        return unverified(release.key, kind, "the registry serves no attestation document")
    if release.ecosystem is Ecosystem.NPM:
        doc = docs[0][1]
        assert doc is not None
        return npm_verify.verify_npm_attestations(doc, release, online=online)
    try:
        pep740.prepare(online)
    except trustroot.TrustRootUnavailable as exc:
        return unverified(release.key, kind, str(exc))
    results = [
        pep740.verify_pep740(doc, release, artifact)
        if doc is not None
        else unverified(release.key, kind, f"{artifact.filename}: no provenance served")
        for artifact, doc in docs
    ]
    return pep740.combine(release.key, results)


async def check_releases(
    reader: Reader, releases: Sequence[Release], *, online: bool = False
) -> dict[str, ProvenanceCheck]:
    """Verify each release's provenance: ``{release key: check}`` (releases with nothing to
    verify are left out)."""
    todo = [r for r in releases if needs_verification(r)]

    async def fetch(release: Release) -> _Docs | str:
        try:
            return await _documents(reader, release)
        except RegistryUnavailable as exc:
            return f"attestation document not fetched: {exc}"

    fetched = await asyncio.gather(*(fetch(r) for r in todo))

    def work() -> dict[str, ProvenanceCheck]:
        out: dict[str, ProvenanceCheck] = {}
        for release, docs in zip(todo, fetched, strict=True):
            kind = release.provenance.kind if release.provenance else PEP740_KIND
            out[release.key] = (
                unverified(release.key, kind, docs)
                if isinstance(docs, str)
                else _verify(release, docs, online)
            )
        return out

    return await asyncio.to_thread(work) if todo else {}


def apply_checks(history: PackageHistory, checks: Mapping[str, ProvenanceCheck]) -> PackageHistory:
    """The history with each checked release's provenance replaced by what verification found
    (unverified checks keep the registry's record)."""
    changed = False
    releases = []
    for release in history.releases:
        check = checks.get(release.key)
        if check is not None and check.status is not Status.UNVERIFIED and check.provenance:
            release = msgspec.structs.replace(release, provenance=check.provenance)
            changed = True
        releases.append(release)
    return msgspec.structs.replace(history, releases=tuple(releases)) if changed else history


async def verify_histories(
    readers: Mapping[Ecosystem, object],
    histories: Mapping[PackageId, PackageHistory],
    versions: Mapping[PackageId, Sequence[str]],
    *,
    online: bool = False,
) -> tuple[dict[PackageId, PackageHistory], dict[str, ProvenanceCheck]]:
    """Verify the provenance of ``versions`` of each package, concurrently. Returns the
    histories with verified identities written in, and every check by release key."""
    jobs: dict[PackageId, asyncio.Future[dict[str, ProvenanceCheck]]] = {}
    for pid, history in histories.items():
        reader = readers.get(pid[0])
        wanted = set(versions.get(pid, ()))
        if not _verifiable(reader) or not wanted:
            continue
        releases = [r for r in history.releases if r.version in wanted]
        if any(needs_verification(r) for r in releases):
            jobs[pid] = asyncio.ensure_future(check_releases(reader, releases, online=online))
    results = await asyncio.gather(*jobs.values())
    out = dict(histories)
    checks: dict[str, ProvenanceCheck] = {}
    for pid, found in zip(jobs, results, strict=True):
        checks.update(found)
        if found:
            out[pid] = apply_checks(histories[pid], found)
    return out, checks
