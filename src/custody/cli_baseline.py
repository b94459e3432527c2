"""The baseline commands: ``init`` writes the trust file, ``check`` judges lockfiles against
it, ``approve`` and ``trust`` edit it; ``history`` (a package's custody timeline), ``demo``."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from custody.cli_common import (
    check_format,
    lockfile_paths,
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
    FormatOpt,
    LockfilesArg,
    MaxAgeOpt,
    NpmRegistryOpt,
    OfflineOpt,
    PypiIndexOpt,
    ReportFormatOpt,
    TimeoutOpt,
    TrustFileOpt,
)
from custody.console import emit, err
from custody.errors import InputError
from custody.model import parse_package_ref


def init(
    lockfiles: LockfilesArg = None,
    trust_file: TrustFileOpt = None,
    merge: Annotated[
        bool, typer.Option("--merge", help="Add to an existing trust file instead of refusing.")
    ] = False,
    npm_registry: NpmRegistryOpt = None,
    pypi_index: PypiIndexOpt = None,
    database: DatabaseOpt = None,
    concurrency: ConcurrencyOpt = 16,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Write the trust file baseline from the current lockfiles (trust on first use).

    For every locked release, the accounts and provenance sources that published it and the
    earlier releases of its major line become trusted custodians. Review the file and commit
    it. Example: custody init package-lock.json
    """
    from custody.engine import FetchOptions, read_lockfiles
    from custody.engine import init as run_init

    paths = lockfile_paths(lockfiles)
    target = trust_file or Path.cwd() / "custody.toml"
    if target.exists() and not merge:
        raise InputError(f"{target} exists: use --merge to add to it, or delete it first")
    locked = read_lockfiles(paths)
    with opened_ledger(database) as ledger, progress_bar("fetching") as progress:
        result = run_init(
            locked,
            target,
            ledger,
            registry_settings(npm_registry, pypi_index, locked.ecosystems),
            merge=merge,
            options=FetchOptions(
                concurrency=concurrency, timeout=timeout, progress=progress, one_shot=True
            ),
        )
    err.print(
        f"wrote {target}: {result.custodians_added} trusted custodians for "
        f"{result.packages} packages from {len(paths)} lockfile(s)"
    )
    if result.unknown:
        err.print(
            f"[yellow]note:[/] {len(result.unknown)} packages name no publisher or owner on "
            "their registry; their locked versions were approved as the baseline"
        )
    if result.missing:
        err.print(f"[yellow]warning:[/] not on the registry: {', '.join(result.missing)}")
    err.print("Review it like code, then commit it.")


def check(
    lockfiles: LockfilesArg = None,
    trust_file: TrustFileOpt = None,
    fmt: ReportFormatOpt = "text",
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
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Also store what each lockfile locks in the ledger's inventory, for "
            "`custody where`, `rollback` and `watch`.",
        ),
    ] = False,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            help="Project name for --record. Default: the folder the lockfile is in.",
        ),
    ] = None,
) -> None:
    """Check every locked release against the trust file and its custody history.

    Exits 1 when a release is held (custody changed, needs approval) or blocked. Example:
    custody check package-lock.json --format json

    With --record, also stores what each lockfile locks in the ledger (for `custody where`,
    `rollback` and `watch`). Example: custody check --record --project web
    """
    from custody.engine import FetchOptions, read_lockfiles
    from custody.engine import check as run_check
    from custody.trust import load_trust_file

    check_format(fmt, REPORT_FORMATS)
    when = parse_time(as_of) if as_of else None
    paths = lockfile_paths(lockfiles)
    path = trust_path(trust_file)
    if path is None:
        raise InputError(
            "no custody.toml found here or in a parent directory: run `custody init` first "
            "(or pass --trust-file)"
        )
    if not path.exists():
        raise InputError(f"{path}: trust file not found")
    trust = load_trust_file(path)
    locked = read_lockfiles(paths)
    with opened_ledger(database) as ledger, progress_bar("checking") as progress:
        report = run_check(
            locked,
            trust,
            ledger,
            registry_settings(npm_registry, pypi_index, locked.ecosystems),
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
        if record:
            _record_inventory(ledger, locked, project)
    write_report(report, fmt, verbose=verbose)


def history(
    package: Annotated[
        str, typer.Argument(help="ECO:NAME, e.g. npm:event-stream or pypi:requests")
    ],
    fmt: FormatOpt = "text",
    as_of: AsOfOpt = None,
    npm_registry: NpmRegistryOpt = None,
    pypi_index: PypiIndexOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Show a package's custody timeline: publishers, maintainers, provenance, owners.

    Who published what and when, maintainers added and removed, provenance on and off, and the
    owners Custody observed over time.

    Example: custody history npm:event-stream
    """
    from custody.engine import package_history
    from custody.timeline import timeline

    check_format(fmt)
    eco, name, _ = parse_package_ref(package)
    when = parse_time(as_of) if as_of else None
    with opened_ledger(database) as ledger:
        hist, observations = package_history(
            eco, name, ledger, registry_settings(npm_registry, pypi_index, [eco])
        )
    hist = hist.as_of(when)
    events = [
        e for e in timeline(hist, observations) if when is None or e.at is None or e.at <= when
    ]
    if fmt == "json":
        doc = {
            "schema": "custody/history@1",
            "ecosystem": eco.value,
            "package": hist.name,
            "registry": hist.registry,
            "as_of": when.isoformat() if when else None,
            "current_owners": [
                {"custodian": o.custodian.id, "role": o.role} for o in hist.current_owners or ()
            ],
            "events": [
                {
                    "at": e.at.isoformat() if e.at else None,
                    "kind": e.kind,
                    "version": e.version,
                    "text": e.text,
                    **e.data,
                }
                for e in events
            ],
        }
        emit(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    from rich.console import Console

    out = Console(highlight=False)
    out.print(f"[bold]{eco.value}:{hist.name}[/] on {hist.registry}")
    if hist.current_owners:
        owners = ", ".join(f"{o.custodian.id} ({o.role})" for o in hist.current_owners)
        out.print(f"current owners: {owners}")
    for e in events:
        stamp = e.at.strftime("%Y-%m-%d %H:%M") if e.at else "????-??-?? ??:??"
        style = "" if e.kind == "publish" else "yellow" if "added" in e.kind else "dim"
        out.print(f"{stamp}  [{style}]{e.text}[/]" if style else f"{stamp}  {e.text}")


def _default_reviewer() -> str:
    try:
        email = subprocess.run(
            ["git", "config", "user.email"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        email = ""
    return email or os.environ.get("USER") or "unknown"


def approve(
    release: Annotated[str, typer.Argument(help="ECO:NAME@VERSION, e.g. npm:event-stream@4.0.1")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why this release is fine.")],
    by: Annotated[
        str | None, typer.Option("--by", help="Who approves. Default: git user.email, else $USER.")
    ] = None,
    trust_file: TrustFileOpt = None,
) -> None:
    """Approve one held release in the trust file (with who, why and when).

    Example: custody approve npm:stream-kit@1.0.6 --reason "read the diff; mallory is the new
    maintainer announced in the README"
    """
    from custody.trust import TrustFileEditor

    eco, name, version = parse_package_ref(release)
    if not version:
        raise InputError(f"approve needs a version: {release!r} (ECO:NAME@VERSION)")
    if not reason.strip():
        raise InputError("--reason must say why the release is fine")
    path = trust_path(trust_file)
    if path is None or not path.exists():
        raise InputError("no custody.toml found: run `custody init` first (or pass --trust-file)")
    editor = TrustFileEditor.open(path)
    editor.add_approval(
        f"{eco.value}:{name}",
        version,
        by=by or _default_reviewer(),
        reason=reason.strip(),
        at=datetime.now(UTC),
    )
    editor.save()
    err.print(f"approved {eco.value}:{name}@{version} in {path}")


def trust(
    package: Annotated[str, typer.Argument(help="ECO:NAME, e.g. npm:event-stream")],
    custodian: Annotated[
        str,
        typer.Option(
            "--custodian",
            "-c",
            help="Identity to trust: npm:user/NAME, npm:trusted-publisher/ID (npm trusted "
            "publishing from CI: github, gitlab), pypi:user/NAME, pypi:org/NAME, "
            "github:OWNER/REPO (globs allowed in repository names).",
        ),
    ],
    since: Annotated[
        str | None, typer.Option("--since", help="Trusted from this date (ISO 8601).")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="Why (kept in the file).")] = None,
    trust_file: TrustFileOpt = None,
) -> None:
    """Trust a custodian to publish a package (edits the trust file).

    Example: custody trust npm:stream-kit --custodian npm:user/mallory --note "new maintainer,
    vouched for by alice"
    """
    from custody.trust import TrustFileEditor

    eco, name, version = parse_package_ref(package)
    if version:
        raise InputError(f"trust takes ECO:NAME without a version: {package!r}")
    if ":" not in custodian or custodian.startswith(":"):
        raise InputError(
            "--custodian must look like npm:user/NAME, npm:trusted-publisher/ID or "
            f"github:OWNER/REPO: {custodian!r}"
        )
    path = trust_path(trust_file)
    if path is None or not path.exists():
        raise InputError("no custody.toml found: run `custody init` first (or pass --trust-file)")
    editor = TrustFileEditor.open(path)
    added = editor.add_trusted(
        f"{eco.value}:{name}",
        custodian,
        since=parse_time(since) if since else None,
        note=note or f"added by {_default_reviewer()} on {datetime.now(UTC).date().isoformat()}",
    )
    editor.save()
    err.print(f"{'trusted' if added else 'already trusted'}: {custodian} for {eco.value}:{name}")


def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the demo project directory and print its path.")
    ] = False,
) -> None:
    """Replay the event-stream hand-over on a built-in registry and hold it (no network).

    Starts a local registry on loopback that serves the 2018 event-stream story, runs `custody
    init` on a project locked to 3.3.5, moves the lockfile to 3.3.6 and runs `custody check`.
    Exits 0 when the hand-over is held, as it should be.
    """
    from rich.console import Console

    from custody.demo import run_demo

    raise typer.Exit(run_demo(keep=keep, console=Console(highlight=False)))


def _record_inventory(ledger: Any, locked: Any, project: str | None) -> None:
    """``check --record``: store what each lockfile locks in the ledger's inventory."""
    from custody.inventory import record_locked

    recorded = record_locked(
        ledger,
        list(locked.lockfiles),
        list(locked.dependencies),
        project=project,
        scanned_at=datetime.now(UTC),
    )
    for r in recorded:
        err.print(f"recorded {r.dependencies} dependencies of {r.lockfile} (project {r.project})")
