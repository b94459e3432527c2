"""``custody verify``: a release's signed provenance, and its files against its source."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from custody.cli_common import check_format, opened_ledger, registry_settings
from custody.cli_options import (
    DatabaseOpt,
    FormatOpt,
    NpmRegistryOpt,
    OfflineOpt,
    PypiIndexOpt,
    TimeoutOpt,
)
from custody.console import emit
from custody.model import parse_package_ref


def verify(
    release: Annotated[
        str, typer.Argument(help="ECO:NAME@VERSION, e.g. npm:sigstore@2.0.0 (default: latest)")
    ],
    fmt: FormatOpt = "text",
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Refresh the Sigstore trust root over TUF first. Default: verify offline with "
            "the trust root sigstore ships (or last refreshed).",
        ),
    ] = False,
    fingerprint: Annotated[
        bool,
        typer.Option(
            "--fingerprint/--no-fingerprint",
            help="Compare the artifacts with the source repository at the release's commit.",
        ),
    ] = True,
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="Source repository URL (default: provenance, then metadata)."
        ),
    ] = None,
    commit: Annotated[
        str | None,
        typer.Option("--commit", help="Source commit (default: provenance, gitHead, tag)."),
    ] = None,
    allow_file_urls: Annotated[
        bool, typer.Option("--allow-file-urls", help="Allow file:// source repositories.")
    ] = False,
    npm_registry: NpmRegistryOpt = None,
    pypi_index: PypiIndexOpt = None,
    database: DatabaseOpt = None,
    timeout: TimeoutOpt = 30.0,
    offline: OfflineOpt = False,
) -> None:
    """Verify a release's signed provenance and compare its files with its source.

    Provenance (npm SLSA attestations, PyPI PEP 740) is checked against the Sigstore trust
    root; the artifact is compared with the source repository at the release's commit.
    Exits 1 when the release would be blocked (provenance.invalid) or held
    (content.not-in-source, medium or more). Example: custody verify npm:sigstore@2.0.0
    """
    import asyncio

    from custody.engine import FetchOptions
    from custody.fingerprint import GitOptions
    from custody.provenance.command import VerifyOptions, render_text, run_verify, to_json

    check_format(fmt)
    eco, name, version = parse_package_ref(release)
    settings = registry_settings(npm_registry, pypi_index, [eco])
    http = FetchOptions(timeout=timeout, offline=offline).http(settings)
    opts = VerifyOptions(
        online=online,
        fingerprints=fingerprint,
        source=source,
        commit=commit,
        git=GitOptions(allow_file=allow_file_urls, offline=offline),
    )
    with opened_ledger(database) as ledger:
        report = asyncio.run(run_verify(eco, name, version, settings, ledger, http, opts))
    text_out = to_json(report) if fmt == "json" else render_text(report, color=sys.stdout.isatty())
    emit(text_out)
    raise typer.Exit(report.exit_code)
