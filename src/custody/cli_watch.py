"""``custody watch``: poll the registries for the inventory's packages, report custody
changes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from custody.cli_common import opened_ledger, registry_settings
from custody.cli_options import (
    DatabaseOpt,
    NpmRegistryOpt,
    PypiIndexOpt,
    TimeoutOpt,
)
from custody.console import emit, err, escape
from custody.errors import InputError


def watch(
    once: Annotated[
        bool, typer.Option("--once", help="Poll once and exit (for tests and cron).")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=1.0, help="Seconds between polls.")
    ] = 3600.0,
    webhook: Annotated[
        str | None,
        typer.Option("--webhook", help="Also POST each event as JSON to this URL (3 tries)."),
    ] = None,
    trust_file: Annotated[
        Path | None,
        typer.Option(
            "--trust-file",
            help="Judge by this trust file. Default: each project's own custody.toml.",
        ),
    ] = None,
    npm_registry: NpmRegistryOpt = None,
    pypi_index: PypiIndexOpt = None,
    database: DatabaseOpt = None,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Poll the registries for every package in the inventory; report custody changes.

    Each event is one JSON line on stdout (schema custody/watch-event@1): a new release with a
    custody finding (new publisher, new maintainer, provenance lost, ...), judged like `custody
    check` against the projects' trust files, or an owner added or removed. Each is reported
    once. With --once: exits 1 when something was reported, 0 when nothing, 3 when a registry
    could not be reached.

    Examples: custody watch --once; custody watch --interval 900 --webhook
    http://127.0.0.1:9000/hook
    """
    import time

    from custody.engine import FetchOptions
    from custody.errors import RegistryUnavailable
    from custody.watch import Webhook, poll

    hook = Webhook(webhook) if webhook else None
    reported = 0
    with opened_ledger(database) as ledger:
        while True:
            ecosystems = {e.ecosystem for e in ledger.inventory()}
            if not ecosystems:
                raise InputError(
                    "the inventory is empty: record projects with `custody check --record`"
                )
            try:
                events = poll(
                    ledger,
                    registry_settings(npm_registry, pypi_index, ecosystems),
                    trust_file=trust_file,
                    options=FetchOptions(timeout=timeout),
                )
            except RegistryUnavailable as exc:
                if once:
                    raise
                err.print(f"[yellow]warning:[/] {escape(str(exc))}; trying again next poll")
                events = []
            for event in events:
                emit(event.to_json() + "\n")
                if hook is not None:
                    hook.send(event, lambda m: err.print(f"[yellow]warning:[/] {escape(m)}"))
            reported += len(events)
            if once:
                break
            time.sleep(interval)
    raise typer.Exit(1 if reported else 0)
