"""The recorded-inventory commands: ``where`` (which projects lock a package) and
``rollback`` (pin them back to a trusted release)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from custody.cli_common import check_format, opened_ledger, registry_settings
from custody.cli_options import (
    DatabaseOpt,
    FormatOpt,
    NpmRegistryOpt,
    PypiIndexOpt,
)
from custody.console import emit, escape
from custody.errors import InputError
from custody.model import parse_package_ref


def where(
    package: Annotated[
        str,
        typer.Argument(
            help="ECO:NAME[@RANGE]: npm:event-stream, npm:event-stream@3.3.6, "
            "'npm:event-stream@>=3.3.6 <4', 'pypi:requests@>=2.31,<2.33'"
        ),
    ],
    fmt: FormatOpt = "text",
    database: DatabaseOpt = None,
) -> None:
    """List every recorded project, lockfile and dependency path that includes a package.

    Projects are recorded by `custody check --record`. RANGE is an npm range (node-semver) or
    a PEP 440 specifier; a bare version means exactly that one. Exits 0 when found, 1 when no
    recorded project includes it.

    Examples: custody where npm:event-stream@3.3.6; custody where 'pypi:urllib3@<2'
    """
    from custody.inventory import path_text
    from custody.inventory import where as find

    check_format(fmt)
    eco, name, spec = parse_package_ref(package)
    with opened_ledger(database) as ledger:
        entries = find(ledger, eco, name, spec)
    label = f"{eco.value}:{name}" + (f"@{spec}" if spec else "")
    if fmt == "json":
        doc = {
            "schema": "custody/where@1",
            "package": f"{eco.value}:{name}",
            "range": spec,
            "entries": [
                {
                    "project": e.project,
                    "lockfile": e.lockfile,
                    "version": e.version,
                    "direct": e.direct,
                    "dev": e.dev,
                    "optional": e.optional,
                    "paths": [list(p) for p in e.paths],
                    "scanned_at": e.scanned_at.isoformat(),
                }
                for e in entries
            ],
        }
        emit(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        raise typer.Exit(0 if entries else 1)
    from rich.console import Console

    out = Console(highlight=False, soft_wrap=True)
    if not entries:
        out.print(f"{escape(label)}: in no recorded project (record with `custody check --record`)")
        raise typer.Exit(1)
    projects = {e.project for e in entries}
    lockfiles = {e.lockfile for e in entries}
    out.print(
        f"{escape(label)}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} in "
        f"{len(lockfiles)} lockfile(s) of {len(projects)} project(s)"
    )
    for e in entries:
        kind = "direct" if e.direct else "transitive"
        extra = "".join(f", {k}" for k, v in (("dev", e.dev), ("optional", e.optional)) if v)
        out.print(f"  {escape(e.project)}  {escape(e.lockfile)}")
        out.print(f"    {escape(e.name)}@{escape(e.version)} ({kind}{extra})")
        for p in e.paths:
            out.print(f"      via {escape(path_text(p))}")


def rollback(
    package: Annotated[str, typer.Argument(help="ECO:NAME, e.g. npm:event-stream")],
    write: Annotated[
        bool, typer.Option("--write", help="Apply the changes (default: only print them).")
    ] = False,
    relock: Annotated[
        bool,
        typer.Option(
            "--relock",
            help="With --write, also update the lockfile (`npm install --package-lock-only`, "
            "`uv lock`) and re-read it to confirm.",
        ),
    ] = False,
    to_version: Annotated[
        str | None,
        typer.Option("--to", help="Pin this version instead of the last trusted release."),
    ] = None,
    trust_file: Annotated[
        Path | None,
        typer.Option(
            "--trust-file",
            help="Judge every project by this trust file. Default: each project's own "
            "custody.toml (from its lockfile's folder up).",
        ),
    ] = None,
    fmt: FormatOpt = "text",
    npm_registry: NpmRegistryOpt = None,
    pypi_index: PypiIndexOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Pin every recorded project back to the last release by a trusted custodian.

    For each lockfile (recorded by `custody check --record`) that locks an untrusted release:
    npm gets an `overrides` entry in package.json (and an exact direct dependency); a pinned
    requirements.txt gets the trusted version with its hashes; uv gets an
    override-dependencies entry in pyproject.toml. Prints the change; --write applies it;
    --relock also updates the lockfile and re-reads it to confirm. Exits 1 when a project
    could not be rolled back (or, after --relock, is not confirmed).

    Examples: custody rollback npm:event-stream; custody rollback npm:event-stream --write
    --relock
    """
    from custody.engine import package_history
    from custody.inventory import lockfile_key, normalise_name, record_locked
    from custody.lockfiles import read_lockfile
    from custody.rollback import apply, plan

    check_format(fmt)
    if relock and not write:
        raise InputError("--relock needs --write")
    eco, name, version = parse_package_ref(package)
    if version:
        raise InputError(f"rollback takes ECO:NAME without a version: {package!r}")
    name = normalise_name(eco, name)
    from rich.console import Console

    out = Console(highlight=False, soft_wrap=True)
    with opened_ledger(database) as ledger:
        entries = ledger.where(eco, name)
        if not entries:
            raise InputError(
                f"{eco.value}:{name} is in no recorded project: record projects with "
                "`custody check --record` first"
            )
        history, _ = package_history(
            eco, name, ledger, registry_settings(npm_registry, pypi_index, [eco])
        )
        changes, notes = plan(
            eco, name, entries, history, trust_file=trust_file, to_version=to_version
        )
        outcomes = [apply(c, eco, name, relock=relock) for c in changes] if write else []
        for o in outcomes:
            if o.confirmed:
                lock = Path(o.change.lockfile)
                record_locked(
                    ledger,
                    [lockfile_key(lock)],
                    read_lockfile(lock),
                    project=o.change.project,
                    scanned_at=datetime.now(UTC),
                )
    failed = [c for c in changes if c.problem] + [
        o.change for o in outcomes if relock and o.confirmed is not True and not o.change.problem
    ]
    if fmt == "json":
        by_lock = {o.change.lockfile: o for o in outcomes}
        doc = {
            "schema": "custody/rollback@1",
            "package": f"{eco.value}:{name}",
            "written": write,
            "notes": notes,
            "changes": [
                {
                    "project": c.project,
                    "lockfile": c.lockfile,
                    "locked": list(c.locked),
                    "target": c.target.version if c.target else None,
                    "why": c.target.why if c.target else None,
                    "file": c.edit_path,
                    "diff": c.diff(),
                    "relock": list(c.relock) if c.relock else None,
                    "install": c.install,
                    "problem": c.problem,
                    "confirmed": by_lock[c.lockfile].confirmed if c.lockfile in by_lock else None,
                    "message": by_lock[c.lockfile].message if c.lockfile in by_lock else None,
                }
                for c in changes
            ],
        }
        emit(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        raise typer.Exit(1 if failed else 0)
    for note in notes:
        out.print(escape(note))
    if not changes:
        out.print(
            f"{escape(f'{eco.value}:{name}')}: every recorded project already locks a "
            "trusted release"
        )
    by_lock = {o.change.lockfile: o for o in outcomes}
    for c in changes:
        out.print(
            f"[bold]{escape(c.project)}[/]: {escape(c.lockfile)} locks "
            f"{escape(name)}@{escape(', '.join(c.locked))}"
        )
        if c.problem:
            out.print(f"  [red]cannot roll back:[/] {escape(c.problem)}")
            continue
        assert c.target is not None
        out.print(f"  back to {escape(c.target.version)}: {escape(c.target.why)}")
        sys.stdout.flush()
        out.print(escape(c.diff()), end="")
        outcome = by_lock.get(c.lockfile)
        if outcome is not None:
            out.print(f"  {escape(outcome.message)}")
        elif c.relock:
            out.print(
                f"  apply with --write, then: cd {escape(str(Path(c.lockfile).parent))} && "
                f"{escape(' '.join(c.relock))}  (or --write --relock)"
            )
        else:
            out.print(f"  apply with --write, then: {escape(c.install or '')}")
    raise typer.Exit(1 if failed else 0)
