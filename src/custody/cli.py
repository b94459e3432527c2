"""The ``custody`` command line: a thin layer over engine, trust and formats."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from custody import __version__
from custody.errors import CustodyError, InputError
from custody.model import Ecosystem, parse_package_ref

app = typer.Typer(
    name="custody",
    help=(
        "Keep track of who holds the keys to every dependency, and hold a change of hands "
        "until a person approves it.\n\n"
        "Exit codes: 0 nothing held or blocked; 1 something held or blocked; "
        "2 bad usage or unreadable input; 3 a registry could not be reached (never a pass)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)

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
        help="Use cached registry responses younger than this many seconds without "
        "revalidating them. Default: always revalidate.",
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.1,
        help="Seconds to wait for a registry's answer before retrying (3 tries, then exit 3).",
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
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="Output format: text or json.")]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Evaluate as the world looked at this time (ISO 8601, UTC if no zone): later "
        "releases and maintainer changes are ignored.",
    ),
]


def parse_time(text: str) -> datetime:
    """ISO 8601 date or date-time; ``Z`` accepted; no zone means UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            day = date.fromisoformat(text.strip())
        except ValueError:
            raise InputError(f"--as-of: not an ISO 8601 time: {text!r}") from None
        value = datetime(day.year, day.month, day.day)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _lockfiles(paths: list[Path] | None) -> list[Path]:
    from custody.lockfiles import find_lockfiles

    if paths:
        return paths
    found = find_lockfiles(Path.cwd())
    if not found:
        raise InputError(
            "no lockfile found in the current directory; name one, e.g. "
            "`custody check package-lock.json`"
        )
    return found


def _settings(
    npm_registry: str | None, pypi_index: str | None, ecosystems: Iterable[Ecosystem]
) -> Any:
    """Registry locations for just the ecosystems a run needs (a Python-only project never
    needs npm configured)."""
    from custody.registries.config import resolve_settings

    return resolve_settings(
        Path.cwd(), npm_registry, pypi_index, dict(os.environ), ecosystems=set(ecosystems)
    )


def _trust_path(option: Path | None, *, for_writing: bool = False) -> Path | None:
    from custody.trust import find_trust_file

    if option is not None:
        return option
    found = find_trust_file(Path.cwd())
    if found is None and for_writing:
        return Path.cwd() / "custody.toml"
    return found


def _check_format(fmt: str, allowed: tuple[str, ...] = ("text", "json")) -> None:
    if fmt not in allowed:
        raise InputError(f"--format must be one of {', '.join(allowed)}; got {fmt!r}")


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr for interactive runs; nothing in CI logs or pipes."""
    if not sys.stderr.isatty() or os.environ.get("CI"):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        f"[progress.description]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextmanager
def _ledger(database: str | None) -> Iterator[Any]:
    from custody.ledger import open_ledger

    ledger = open_ledger(database)
    try:
        yield ledger
    finally:
        ledger.close()


@app.command()
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

    paths = _lockfiles(lockfiles)
    target = trust_file or Path.cwd() / "custody.toml"
    if target.exists() and not merge:
        raise InputError(f"{target} exists: use --merge to add to it, or delete it first")
    locked = read_lockfiles(paths)
    with _ledger(database) as ledger, _progress("fetching") as progress:
        result = run_init(
            locked,
            target,
            ledger,
            _settings(npm_registry, pypi_index, locked.ecosystems),
            merge=merge,
            options=FetchOptions(concurrency=concurrency, timeout=timeout, progress=progress),
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


@app.command()
def check(
    lockfiles: LockfilesArg = None,
    trust_file: TrustFileOpt = None,
    fmt: FormatOpt = "text",
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
) -> None:
    """Check every locked release against the trust file and its custody history.

    Exits 1 when a release is held (custody changed, needs approval) or blocked. Example:
    custody check package-lock.json --format json
    """
    from custody.engine import FetchOptions, read_lockfiles
    from custody.engine import check as run_check
    from custody.formats import json_format, text
    from custody.trust import load_trust_file

    _check_format(fmt)
    when = parse_time(as_of) if as_of else None
    paths = _lockfiles(lockfiles)
    path = _trust_path(trust_file)
    if path is None:
        raise InputError(
            "no custody.toml found here or in a parent directory: run `custody init` first "
            "(or pass --trust-file)"
        )
    if not path.exists():
        raise InputError(f"{path}: trust file not found")
    trust = load_trust_file(path)
    locked = read_lockfiles(paths)
    with _ledger(database) as ledger, _progress("checking") as progress:
        report = run_check(
            locked,
            trust,
            ledger,
            _settings(npm_registry, pypi_index, locked.ecosystems),
            as_of=when,
            options=FetchOptions(
                concurrency=concurrency,
                max_age=max_age,
                timeout=timeout,
                offline=offline,
                progress=progress,
            ),
        )
    if fmt == "json":
        sys.stdout.write(json_format.render(report))
    else:
        sys.stdout.write(text.render(report, verbose=verbose, color=sys.stdout.isatty()))
    raise typer.Exit(report.exit_code)


@app.command()
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

    _check_format(fmt)
    eco, name, _ = parse_package_ref(package)
    when = parse_time(as_of) if as_of else None
    with _ledger(database) as ledger:
        hist, observations = package_history(
            eco, name, ledger, _settings(npm_registry, pypi_index, [eco])
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
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
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


@app.command()
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
    path = _trust_path(trust_file)
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


@app.command()
def trust(
    package: Annotated[str, typer.Argument(help="ECO:NAME, e.g. npm:event-stream")],
    custodian: Annotated[
        str,
        typer.Option(
            "--custodian",
            "-c",
            help="Identity to trust: npm:user/NAME, pypi:user/NAME, pypi:org/NAME, "
            "github:OWNER/REPO (globs allowed).",
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
            f"--custodian must look like npm:user/NAME or github:OWNER/REPO: {custodian!r}"
        )
    path = _trust_path(trust_file)
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


@app.command()
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
    from custody.demo import run_demo

    raise typer.Exit(run_demo(keep=keep, console=Console(highlight=False)))


def version_callback(value: bool) -> None:
    if value:
        print(f"custody {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Show the version."
        ),
    ] = None,
) -> None:
    pass


def main() -> None:
    try:
        code = app(standalone_mode=False)  # returns the exit code of typer.Exit
    except CustodyError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(2)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise
    sys.exit(code if isinstance(code, int) else 0)
