"""``custody db``: the ledger's offline databases (``custody db update --from ...``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from custody.cli_options import DatabaseOpt
from custody.console import err as _err
from custody.console import escape

db_app = typer.Typer(
    name="db",
    help=(
        "Offline databases in the ledger: known malicious packages (OSV MAL- records).\n\n"
        "Example: custody db update --from npm-all.zip"
    ),
    no_args_is_help=True,
    add_completion=False,
)


@db_app.command("update")
def update(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="A zip of OSV JSON records (OSV's per-ecosystem all.zip), a folder of *.json "
            "(searched recursively, e.g. a checkout of ossf/malicious-packages), one .json "
            "record, or an http(s) URL of any of these.",
            show_default=False,
        ),
    ],
    database: DatabaseOpt = None,
) -> None:
    """Import OSV malicious-package records (MAL- ids) for npm and PyPI into the ledger.

    Then `custody check` blocks every locked release a record names (known.malicious, exit 1).

    Each record is validated. Ordinary vulnerabilities and other ecosystems are skipped.

    A newer copy already in the ledger is kept; withdrawn records are removed.

    Examples:

      custody db update --from ./malicious-packages/osv/malicious

      custody db update --from npm-all.zip

      custody db update --from https://mirror.example/osv/npm/all.zip
    """
    from custody.ledger import open_ledger
    from custody.osv_import import import_records

    with open_ledger(database) as ledger:
        report = import_records(ledger, source, datetime.now(UTC))
    _err.print(
        f"read {report.files} files from {escape(str(source))}: {report.records} "
        "malicious-package records "
        f"for npm/PyPI ({report.packages} packages); stored {report.stored}, kept "
        f"{report.kept} newer copies, removed {report.withdrawn} withdrawn; skipped "
        f"{report.not_malicious} non-MAL records and {report.other_ecosystems} of other "
        f"ecosystems; {report.invalid} invalid. The ledger now holds {report.total} records."
    )
    for line in report.errors:
        _err.print(f"[yellow]invalid:[/] {escape(line)}")
    if report.invalid > len(report.errors):
        _err.print(f"... and {report.invalid - len(report.errors)} more invalid files")
    if report.files and report.records == 0 and report.invalid == report.files:
        raise typer.Exit(2)
