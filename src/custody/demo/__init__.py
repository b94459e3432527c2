"""``custody demo``: the event-stream hand-over replayed on a built-in local registry."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import orjson
from rich.console import Console

from custody.demo.registry import serve
from custody.demo.story import documents, lockfile, tarballs
from custody.model import Ecosystem


def run_demo(*, keep: bool, console: Console) -> int:
    """Returns 0 when the hand-over was held as it should be, 1 otherwise."""
    from custody.engine import FetchOptions, check, init, read_lockfiles
    from custody.formats import text
    from custody.ledger import open_ledger
    from custody.registries.config import resolve_settings
    from custody.trust import load_trust_file

    work = Path(tempfile.mkdtemp(prefix="custody-demo-"))
    lock = work / "package-lock.json"
    trust_path = work / "custody.toml"
    try:
        with (
            serve(documents(), tarballs()) as registry,
            open_ledger(f"sqlite:///{work / 'ledger.sqlite3'}") as ledger,
        ):
            settings = resolve_settings(work, registry, None, {}, ecosystems={Ecosystem.NPM})
            console.print(
                f"[bold]1.[/] A local registry on {registry} replays the event-stream story."
            )
            console.print(
                "[bold]2.[/] wallet-app locks event-stream 3.3.5 (published by dominictarr); "
                "`custody init` records who publishes it:"
            )
            lock.write_bytes(_lock_bytes(lockfile("3.3.5", None), registry))
            init(read_lockfiles([lock]), trust_path, ledger, settings, merge=False)
            for line in trust_path.read_text().splitlines():
                if line.startswith(("[[trusted", "custodian")):
                    console.print(f"    {line}", highlight=False, markup=False)
            console.print(
                "[bold]3.[/] A routine `npm update` moves the lockfile to 3.3.6, a patch release "
                "published by right9ctrl that adds flatmap-stream. `custody check`:"
            )
            lock.write_bytes(_lock_bytes(lockfile("3.3.6", "0.1.1"), registry))
            report = check(
                read_lockfiles([lock]),
                load_trust_file(trust_path),
                ledger,
                settings,
                options=FetchOptions(),
            )
            console.print(
                text.render(report, color=console.is_terminal),
                end="",
                soft_wrap=True,
                markup=False,
                highlight=False,
            )
        held = report.exit_code == 1
        console.print(
            f"[bold]4.[/] custody check exited {report.exit_code}: "
            + (
                "the hand-over is held until a person approves it."
                if held
                else "[red]the hand-over was NOT held: this is a bug.[/]"
            )
        )
        if keep:
            console.print(f"The demo project is in {work}")
        return 0 if held else 1
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _lock_bytes(doc: object, registry: str) -> bytes:
    raw = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    return raw.replace(b"{REGISTRY}", registry.rstrip("/").encode())
