"""``custody verify ECO:NAME@VERSION``: verify one release's provenance and fingerprint it.

Exit code: 1 when the release would be blocked (``provenance.invalid``) or held by the default
policy (a ``content.not-in-source`` finding of severity medium or more), else 0."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape

from custody.content.fetch import ArtifactCache
from custody.errors import InputError, PackageNotFound
from custody.fingerprint.check import fingerprint_release
from custody.fingerprint.git import GitOptions
from custody.fingerprint.result import FingerprintResult
from custody.judge import find_release
from custody.model import Ecosystem, Finding, Release, Severity
from custody.provenance.result import ProvenanceCheck
from custody.provenance.verify import apply_checks, check_releases
from custody.registries.base import ResponseCache
from custody.registries.config import RegistrySettings
from custody.registries.facade import make_readers
from custody.registries.http import HttpOptions
from custody.registries.npm import NpmReader
from custody.registries.pypi import PypiReader

SCHEMA = "custody/verify@1"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    release: Release
    registry: str
    provenance: ProvenanceCheck | None
    fingerprints: tuple[FingerprintResult, ...]

    @property
    def findings(self) -> list[Finding]:
        out = [self.provenance.finding()] if self.provenance else []
        out += [f.finding() for f in self.fingerprints]
        return sorted((f for f in out if f is not None), key=lambda f: -f.severity.rank)

    @property
    def exit_code(self) -> int:
        return int(any(f.severity.rank >= Severity.MEDIUM.rank for f in self.findings))


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    online: bool = False
    fingerprints: bool = True
    source: str | None = None
    commit: str | None = None
    git: GitOptions = field(default_factory=GitOptions)


async def run_verify(
    ecosystem: Ecosystem,
    name: str,
    version: str | None,
    settings: RegistrySettings,
    cache: ResponseCache | None,
    http: HttpOptions,
    options: VerifyOptions,
) -> VerifyReport:
    async with make_readers(settings, cache, options=http) as registries:
        reader = registries.readers.get(ecosystem)
        if not isinstance(reader, NpmReader | PypiReader):
            raise InputError(f"no {ecosystem.value} registry configured")
        history = await reader.history(name)
        if version is None:
            version = history.dist_tags.get("latest") or (
                history.releases[-1].version if history.releases else None
            )
        release = find_release(history, version) if version else None
        if release is None or release.unpublished:
            raise PackageNotFound(reader.registry, f"{ecosystem.value}:{name}@{version}")
        checks = await check_releases(reader, [release], online=options.online)
        release = apply_checks(history, checks).release(release.version) or release
        results: tuple[FingerprintResult, ...] = ()
        if options.fingerprints:
            url = next((a.url for a in release.artifacts if a.url), None) or reader.registry
            auth = reader.settings.auth_for(url)
            results = await fingerprint_release(
                registries.client,
                release,
                registry=reader.registry,
                auth=auth.header() if auth is not None else None,
                options=options.git,
                cache=ArtifactCache(),
                repository=options.source,
                commit=options.commit,
            )
    return VerifyReport(release, reader.registry, checks.get(release.key), results)


def to_json(report: VerifyReport) -> str:
    prov = report.release.provenance
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "release": report.release.key,
        "registry": report.registry,
        "provenance": {
            "present": prov is not None,
            "kind": prov.kind if prov else None,
            "verified": prov.verified if prov else None,
            "source": prov.source.id if prov and prov.source else None,
            "source_id": prov.source.numeric_id if prov and prov.source else None,
            "workflow": prov.workflow if prov else None,
            "ref": prov.ref if prov else None,
            "commit": prov.commit if prov else None,
            "issuer": prov.issuer if prov else None,
            "check": (
                {"message": report.provenance.message, **report.provenance.evidence()}
                if report.provenance
                else None
            ),
        },
        "fingerprints": [r.to_json() for r in report.fingerprints],
        "findings": [_finding(f) for f in report.findings],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=str).decode() + "\n"


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "severity": f.severity.value,
        "message": f.message,
        "evidence": f.evidence,
    }


def render_text(report: VerifyReport, *, color: bool = False) -> str:
    buf = io.StringIO()
    out = Console(
        file=buf, force_terminal=color, no_color=not color, highlight=False, soft_wrap=True
    )
    rel = report.release
    out.print(f"[bold]{escape(rel.key)}[/] on {escape(report.registry)}")
    prov, check = rel.provenance, report.provenance
    if prov is None:
        out.print("provenance: none")
    elif check is None:
        out.print(f"provenance: {prov.kind}, nothing to verify (no signed attestation)")
    else:
        style = {"verified": "green", "invalid": "red bold", "unverified": "yellow"}
        out.print(
            f"provenance: [{style[check.status.value]}]{check.status.value}[/] "
            f"{escape(check.message)}"
        )
        if check.identity is not None:
            ident = check.identity
            out.print("  signing certificate:")
            for label, value in (
                ("source", ident.custodian.id if ident.custodian else ident.repository_uri),
                ("repository id", ident.repository_id),
                ("owner id", ident.owner_id),
                ("workflow", ident.workflow),
                ("ref", ident.ref),
                ("commit", ident.commit),
                ("issuer", ident.issuer),
            ):
                if value:
                    out.print(f"    {label}: {escape(value)}")
        if check.failure is not None:
            out.print(f"  expected: {escape(str(check.expected))}")
            out.print(f"  actual:   {escape(str(check.actual))}")
    _render_fingerprints(out, report.fingerprints)
    verdict = "[red]would block or hold[/]" if report.exit_code else "[green]ok[/]"
    out.print(f"result: {verdict}")
    return buf.getvalue()


def _render_fingerprints(out: Console, results: Sequence[FingerprintResult]) -> None:
    for r in results:
        head = f"fingerprint {escape(r.artifact or r.release)}: "
        if not r.compared:
            out.print(head + f"[yellow]not compared[/] ({escape(r.note or 'no source')})")
            continue
        out.print(
            head
            + f"{r.matched} files match {escape(r.repository or '')} at {(r.commit or '')[:12]}"
            f" ({escape(r.resolved_from or '')})"
            + (f", in {r.package_dir}/" if r.package_dir else "")
        )
        for f in sorted(r.files, key=lambda f: (-f.severity.rank, f.path)):
            mark = "explained" if f.explained else "[red]unexplained[/]"
            out.print(
                f"  {f.severity.value:<8} {f.status.value:<7} {escape(f.path)}: {mark}, "
                f"{escape(f.reason)}"
            )
        for note in r.notes:
            out.print(f"  note: {escape(note)}")
