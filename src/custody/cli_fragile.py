"""``custody fragile``: the dependencies that are both critical and fragile."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from custody.cli_common import (
    check_format,
    lockfile_paths,
    opened_ledger,
    parse_time,
    progress_bar,
    registry_settings,
    trust_path,
)
from custody.cli_options import (
    AsOfOpt,
    ConcurrencyOpt,
    DatabaseOpt,
    LockfilesArg,
    MaxAgeOpt,
    NpmRegistryOpt,
    OfflineOpt,
    PypiIndexOpt,
    TimeoutOpt,
    TrustFileOpt,
)
from custody.console import emit, err, escape
from custody.errors import InputError


def _policy(trust_file: Path | None) -> Any:
    from custody.policy import DEFAULT_POLICY
    from custody.trust import load_trust_file

    path = trust_path(trust_file)
    return load_trust_file(path).policy if path is not None and path.exists() else DEFAULT_POLICY


def _write_output(text_out: str, output: Path | None) -> None:
    if output is None:
        emit(text_out)
        return
    try:
        output.write_text(text_out, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", path=str(output)) from None
    err.print(f"wrote {escape(str(output))}")


def fragile(
    lockfiles: LockfilesArg = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="Output format: text, json, markdown or html.")
    ] = "text",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    top: Annotated[
        int,
        typer.Option("--top", min=0, help="Show this many packages in text and Markdown (0: all)."),
    ] = 20,
    as_of: AsOfOpt = None,
    trust_file: TrustFileOpt = None,
    npm_registry: NpmRegistryOpt = None,
    pypi_index: PypiIndexOpt = None,
    database: DatabaseOpt = None,
    concurrency: ConcurrencyOpt = 16,
    max_age: MaxAgeOpt = None,
    timeout: TimeoutOpt = 30.0,
    offline: OfflineOpt = False,
) -> None:
    """Rank the dependencies that are both critical to you and fragile, and where to help.

    Critical: fan-in within your projects and, where configured, public weekly downloads
    (CUSTODY_POPULARITY_NPM_URL / CUSTODY_POPULARITY_PYPI_URL, URL templates with {package};
    without them the report says it used fan-in only). Fragile: a single maintainer, long
    inactivity, slowing releases, no provenance, an ownership change on record, deprecation or
    "looking for maintainers" notes. Every point is explained (docs/fragility.md).

    Examples: custody fragile package-lock.json; custody fragile -f html -o radar.html
    """
    from custody.engine import FetchOptions, read_lockfiles
    from custody.formats import fragility as fragility_format
    from custody.formats import html
    from custody.popularity import PopularitySettings
    from custody.radar import fragile as run_fragile

    check_format(fmt, ("text", "json", "markdown", "html"))
    when = parse_time(as_of) if as_of is not None else None
    locked = read_lockfiles(lockfile_paths(lockfiles))
    policy = _policy(trust_file)
    with opened_ledger(database) as ledger, progress_bar("fetching") as progress:
        report = run_fragile(
            locked,
            ledger,
            registry_settings(npm_registry, pypi_index, locked.ecosystems),
            PopularitySettings.from_env(os.environ),
            policy,
            as_of=when,
            options=FetchOptions(
                concurrency=concurrency,
                max_age=max_age,
                timeout=timeout,
                offline=offline,
                progress=progress,
                one_shot=True,
            ),
        )
    limit = top or None
    if fmt == "json":
        out = fragility_format.render_json(report)
    elif fmt == "markdown":
        out = fragility_format.render_markdown(report, top=limit)
    elif fmt == "html":
        out = html.render(report)
    else:
        out = fragility_format.render_text(report, top=limit)
    _write_output(out, output)
