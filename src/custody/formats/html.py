"""``custody fragile --format html``: one self-contained page (inline CSS, JS and SVG; nothing
loaded from anywhere) with a critical x fragile scatter chart, the ranking and each package's
custody timeline (custody.timeline)."""

from __future__ import annotations

import re
from datetime import datetime
from html import escape
from importlib.resources import files
from string import Template

from custody.fragility import Assessment, FragileReport
from custody.timeline import Event

MAX_EVENTS = 40  # per package timeline: the most recent ones
MAX_DETAILED = 100  # packages with a timeline section
_W, _H, _PAD = 640, 420, 48
_CUSTODY_KINDS = ("maintainer-", "owner-", "provenance-", "repository-", "deprecated")


def _template() -> Template:
    text = files("custody.formats").joinpath("templates/fragile.html").read_text("utf-8")
    return Template(text)


def _anchor(a: Assessment) -> str:
    return "pkg-" + re.sub(r"[^a-zA-Z0-9_-]+", "-", a.package_key).strip("-")


def _x(value: int) -> float:
    return _PAD + value / 100 * (_W - 2 * _PAD)


def _y(value: int) -> float:
    return _H - _PAD - value / 100 * (_H - 2 * _PAD)


def chart(assessments: tuple[Assessment, ...]) -> str:
    """The scatter chart as inline SVG: x criticality, y fragility, one dot per package."""
    parts = [
        f'<svg id="fragility-chart" role="img" viewBox="0 0 {_W} {_H}" '
        'xmlns="http://www.w3.org/2000/svg" aria-labelledby="chart-title">',
        '<title id="chart-title">Critical (x) against fragile (y), one dot per package</title>',
        f'<rect class="zone" x="{_x(50):.1f}" y="{_y(100):.1f}" width="{_x(100) - _x(50):.1f}" '
        f'height="{_y(50) - _y(100):.1f}"/>',
    ]
    for tick in range(0, 101, 25):
        parts.append(
            f'<line class="grid" x1="{_x(tick):.1f}" y1="{_y(0):.1f}" x2="{_x(tick):.1f}" '
            f'y2="{_y(100):.1f}"/>'
            f'<line class="grid" x1="{_x(0):.1f}" y1="{_y(tick):.1f}" x2="{_x(100):.1f}" '
            f'y2="{_y(tick):.1f}"/>'
            f'<text x="{_x(tick):.1f}" y="{_y(0) + 16:.1f}" text-anchor="middle">{tick}</text>'
            f'<text x="{_x(0) - 8:.1f}" y="{_y(tick) + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    parts += [
        f'<line class="axis" x1="{_x(0)}" y1="{_y(0)}" x2="{_x(100)}" y2="{_y(0)}"/>',
        f'<line class="axis" x1="{_x(0)}" y1="{_y(0)}" x2="{_x(0)}" y2="{_y(100)}"/>',
        f'<text x="{_x(50)}" y="{_H - 8}" text-anchor="middle">critical to you →</text>',
        f'<text x="14" y="{_y(50)}" text-anchor="middle" transform="rotate(-90 14 {_y(50)})">'
        "fragile →</text>",
    ]
    for a in sorted(assessments, key=lambda a: a.score):
        heat = "hot" if a.score >= 40 else "warm" if a.score >= 20 else ""
        radius = 4 + a.score / 12
        label = f"{a.package_key}: score {a.score}, critical {a.criticality}, fragile {a.fragility}"
        parts.append(
            f'<a href="#{_anchor(a)}"><circle class="point {heat}" data-package='
            f'"{escape(a.package_key)}" cx="{_x(a.criticality):.1f}" cy="{_y(a.fragility):.1f}" '
            f'r="{radius:.1f}"><title>{escape(label)}</title></circle></a>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _links(a: Assessment) -> str:
    return (
        "<br>".join(
            f'<a href="{escape(url)}" rel="noopener noreferrer">{escape(kind)}</a>'
            for kind, url in a.help
        )
        or "–"
    )


def _row(position: int, a: Assessment) -> str:
    factors = "".join(f"<li>+{f.points} {escape(f.reason)}</li>" for f in a.factors)
    locked = f"@{escape(', '.join(a.locked))}" if a.locked else ""
    return (
        f'<tr><td class="num">{position}</td>'
        f'<td><a href="#{_anchor(a)}">{escape(a.package_key)}</a>{locked}</td>'
        f'<td class="num">{a.score}</td>'
        f'<td class="num" title="{escape(a.criticality_basis)}">{a.criticality}</td>'
        f'<td class="num">{a.fragility}</td>'
        f'<td><ul class="factors">{factors}</ul></td><td>{_links(a)}</td></tr>'
    )


def _event(e: Event) -> str:
    stamp = e.at.strftime("%Y-%m-%d") if e.at else "????-??-??"
    custody = " custody" if e.kind.startswith(_CUSTODY_KINDS) else ""
    return f'<li class="{escape(e.kind)}{custody}"><time>{stamp}</time>{escape(e.text)}</li>'


def _details(a: Assessment, events: tuple[Event, ...]) -> str:
    shown = events[-MAX_EVENTS:]
    more = (
        f'<p class="muted">{len(events) - len(shown)} earlier events not shown '
        f"(custody history {escape(a.package_key)}).</p>"
        if len(events) > len(shown)
        else ""
    )
    maintainers = escape(", ".join(a.maintainers) or "unknown")
    items = "\n".join(_event(e) for e in shown) or "<li>no events</li>"
    return (
        f'<section class="pkg" id="{_anchor(a)}"><h3>{escape(a.package_key)}</h3>'
        f'<p class="muted">score {a.score} · critical {a.criticality} '
        f"({escape(a.criticality_basis)}) · fragile {a.fragility} · tier {escape(a.tier)} · "
        f"maintainers: {maintainers} · help: {_links(a)}</p>"
        f"<details><summary>custody timeline ({len(events)} events)</summary>{more}"
        f'<ol class="timeline">{items}</ol></details></section>'
    )


def _when(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def render(report: FragileReport) -> str:
    shown = report.assessments
    summary = (
        f"{len(shown)} package(s) from {len(report.lockfiles)} lockfile(s)"
        + (f", as of {_when(report.as_of)}" if report.as_of else "")
        + "."
    )
    notes = "\n".join(f'<p class="note">{escape(n)}</p>' for n in report.notes)
    rows = "\n".join(_row(i, a) for i, a in enumerate(shown, 1))
    details = "\n".join(
        _details(a, report.timelines.get(a.package_key, ())) for a in shown[:MAX_DETAILED]
    )
    return _template().substitute(
        summary=escape(summary),
        notes=notes,
        chart=chart(shown),
        rows=rows,
        details=details,
        generated=escape(_when(report.generated_at)),
    )
