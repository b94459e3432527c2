"""``--format markdown``: a short pull-request comment.

A one-line verdict, then what changed hands, what was added, why each release is held, the
exact command to approve it, and the releases allowed with notes folded away.

Everything a package controls (names, versions, publishers, finding messages that quote them)
is escaped, so a hostile package cannot put markup, HTML, links or mentions into the comment:
identifiers go into code spans (fenced with more backticks than they contain), free text has
every ASCII punctuation character backslash-escaped (CommonMark renders it literally, and
GitHub's autolinks need an unescaped ``:`` or ``.``), and ``@`` and ``#`` get a word joiner
after them so GitHub links no user, team or issue. Shell commands quote the release.

The first line is an HTML comment, ``<!-- custody-report verdict=held -->`` (``blocked``,
``held``, ``allowed`` or ``empty``): integrations find and update their comment by it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence

from custody.model import Action, Decision, Finding, Severity
from custody.report import Report

MARKER = "<!-- custody-report"
MAX_ROWS = 25  # releases per section; a comment stays readable (and under GitHub's size limit)
MAX_MESSAGE = 160  # characters of a finding message in a summary table cell

NEW_PACKAGE = "deps.new-package"
REMOVED = "deps.removed"
ADDITIONS = ("deps.added-in-patch", "scripts.install-added", "scripts.install-changed")
NOT_A_HAND_OVER = frozenset({"custody.unknown-publisher"})

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_WORD_JOINER = "\u2060"
_ICON = {
    "blocked": ":no_entry:",
    "held": ":warning:",
    "allowed": ":white_check_mark:",
    "empty": ":white_check_mark:",
}


# -------------------------------------------------------------------------------- escaping


def _flat(value: object) -> str:
    """One line of text: control characters and line breaks become spaces."""
    return " ".join(_CONTROL.sub(" ", str(value)).split())


def text(value: object) -> str:
    """Package-controlled free text, rendered literally (no markup, HTML, links, mentions)."""
    escaped = _PUNCTUATION.sub(r"\\\1", _flat(value))
    return escaped.replace("@", "@" + _WORD_JOINER).replace("#", "#" + _WORD_JOINER)


def code(value: object, *, table: bool = False) -> str:
    """A package-controlled identifier as an inline code span. In a table cell ``|`` is
    escaped (GFM splits cells before it parses code spans)."""
    flat = _flat(value)
    if not flat:
        return "—"
    if table:
        flat = flat.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def _shorten(value: str, limit: int = MAX_MESSAGE) -> str:
    flat = _flat(value)
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _more(total: int, shown: int) -> list[str]:
    if total <= shown:
        return []
    return [f"… and {total - shown} more (the text or JSON report lists them all)"]


# ------------------------------------------------------------------------------ selections


def _is_removed(d: Decision) -> bool:
    return any(f.rule == REMOVED for f in d.findings)


def _is_added(report: Report, d: Decision) -> bool:
    if any(f.rule == NEW_PACKAGE for f in d.findings):
        return True
    return report.command == "diff" and d.from_version is None and not _is_removed(d)


def _hand_over_findings(d: Decision) -> list[Finding]:
    return [
        f
        for f in d.findings
        if f.rule.startswith("custody.")
        and f.rule not in NOT_A_HAND_OVER
        and f.severity is not Severity.INFO
    ]


def _noted(d: Decision) -> bool:
    return d.action is Action.ALLOW and (
        d.approved_by is not None or any(f.severity.rank >= Severity.LOW.rank for f in d.findings)
    )


def verdict(report: Report) -> str:
    """``blocked``, ``held``, ``allowed`` or ``empty``."""
    if report.count(Action.BLOCK):
        return "blocked"
    if report.count(Action.HOLD):
        return "held"
    return "allowed" if report.decisions else "empty"


# -------------------------------------------------------------------------------- sections


def _headline(report: Report) -> str:
    kind = verdict(report)
    total = len(report.decisions)
    noun = "changed" if report.command == "diff" else "checked"
    blocked, held = report.count(Action.BLOCK), report.count(Action.HOLD)
    if kind == "empty":
        said = "no locked release changed" if report.command == "diff" else "no locked release"
        line = f"Custody: {said}"
    elif kind == "allowed":
        line = f"Custody: no change of hands in {_plural(total, noun + ' release')}"
    else:
        parts = [f"blocked {_plural(blocked, 'release')}"] * bool(blocked)
        parts += [f"held {_plural(held, 'release')} for review"] * bool(held)
        line = f"Custody {' and '.join(parts)} (of {total} {noun})"
    when = f" as of {report.as_of.isoformat().replace('+00:00', 'Z')}" if report.as_of else ""
    return f"{MARKER} verdict={kind} -->\n### {_ICON[kind]} {line}{when}"


def _warnings(report: Report) -> list[str]:
    return [f"> **Warning:** {text(w)}" for w in report.warnings]


def _versions(d: Decision) -> str:
    new = code(d.version, table=True)
    return f"{code(d.from_version, table=True)} → {new}" if d.from_version else new


def _new_custodian(findings: Sequence[Finding]) -> str:
    for rule, key in (
        ("custody.new-publisher", "publisher"),
        ("custody.new-maintainer", "maintainer"),
        ("custody.provenance-source-changed", "source"),
    ):
        for f in findings:
            if f.rule == rule and f.evidence.get(key):
                return code(f.evidence[key], table=True)
    return "—"


def _why(f: Finding) -> str:
    return f"**{f.severity.value}** {code(f.rule, table=True)}: {text(_shorten(f.message))}"


def _changed_hands(flagged: Sequence[Decision]) -> list[str]:
    rows = [(d, found) for d in flagged if (found := _hand_over_findings(d))]
    if not rows:
        return []
    lines = [
        "#### Changed hands",
        "",
        "| Package | Version | New custodian | Why it is held |",
        "|---|---|---|---|",
    ]
    for d, found in rows[:MAX_ROWS]:
        package = code(f"{d.ecosystem.value}:{d.package}", table=True)
        lines.append(f"| {package} | {_versions(d)} | {_new_custodian(found)} | {_why(found[0])} |")
    return ["\n".join(lines + _more(len(rows), MAX_ROWS))]


def _added(report: Report) -> list[str]:
    items = [
        f"- new package {code(d.key)} ({d.action.value})"
        for d in report.decisions
        if _is_added(report, d)
    ]
    items += [
        f"- {code(d.key)} {code(f.rule)}: {text(f.message)}"
        for d in report.decisions
        for f in d.findings
        if f.rule in ADDITIONS
    ]
    if not items:
        return []
    return ["\n".join(["#### Added", "", *items[:MAX_ROWS], *_more(len(items), MAX_ROWS)])]


def _release_heading(d: Decision) -> str:
    parts = [f"**{code(d.key)}** {d.action.value}"]
    if d.from_version:
        parts.append(f"was {code(d.from_version)}")
    if d.tier:
        parts.append(f"tier {code(d.tier)}")
    return ", ".join(parts)


def _findings_table(findings: Iterable[Finding]) -> list[str]:
    lines = ["| Rule | Severity | Message |", "|---|---|---|"]
    lines += [
        f"| {code(f.rule, table=True)} | {f.severity.value} | {text(f.message)} |" for f in findings
    ]
    return lines


def _why_held(flagged: Sequence[Decision]) -> list[str]:
    if not flagged:
        return []
    blocks = ["#### Findings"]
    for d in flagged[:MAX_ROWS]:
        blocks.append("\n".join([_release_heading(d), "", *_findings_table(d.findings)]))
    blocks += _more(len(flagged), MAX_ROWS)
    return ["\n\n".join(blocks)]


def approve_command(d: Decision) -> str:
    """The command that approves ``d`` (the release quoted for the shell)."""
    return f'custody approve {shlex.quote(_flat(d.key))} --reason "..."'


def _approve(report: Report, flagged: Sequence[Decision]) -> list[str]:
    held = [d for d in flagged if d.action is Action.HOLD]
    lines: list[str] = []
    if held:
        where = "`custody.toml`" if report.trust_file else "`custody.toml` (`custody init`)"
        lines += [
            "#### Approve after review",
            "",
            f"Once a person has reviewed a held release, approve it in {where}:",
            "",
            "```sh",
            *(approve_command(d) for d in held[:MAX_ROWS]),
            "```",
        ]
    if any(d.action is Action.BLOCK for d in flagged):
        lines += [""] * bool(lines)
        lines.append("Blocked releases are known bad and cannot be approved: move off them.")
    return ["\n".join(lines)] if lines else []


def _allowed_with_notes(report: Report) -> list[str]:
    noted = [d for d in report.decisions if _noted(d)]
    if not noted:
        return []
    items = []
    for d in noted[:MAX_ROWS]:
        approved = f" (approved by {code(d.approved_by)})" if d.approved_by else ""
        notes = "; ".join(
            f"{code(f.rule)} ({f.severity.value}): {text(f.message)}"
            for f in d.findings
            if f.severity.rank >= Severity.LOW.rank
        )
        items.append(f"- {code(d.key)}{approved}{': ' + notes if notes else ''}")
    summary = f"{_plural(len(noted), 'release')} allowed with notes"
    body = [*items, *_more(len(noted), MAX_ROWS)]
    return ["\n".join([f"<details><summary>{summary}</summary>", "", *body, "", "</details>"])]


def _removed(report: Report) -> list[str]:
    gone = [d for d in report.decisions if _is_removed(d)]
    if not gone:
        return []
    shown = ", ".join(code(d.key) for d in gone[:MAX_ROWS])
    more = f" and {len(gone) - MAX_ROWS} more" if len(gone) > MAX_ROWS else ""
    return [f"**Removed:** {shown}{more}"]


def render(report: Report) -> str:
    flagged = [d for d in report.decisions if d.action is not Action.ALLOW]
    sections = [
        _headline(report),
        *_warnings(report),
        *_changed_hands(flagged),
        *_added(report),
        *_why_held(flagged),
        *_approve(report, flagged),
        *_allowed_with_notes(report),
        *_removed(report),
    ]
    return "\n\n".join(sections) + "\n"
