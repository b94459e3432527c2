"""Command-line options shared by the ``custody`` commands (one definition, one help text)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

LockfilesArg = Annotated[
    list[Path] | None,
    typer.Argument(
        help="Lockfiles (package-lock.json, npm-shrinkwrap.json, requirements.txt, poetry.lock, "
        "uv.lock, pylock.toml). Default: those found in the current directory.",
        show_default=False,
    ),
]
TrustFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--trust-file",
        help="The trust file. Default: custody.toml here or in a parent directory "
        "(init: ./custody.toml).",
        envvar="CUSTODY_TRUST_FILE",
    ),
]
NpmRegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--npm-registry",
        help="npm registry URL. Default: CUSTODY_NPM_REGISTRY, then your npm configuration.",
        envvar="CUSTODY_NPM_REGISTRY",
        show_envvar=False,
    ),
]
PypiIndexOpt = Annotated[
    str | None,
    typer.Option(
        "--pypi-index",
        help="PyPI simple index URL. Default: CUSTODY_PYPI_INDEX, then PIP_INDEX_URL, pip and "
        "uv configuration.",
        envvar="CUSTODY_PYPI_INDEX",
        show_envvar=False,
    ),
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Ledger database URL (sqlite:///path or postgresql://...). Default: "
        "CUSTODY_DATABASE_URL, else SQLite in the user cache directory.",
        envvar="CUSTODY_DATABASE_URL",
        show_envvar=False,
    ),
]
ConcurrencyOpt = Annotated[
    int, typer.Option("--concurrency", min=1, max=256, help="Parallel registry requests.")
]
MaxAgeOpt = Annotated[
    float | None,
    typer.Option(
        "--max-age",
        help="Use cached registry responses younger than this many seconds without asking "
        "the registry again. Default: as long as the registry's Cache-Control max-age says "
        "(at most 10 minutes), and never when a locked version is missing from the cached copy. "
        "0: always revalidate.",
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.1,
        help="Seconds one attempt waits on a silent registry: to connect (at most 10 s) and "
        "for each next part of the answer; then it is retried (3 attempts, then exit 3). An "
        "attempt still receiving an answer is cut off after 300 s (or this many, if more).",
        envvar="CUSTODY_TIMEOUT",
    ),
]
OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="Answer from the ledger's cache only; a package never fetched before is exit 3.",
    ),
]
ContentOpt = Annotated[
    bool,
    typer.Option(
        "--content/--no-content",
        help="Download and compare the artifacts of flagged releases (check) or of every "
        "upgrade (diff), without running anything: content.obfuscated, scripts.*.",
    ),
]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="Output format: text or json.")]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Evaluate as the world looked at this time (ISO 8601, UTC if no zone): later "
        "releases and maintainer changes are ignored.",
    ),
]


REPORT_FORMATS = ("text", "json", "markdown", "sarif")
ReportFormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        help="Output format: text, json, markdown (a pull-request comment) or sarif.",
    ),
]
