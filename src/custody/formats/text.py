"""``--format text``: what a person reads in a terminal or a CI log."""

from __future__ import annotations

import io

from rich.console import Console
from rich.markup import escape

from custody.model import Action, Decision, Severity
from custody.report import Report

_STYLE = {Action.ALLOW: "green", Action.HOLD: "yellow", Action.BLOCK: "bold red"}
_SEV_STYLE = {
    Severity.INFO: "dim",
    Severity.LOW: "cyan",
    Severity.MEDIUM: "yellow",
    Severity.HIGH: "red",
    Severity.CRITICAL: "bold red",
}


def _decision(console: Console, d: Decision, show_all_findings: bool) -> None:
    arrow = f" (against {d.from_version})" if d.from_version else ""
    approved = f" [green]approved by {escape(d.approved_by)}[/]" if d.approved_by else ""
    console.print(
        f"[{_STYLE[d.action]}]{d.action.value.upper():5}[/] {escape(d.key)}{escape(arrow)}"
        f" [dim]tier {d.tier}[/]{approved}"
    )
    for f in d.findings:
        if not show_all_findings and f.severity is Severity.INFO:
            continue
        style = _SEV_STYLE[f.severity]
        message = escape(f.message)
        line = f"      [{style}]{f.severity.value:8}[/] {f.rule}: {message}"
        console.print(line, highlight=False)
    if d.locations:
        where = ", ".join(
            f"{loc.path}:{loc.line}" if loc.line else loc.path for loc in d.locations[:3]
        )
        console.print(f"      [dim]locked in {escape(where)}[/]", highlight=False)
    if d.action is Action.HOLD and any(f.rule.startswith("lockfile.") for f in d.findings):
        console.print(
            "      [dim]regenerate the lockfile entry with the package manager (an approval "
            "does not cover it)[/]",
            highlight=False,
        )
    elif d.action is Action.HOLD:
        console.print(
            f'      [dim]approve after review: custody approve {escape(d.key)} --reason "..."[/]',
            highlight=False,
        )


def render(report: Report, *, verbose: bool = False, color: bool = False) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer, force_terminal=color, width=120, soft_wrap=True, no_color=not color
    )
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    flagged = [d for d in report.decisions if d.action is not Action.ALLOW]
    noted = [
        d
        for d in report.decisions
        if d.action is Action.ALLOW
        and any(f.severity.rank >= Severity.LOW.rank for f in d.findings)
    ]
    for d in flagged:
        _decision(console, d, verbose)
    if noted:
        console.print(f"[dim]{len(noted)} allowed with notes:[/]")
        for d in noted:
            _decision(console, d, verbose)
    if verbose:
        for d in report.decisions:
            if d.action is Action.ALLOW and d not in noted:
                _decision(console, d, verbose)
    when = f" as of {report.as_of.isoformat().replace('+00:00', 'Z')}" if report.as_of else ""
    console.print(
        f"{len(report.decisions)} releases checked{when}: "
        f"[green]{report.count(Action.ALLOW)} allowed[/], "
        f"[yellow]{report.count(Action.HOLD)} held[/], "
        f"[red]{report.count(Action.BLOCK)} blocked[/]",
        highlight=False,
    )
    return buffer.getvalue()
