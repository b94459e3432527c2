"""``--format markdown``: snapshots of the pull-request comment, and hostile package text."""

from __future__ import annotations

import html
import os
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from custody.formats import FORMATS
from custody.formats.markdown import approve_command, code, render, text
from custody.model import Action, Decision, Ecosystem, Finding, Severity, SourceLocation
from custody.report import Report

SNAPSHOTS = Path(__file__).parent / "snapshots"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
NPM, PYPI = Ecosystem.NPM, Ecosystem.PYPI


def finding(rule: str, severity: Severity, message: str, **evidence: object) -> Finding:
    return Finding(rule, severity, message, dict(evidence))


def decision(
    name: str,
    version: str,
    from_version: str | None,
    action: Action,
    *findings: Finding,
    line: int | None = None,
    eco: Ecosystem = NPM,
    approved_by: str | None = None,
) -> Decision:
    where = (SourceLocation("package-lock.json", line),) if line else ()
    return Decision(
        eco, name, version, from_version, action, findings, "normal", where, approved_by
    )


HANDOVER = Report(
    "diff",
    (
        decision(
            "diff-kit",
            "1.0.1",
            "1.0.0",
            Action.HOLD,
            finding(
                "custody.new-publisher",
                Severity.HIGH,
                "1.0.1 was published by npm:user/mallory, who is not a trusted custodian "
                "(first listed as a maintainer with this release)",
                publisher="npm:user/mallory",
            ),
            finding(
                "custody.new-maintainer",
                Severity.MEDIUM,
                "npm:user/mallory became a maintainer with 1.0.1",
                maintainer="npm:user/mallory",
            ),
            finding(
                "deps.added-in-patch",
                Severity.MEDIUM,
                "1.0.1 adds the dependency flatmap-stream@^0.1.0 in a patch release",
            ),
            line=12,
        ),
        decision(
            "flatmap-stream",
            "0.1.1",
            None,
            Action.HOLD,
            finding(
                "deps.new-package",
                Severity.MEDIUM,
                "npm:flatmap-stream is not in the trust file: review it",
            ),
            line=20,
        ),
        decision(
            "left-pad",
            "1.3.1",
            "1.3.0",
            Action.ALLOW,
            finding(
                "custody.new-publisher",
                Severity.LOW,
                "1.3.1 was published by npm:user/bob, a maintainer for 400 days",
                publisher="npm:user/bob",
            ),
        ),
        decision(
            "requests",
            "2.32.0",
            "2.31.0",
            Action.ALLOW,
            finding("custody.new-maintainer", Severity.MEDIUM, "pypi:user/carol is a new owner"),
            eco=PYPI,
            approved_by="reviewer@example.com",
        ),
        decision("ms", "2.1.3", "2.1.2", Action.ALLOW),
        decision(
            "old-thing",
            "1.0.0",
            None,
            Action.ALLOW,
            finding("deps.removed", Severity.INFO, "npm:old-thing 1.0.0 is no longer locked"),
        ),
    ),
    NOW,
    lockfiles=("origin/main:package-lock.json", "package-lock.json"),
    trust_file=None,
)

BLOCKED = Report(
    "check",
    (
        decision(
            "evil-kit",
            "6.6.6",
            None,
            Action.BLOCK,
            finding("known.malicious", Severity.CRITICAL, "MAL-2026-1 lists npm:evil-kit@6.6.6"),
            line=30,
        ),
        decision(
            "ok-kit",
            "1.0.0",
            "0.9.0",
            Action.HOLD,
            finding(
                "custody.provenance-downgrade",
                Severity.HIGH,
                "0.9.0 carried provenance and 1.0.0 does not",
            ),
        ),
    ),
    NOW,
    as_of=datetime(2024, 1, 1, tzinfo=UTC),
    lockfiles=("package-lock.json",),
    trust_file="custody.toml",
    warnings=("2 lockfile entries do not come from a registry: app (git), tool (url)",),
)

ALLOWED = Report(
    "diff",
    (decision("ms", "2.1.3", "2.1.2", Action.ALLOW),),
    NOW,
    lockfiles=("HEAD:package-lock.json", "package-lock.json"),
)
EMPTY = Report("diff", (), NOW)


def check_snapshot(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("CUSTODY_UPDATE_SNAPSHOTS") == "1":
        path.write_text(actual, encoding="utf-8")
    if not path.exists():
        pytest.fail(f"{path} is missing: run with CUSTODY_UPDATE_SNAPSHOTS=1 and review it")
    assert actual == path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "report"),
    [
        ("handover.md", HANDOVER),
        ("blocked.md", BLOCKED),
        ("allowed.md", ALLOWED),
        ("empty.md", EMPTY),
    ],
)
def test_snapshot(name: str, report: Report) -> None:
    check_snapshot(name, render(report))


def test_registered_as_a_format() -> None:
    assert FORMATS["markdown"] is render


def test_verdict_marker_is_the_first_line() -> None:
    assert render(HANDOVER).splitlines()[0] == "<!-- custody-report verdict=held -->"
    assert render(BLOCKED).splitlines()[0] == "<!-- custody-report verdict=blocked -->"
    assert render(ALLOWED).splitlines()[0] == "<!-- custody-report verdict=allowed -->"
    assert render(EMPTY).splitlines()[0] == "<!-- custody-report verdict=empty -->"


HOSTILE = "evil](https://attacker.example/x)<img src=x onerror=alert(1)>@everyone #1|`x`\n# h"
HOSTILE_MESSAGE = (
    "published by <script>alert(1)</script> [click](https://attacker.example) "
    "![i](https://attacker.example/i.png) <https://attacker.example> www.attacker.example "
    "**bold** @org/team #42 | cell\n\n# heading"
)


def _hostile_report() -> Report:
    held = Decision(
        NPM,
        HOSTILE,
        "1.0.1<b>",
        "1.0.0",
        Action.HOLD,
        (
            Finding(
                "custody.new-publisher",
                Severity.HIGH,
                HOSTILE_MESSAGE,
                {"publisher": "npm:user/@everyone](https://attacker.example)"},
            ),
            Finding("deps.added-in-patch", Severity.MEDIUM, HOSTILE_MESSAGE),
        ),
        "normal",
    )
    noted = Decision(
        NPM,
        HOSTILE,
        "2.0.0",
        "1.0.0",
        Action.ALLOW,
        (Finding("custody.new-publisher", Severity.LOW, HOSTILE_MESSAGE),),
        "normal",
        approved_by="<b>@everyone</b>",
    )
    return Report("diff", (held, noted), NOW, warnings=(HOSTILE_MESSAGE,))


def _html(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)


def test_hostile_package_text_cannot_inject_markup_links_or_mentions() -> None:
    out = render(_hostile_report())
    rendered = _html(out)
    assert "<img" not in rendered and "<script" not in rendered and "<b>" not in rendered
    assert "<a " not in rendered  # no link of any kind
    assert "<h1" not in rendered and "<strong>bold" not in rendered
    outside_code = re.sub(r"<code[^>]*>.*?</code>", "", rendered, flags=re.S)
    assert "@everyone" not in outside_code and "@org" not in outside_code
    assert "#42" not in outside_code and "#1" not in outside_code
    # GFM autolinks need a literal "://" or "www." in the Markdown: outside code, none is left.
    source = re.sub(r"```sh\n.*?```", "", out, flags=re.S)
    source = re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", source)
    assert "://" not in source and "www." not in source
    # The only HTML in the comment is Custody's own: the marker and the <details> wrapper.
    tags = set(re.findall(r"(?<!\\)<(/?[a-z]+)", source))
    assert tags <= {"details", "/details", "summary", "/summary"}


def test_hostile_name_stays_whole_inside_its_table_cell() -> None:
    rendered = _html(render(_hostile_report()))
    flat = " ".join(HOSTILE.split())
    cells = re.findall(r"<td>(.*?)</td>", rendered, flags=re.S)
    name_cells = [c for c in cells if "evil]" in c]
    assert name_cells, rendered
    for cell in name_cells:
        assert cell.startswith("<code>") and cell.endswith("</code>")
        inner = html.unescape(cell[len("<code>") : -len("</code>")]).replace("\\|", "|")
        assert inner == f"npm:{flat}"


def test_approve_command_is_one_shell_word_per_argument() -> None:
    held = _hostile_report().decisions[0]
    line = approve_command(held)
    assert shlex.split(line) == [
        "custody",
        "approve",
        f"npm:{' '.join(HOSTILE.split())}@1.0.1<b>",
        "--reason",
        "...",
    ]
    assert approve_command(HANDOVER.decisions[0]) == (
        'custody approve npm:diff-kit@1.0.1 --reason "..."'
    )


def test_escaping_helpers() -> None:
    assert code("a`b") == "``a`b``"
    assert code("`x`") == "`` `x` ``"
    assert code("a|b", table=True) == "`a\\|b`"
    assert code("") == "—"
    assert text("a_b *c* [d](e)") == "a\\_b \\*c\\* \\[d\\]\\(e\\)"
    assert text("@x #1") == "\\@\u2060x \\#\u20601"
    assert text("line\nbreak\x00") == "line break"
