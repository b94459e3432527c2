"""The baseline commands: ``init`` writes the trust file, ``check`` judges lockfiles against
it, ``approve`` and ``trust`` edit it; ``history`` (a package's custody timeline), ``demo``."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, date, datetime, time
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
from custody.console import emit, err, escape
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
    before = _contents(target)
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
    if before is not None and _contents(target) == before:
        err.print(
            f"{escape(str(target))} unchanged: it already trusts every custodian found for "
            f"{result.packages} packages from {len(paths)} lockfile(s)"
        )
    else:
        err.print(
            f"wrote {escape(str(target))}: {result.custodians_added} trusted custodians for "
            f"{result.packages} packages from {len(paths)} lockfile(s)"
        )
    if result.unknown:
        err.print(
            f"[yellow]note:[/] {len(result.unknown)} packages name no publisher or owner on "
            "their registry; their locked versions were approved as the baseline"
        )
    if result.missing:
        err.print(f"[yellow]warning:[/] not on the registry: {escape(', '.join(result.missing))}")
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
    when = parse_time(as_of) if as_of is not None else None
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
    eco, name, version = parse_package_ref(package)
    if version is not None:
        raise InputError(
            f"history takes ECO:NAME without a version: {package!r} (the timeline covers "
            "every release; --as-of stops it at a time)"
        )
    when = parse_time(as_of) if as_of is not None else None
    with opened_ledger(database) as ledger:
        hist, observations = package_history(
            eco, name, ledger, registry_settings(npm_registry, pypi_index, [eco])
        )
    # The timeline of the full history, cut at ``when``: it still knows which releases were
    # unpublished later (``PackageHistory.as_of`` makes them plain releases without details).
    events = [
        e
        for e in timeline(hist, observations, as_of=when)
        if when is None or e.at is None or e.at <= when
    ]
    hist = hist.as_of(when)
    if fmt == "json":
        doc = {
            "schema": "custody/history@1",
            "ecosystem": eco.value,
            "package": hist.name,
            "registry": hist.registry,
            "as_of": _utc(when),
            "current_owners": [
                {"custodian": o.custodian.id, "role": o.role} for o in hist.current_owners or ()
            ],
            "events": [
                {
                    "at": _utc(e.at),
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
    out.print(f"[bold]{escape(f'{eco.value}:{hist.name}')}[/] on {escape(hist.registry)}")
    if hist.current_owners:
        owners = ", ".join(f"{o.custodian.id} ({o.role})" for o in hist.current_owners)
        out.print(f"current owners: {escape(owners)}")
    for e in events:
        stamp = e.at.strftime("%Y-%m-%d %H:%MZ") if e.at else "????-??-?? ??:??"
        style = "" if e.kind == "publish" else "yellow" if "added" in e.kind else "dim"
        text = escape(e.text)
        out.print(f"{stamp}  [{style}]{text}[/]" if style else f"{stamp}  {text}")


def _default_reviewer() -> str:
    try:
        email = subprocess.run(
            ["git", "config", "user.email"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        email = ""
    return email or os.environ.get("USER") or "unknown"


def _given(option: str, value: str | None) -> str | None:
    """An optional text option: None when left out; given but blank is bad usage (an empty
    ``--by "$REVIEWER"`` must not quietly become someone else)."""
    if value is not None and not value.strip():
        raise InputError(f"{option} is empty; leave it out for the default, or say something")
    return None if value is None else value.strip()


def _existing_trust_file(trust_file: Path | None) -> Path:
    path = trust_path(trust_file)
    if path is None or not (path.exists() or path.is_symlink()):
        raise InputError("no custody.toml found: run `custody init` first (or pass --trust-file)")
    return path


def approve(
    release: Annotated[str, typer.Argument(help="ECO:NAME@VERSION, e.g. npm:event-stream@4.0.1")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why this release is fine.")],
    by: Annotated[
        str | None, typer.Option("--by", help="Who approves. Default: git user.email, else $USER.")
    ] = None,
    trust_file: TrustFileOpt = None,
) -> None:
    """Approve one held release in the trust file (with who, why and when).

    VERSION is one exact release (npm: MAJOR.MINOR.PATCH as npm lists it; PyPI: a PEP 440
    version), never a range or a tag. Warns when no lockfile in the current directory locks it.

    Example: custody approve npm:stream-kit@1.0.6 --reason "read the diff; mallory is the new
    maintainer announced in the README"
    """
    from custody.trust import TrustFileEditor
    from custody.trust._ids import check_release_version, normalize_package_key

    eco, name, version = parse_package_ref(release)
    if not version:
        raise InputError(f"approve needs a version: {release!r} (ECO:NAME@VERSION)")
    if not reason.strip():
        raise InputError("--reason must say why the release is fine")
    reviewer = _given("--by", by)
    try:
        key = normalize_package_key(f"{eco.value}:{name}")
        check_release_version(key, version)
    except ValueError as exc:
        raise InputError(f"{release!r}: {exc}") from None
    path = _existing_trust_file(trust_file)
    with TrustFileEditor.editing(path) as editor:
        editor.add_approval(
            key,
            version,
            by=reviewer or _default_reviewer(),
            reason=reason.strip(),
            at=datetime.now(UTC),
        )
        editor.save()
    err.print(f"approved {escape(f'{key}@{version}')} in {escape(str(path))}")
    unlocked = _not_locked_here(key, version)
    if unlocked:
        err.print(f"[yellow]warning:[/] {escape(unlocked)}")


def _not_locked_here(key: str, version: str) -> str | None:
    """Why the approved release may be a typo: the lockfiles in the current directory (read
    offline; none, or unreadable ones, say nothing) do not lock that package or version."""
    from custody.errors import CustodyError
    from custody.lockfiles import find_lockfiles, read_lockfile
    from custody.trust._ids import lookup_key, normalize_version

    try:
        paths = find_lockfiles(Path.cwd())
        locked = [d for p in paths for d in read_lockfile(p)]
    except (CustodyError, OSError):
        return None
    if not paths:
        return None
    versions = {
        normalize_version(key, d.version)
        for d in locked
        if lookup_key(f"{d.ecosystem.value}:{d.name}") == key
    }
    names = ", ".join(p.name for p in paths)
    if not versions:
        return f"{key} is in none of the lockfiles here ({names}); check the name"
    if normalize_version(key, version) not in versions:
        return (
            f"{key}@{version} is not locked here ({names} lock "
            f"{', '.join(sorted(versions))}); check the version"
        )
    return None


def trust(
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
    package: Annotated[
        str | None,
        typer.Argument(
            help="ECO:NAME, e.g. npm:event-stream. Leave it out with --everywhere.",
            show_default=False,
        ),
    ] = None,
    everywhere: Annotated[
        bool,
        typer.Option(
            "--everywhere",
            help="Trust the custodian for every package (a trusted-everywhere entry): your "
            "organisation's own accounts and CI, e.g. github:my-org/*. Not for "
            "npm:trusted-publisher/ID, which any npm package can publish through.",
        ),
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Trusted from this date (ISO 8601).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Trusted up to this date (ISO 8601).")
    ] = None,
    note: Annotated[
        str | None,
        typer.Option("--note", help="Why (kept in the file). Default: who added it, and when."),
    ] = None,
    trust_file: TrustFileOpt = None,
) -> None:
    """Trust a custodian to publish a package, or with --everywhere every package (edits the
    trust file).

    Examples: custody trust npm:stream-kit --custodian npm:user/mallory --note "new maintainer,
    vouched for by alice"; custody trust --everywhere --custodian "github:my-org/*"
    """
    from custody.trust import TrustFileEditor

    key: str | None = None
    if everywhere:
        if package is not None:
            raise InputError(
                f"--everywhere trusts the custodian for every package: leave out {package!r}"
            )
    elif package is None:
        raise InputError(
            "trust needs ECO:NAME (e.g. custody trust npm:event-stream -c npm:user/NAME), or "
            "--everywhere"
        )
    else:
        eco, name, version = parse_package_ref(package)
        if version:
            raise InputError(f"trust takes ECO:NAME without a version: {package!r}")
        key = f"{eco.value}:{name}"
    if ":" not in custodian or custodian.startswith(":"):
        raise InputError(
            "--custodian must look like npm:user/NAME, npm:trusted-publisher/ID or "
            f"github:OWNER/REPO: {custodian!r}"
        )
    start = _day_or_time(since, "--since")
    end = _day_or_time(until, "--until")
    if start is not None and end is not None and _as_time(end, last=True) < _as_time(start):
        raise InputError(f"--until ({until}) is before --since ({since})")
    why = _given("--note", note)
    why = why or f"added by {_default_reviewer()} on {datetime.now(UTC).date().isoformat()}"
    path = _existing_trust_file(trust_file)
    with TrustFileEditor.editing(path) as editor:
        if key is None:
            added = editor.add_trusted_everywhere(custodian, since=start, until=end, note=why)
        else:
            added = editor.add_trusted(key, custodian, since=start, until=end, note=why)
        editor.save()
    scope = "every package" if key is None else key
    err.print(
        f"{'trusted' if added else 'already trusted'}: {escape(custodian)} for {escape(scope)}"
    )


def _day_or_time(text: str | None, option: str) -> date | datetime | None:
    """``--since``/``--until``: a date (written to the file as a date: the whole day, in UTC)
    or a date-time."""
    if text is None:
        return None
    when = parse_time(text, option, past=False)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return when


def _as_time(when: date | datetime, *, last: bool = False) -> datetime:
    if isinstance(when, datetime):
        return when
    return datetime.combine(when, time.max if last else time.min, tzinfo=UTC)


def _contents(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _utc(when: datetime | None) -> str | None:
    """A time in JSON output, spelled as everywhere else: ``2018-09-16T00:00:00Z``."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z") if when else None


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
        err.print(
            f"recorded {r.dependencies} dependencies of {escape(r.lockfile)} "
            f"(project {escape(r.project)})"
        )
