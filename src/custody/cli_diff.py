"""``custody diff``: judge a lockfile change (two paths, REV:path, or ``--base REV``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from custody.cli_common import (
    check_format,
    opened_ledger,
    parse_time,
    progress_bar,
    registry_settings,
    trust_path,
    write_report,
)
from custody.cli_options import (
    REPORT_FORMATS,
    AsOfOpt,
    ConcurrencyOpt,
    ContentOpt,
    DatabaseOpt,
    MaxAgeOpt,
    NpmRegistryOpt,
    OfflineOpt,
    PypiIndexOpt,
    ReportFormatOpt,
    TimeoutOpt,
    TrustFileOpt,
)
from custody.errors import InputError


def diff(
    old: Annotated[
        str | None,
        typer.Argument(
            help="The lockfile before: a path, or REV:path read from git "
            "(origin/main:package-lock.json; the path from the repository root, or from here "
            "with ./).",
            show_default=False,
        ),
    ] = None,
    new: Annotated[
        str | None,
        typer.Argument(help="The lockfile after: a path, or REV:path.", show_default=False),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="Instead of OLD NEW: every lockfile in this git repository that differs between "
            "REV and the working tree, each compared with its version at REV.",
            metavar="REV",
        ),
    ] = None,
    trust_file: TrustFileOpt = None,
    fmt: ReportFormatOpt = "text",
    sarif_file: Annotated[
        Path | None,
        typer.Option("--sarif-file", help="Also write the report as SARIF 2.1.0 to this file."),
    ] = None,
    as_of: AsOfOpt = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show every release and every finding.")
    ] = False,
    npm_registry: NpmRegistryOpt = None,
    pypi_index: PypiIndexOpt = None,
    database: DatabaseOpt = None,
    concurrency: ConcurrencyOpt = 16,
    max_age: MaxAgeOpt = None,
    timeout: TimeoutOpt = 30.0,
    offline: OfflineOpt = False,
    content: ContentOpt = True,
) -> None:
    """Judge a lockfile change: who publishes each added, upgraded or downgraded release.

    Only packages whose locked versions changed are fetched. An upgrade or
    downgrade is judged with the custody of the release it replaces as trusted
    (besides the trust file), so no trust file is needed: a release published
    by the same accounts passes, a change of hands is held. Without a trust
    file the default policy applies (new-packages = "review"): a package new
    to the tree is held for review. Removed packages are listed, never held.

    Exit codes as check: 0 nothing held; 1 held or blocked; 2 bad input (the
    message names the file or REV:path, and the line); 3 no registry answer.

    Examples:

    custody diff origin/main:package-lock.json package-lock.json

    custody diff --base origin/main --format markdown > comment.md
    """
    from custody.diff import diff as run_diff
    from custody.diff import ecosystems_to_fetch, read_changed_since, read_side
    from custody.engine import FetchOptions
    from custody.formats import FORMATS

    check_format(fmt, REPORT_FORMATS)
    when = parse_time(as_of) if as_of is not None else None
    cwd = Path.cwd()
    if base is not None:
        if old is not None or new is not None:
            raise InputError("give either OLD NEW or --base REV, not both")
        old_side, new_side = read_changed_since(base, cwd)
    elif old is None or new is None:
        raise InputError(
            "diff needs OLD and NEW (each a lockfile path or REV:path), or --base REV; e.g. "
            "`custody diff origin/main:package-lock.json package-lock.json`"
        )
    else:
        old_side, new_side = read_side(old, cwd), read_side(new, cwd)
    trust = _diff_trust(trust_file)
    ecosystems = ecosystems_to_fetch(old_side, new_side)
    with opened_ledger(database) as ledger, progress_bar("diffing") as progress:
        report = run_diff(
            old_side,
            new_side,
            trust,
            ledger,
            registry_settings(npm_registry, pypi_index, ecosystems),
            as_of=when,
            options=FetchOptions(
                concurrency=concurrency,
                max_age=max_age,
                timeout=timeout,
                offline=offline,
                content=content,
                progress=progress,
                one_shot=True,
            ),
        )
    if sarif_file is not None:
        try:
            sarif_file.write_text(FORMATS["sarif"](report), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write: {exc.strerror or exc}", path=str(sarif_file)) from None
    write_report(report, fmt, verbose=verbose)


def _diff_trust(option: Path | None) -> Any:
    """The trust file for ``diff``: optional (the replaced release's custody is the baseline)."""
    from custody.trust import EMPTY_TRUST, load_trust_file

    path = trust_path(option)
    if path is None:
        return EMPTY_TRUST
    if not path.exists():
        raise InputError(f"{path}: trust file not found")
    return load_trust_file(path)
