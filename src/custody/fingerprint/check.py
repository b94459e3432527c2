"""Fingerprint a release: find its source commit, then compare the artifact with it.

The commit comes from, in order: the verified provenance (repository and commit signed by the
CI that built it), npm's ``gitHead``, or a version tag (``v1.2.3``, ``1.2.3``,
``name@1.2.3``, ``name-v1.2.3``, ``name-1.2.3``) in the declared repository. A commit the
repository does not have is noted and the next source tried."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from custody.content.archive import ArchiveRefusal, read_archive
from custody.content.fetch import ArtifactCache, IntegrityMismatch, fetch_artifact
from custody.content.limits import limits_for
from custody.fingerprint.compare import Comparison, compare_npm, compare_sdist, compare_wheel
from custody.fingerprint.git import GitError, GitOptions, SourceRepo
from custody.fingerprint.result import FingerprintResult
from custody.model import Artifact, Ecosystem, Release
from custody.registries.http import RegistryClient

_FORGES = {"github": "https://github.com/", "gitlab": "https://gitlab.com/"}


@dataclass(frozen=True, slots=True)
class SourceRef:
    """A commit candidate and where it came from."""

    how: str  # "provenance", "gitHead", "tag v1.2.3", "given"
    commit: str | None = None
    tag: str | None = None


def tag_names(release: Release) -> list[str]:
    v = release.version
    base = release.name.rsplit("/", 1)[-1]
    names = [f"v{v}", v, f"{release.name}@{v}", f"{base}@{v}", f"{base}-v{v}", f"{base}-{v}"]
    return list(dict.fromkeys(names))


def source_repository(release: Release) -> str | None:
    """The repository to fetch: the verified provenance source, else the declared one."""
    prov = release.provenance
    if prov is not None and prov.verified and prov.source is not None:
        namespace, _, path = prov.source.id.partition(":")
        if namespace in _FORGES:
            return _FORGES[namespace] + path
    return release.repository


def source_refs(release: Release, commit: str | None = None) -> list[SourceRef]:
    if commit:
        return [SourceRef("given", commit=commit)]
    refs: list[SourceRef] = []
    prov = release.provenance
    if prov is not None and prov.verified and prov.commit:
        refs.append(SourceRef("provenance", commit=prov.commit))
    if release.git_head:
        refs.append(SourceRef("gitHead", commit=release.git_head))
    refs.extend(SourceRef(f"tag {t}", tag=t) for t in tag_names(release))
    return refs


async def resolve(
    repo: SourceRepo, refs: Sequence[SourceRef]
) -> tuple[SourceRef | None, list[str]]:
    """The first candidate the repository has, with its commit, and notes on the misses."""
    notes: list[str] = []
    commits = [r for r in refs if r.commit]
    for ref in commits:
        assert ref.commit is not None
        if await repo.fetch_commit(ref.commit):
            return ref, notes
        notes.append(f"the repository has no commit {ref.commit[:12]} ({ref.how})")
    tags = [r for r in refs if r.tag]
    if tags:
        found = await repo.resolve_tags([r.tag for r in tags if r.tag])
        for ref in tags:
            if ref.tag in found:
                return SourceRef(ref.how, commit=found[ref.tag], tag=ref.tag), notes
        notes.append("no version tag (" + ", ".join(r.tag or "" for r in tags[:3]) + ", ...)")
    return None, notes


def _kind(release: Release, artifact: Artifact | None) -> str:
    if release.ecosystem is Ecosystem.NPM:
        return "tarball"
    if artifact is not None and artifact.kind in ("wheel", "sdist"):
        return artifact.kind
    name = artifact.filename if artifact else ""
    return "wheel" if name.endswith(".whl") else "sdist"


async def fingerprint(
    release: Release,
    artifact_files: Mapping[str, bytes] | bytes,
    *,
    artifact: Artifact | None = None,
    options: GitOptions | None = None,
    repository: str | None = None,
    commit: str | None = None,
) -> FingerprintResult:
    """Compare one artifact of ``release`` (its bytes, or its files as ``read_archive``
    returns them) with the source at the release's commit. Never raises for a missing or
    unreachable source: the result's ``note`` says why nothing was compared."""
    options = options or GitOptions()
    name = artifact.filename if artifact else None
    kind = _kind(release, artifact)
    if isinstance(artifact_files, bytes):
        read = read_archive(artifact_files, strip_root=kind != "wheel", limits=limits_for(kind))
        if isinstance(read, ArchiveRefusal):
            return FingerprintResult(release.key, name, note=f"archive not read: {read.detail}")
        files: Mapping[str, bytes] = read.files
    else:
        files = artifact_files
    url = repository or source_repository(release)
    if not url:
        return FingerprintResult(release.key, name, note="the release names no source repository")
    try:
        repo = SourceRepo(url, options)
        ref, notes = await resolve(repo, source_refs(release, commit))
        if ref is None or ref.commit is None:
            return FingerprintResult(
                release.key, name, url, note="no source commit found: " + "; ".join(notes),
                notes=tuple(notes),
            )  # fmt: skip
        compare = {"tarball": compare_npm, "sdist": compare_sdist, "wheel": compare_wheel}[kind]
        result: Comparison = await compare(repo, ref.commit, files)
    except GitError as exc:
        return FingerprintResult(release.key, name, url, note=f"source not available: {exc}")
    return FingerprintResult(
        release=release.key,
        artifact=name,
        repository=url,
        commit=ref.commit,
        resolved_from=ref.how,
        package_dir=result.package_dir,
        matched=result.matched,
        files=result.files,
        notes=tuple(notes),
    )


def fingerprint_artifacts(release: Release) -> list[Artifact]:
    """The artifacts worth comparing: npm's tarball; PyPI's sdist and one wheel (pure first)."""
    usable = [a for a in release.artifacts if a.url and not a.yanked]
    if release.ecosystem is Ecosystem.NPM:
        return [a for a in usable if a.kind in ("tarball", None)][:1]
    sdists = sorted(
        (a for a in usable if a.kind == "sdist"),
        key=lambda a: (not a.filename.endswith(".tar.gz"), a.filename),
    )
    wheels = sorted(
        (a for a in usable if a.kind == "wheel"),
        key=lambda a: (not a.filename.endswith("-any.whl"), a.filename),
    )
    return sdists[:1] + wheels[:1]


async def fingerprint_release(
    client: RegistryClient,
    release: Release,
    *,
    registry: str,
    auth: str | None = None,
    options: GitOptions | None = None,
    cache: ArtifactCache | None = None,
    repository: str | None = None,
    commit: str | None = None,
) -> tuple[FingerprintResult, ...]:
    """Download the release's artifacts (digest-checked, cached) and fingerprint each.

    Raises what ``fetch_artifact`` raises for registry failures; a digest mismatch becomes a
    result with a note (the content signals report it as ``content.integrity-mismatch``)."""
    artifacts = fingerprint_artifacts(release)
    if not artifacts:
        return (FingerprintResult(release.key, None, note="no artifact to compare"),)

    async def one(artifact: Artifact) -> FingerprintResult:
        try:
            data = await fetch_artifact(client, artifact, registry=registry, auth=auth, cache=cache)
        except IntegrityMismatch as exc:
            return FingerprintResult(
                release.key, artifact.filename, note=f"{exc.algorithm} digest mismatch"
            )
        return await fingerprint(
            release, data, artifact=artifact, options=options, repository=repository,
            commit=commit,
        )  # fmt: skip

    return tuple(await asyncio.gather(*(one(a) for a in artifacts)))
