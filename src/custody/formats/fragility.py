"""``custody fragile`` as text, JSON (schema ``custody/fragile@1``) and Markdown. HTML is in
formats/html.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from custody.fragility import Assessment, FragileReport

SCHEMA = "custody/fragile@1"


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


def assessment_dict(a: Assessment, position: int) -> dict[str, Any]:
    blast = a.blast
    return {
        "rank": position,
        "ecosystem": a.ecosystem.value,
        "package": a.name,
        "locked": list(a.locked),
        "latest": a.latest,
        "score": a.score,
        "criticality": a.criticality,
        "criticality_basis": a.criticality_basis,
        "popularity_known": a.popularity_known,
        "fragility": a.fragility,
        "tier": a.tier,
        "factors": [{"rule": f.rule, "points": f.points, "reason": f.reason} for f in a.factors],
        "maintainers": list(a.maintainers),
        "last_release": _iso(a.last_release),
        "help": [{"kind": kind, "url": url} for kind, url in a.help],
        "blast": None
        if blast is None
        else {
            "fan_in": blast.fan_in,
            "lockfiles": blast.lockfiles,
            "direct": blast.direct,
            "depth": blast.depth,
            "weekly_downloads": blast.weekly_downloads,
            "dependents": blast.dependents,
        },
    }


def report_dict(report: FragileReport) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "generated_at": _iso(report.generated_at),
        "as_of": _iso(report.as_of),
        "lockfiles": list(report.lockfiles),
        "notes": list(report.notes),
        "packages": [assessment_dict(a, i) for i, a in enumerate(report.assessments, 1)],
    }


def render_json(report: FragileReport) -> str:
    return orjson.dumps(report_dict(report), option=orjson.OPT_INDENT_2).decode() + "\n"


def _label(a: Assessment) -> str:
    version = f"@{','.join(a.locked)}" if a.locked else ""
    return f"{a.package_key}{version}"


def render_text(report: FragileReport, *, top: int | None = 20) -> str:
    shown = report.assessments[:top] if top else report.assessments
    total = len(report.assessments)
    lines = [
        f"Fragility radar: {total} package(s)"
        + (f", the top {len(shown)} shown" if len(shown) < total else "")
        + "; most critical and fragile first (score = criticality x fragility / 100)"
    ]
    lines += [f"note: {n}" for n in report.notes]
    lines.append("")
    for i, a in enumerate(shown, 1):
        lines.append(
            f"{i:>3}. {_label(a)}  score {a.score}  (critical {a.criticality}, "
            f"fragile {a.fragility}, tier {a.tier})"
        )
        lines.append(f"     critical: {a.criticality_basis}")
        for f in a.factors:
            lines.append(f"     +{f.points:<3} {f.reason}")
        for kind, url in a.help:
            lines.append(f"     help ({kind}): {url}")
    if not shown:
        lines.append("nothing to rank")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: FragileReport, *, top: int | None = 20) -> str:
    shown = report.assessments[:top] if top else report.assessments
    out = [
        "## Fragility radar",
        "",
        f"{len(report.assessments)} package(s), most critical and fragile first. "
        "Score = criticality × fragility / 100 (see docs/fragility.md).",
        "",
    ]
    out += [f"> **Note:** {_cell(n)}" for n in report.notes]
    if report.notes:
        out.append("")
    out += [
        "| # | package | score | critical | fragile | why | where to help |",
        "|---:|---|---:|---:|---:|---|---|",
    ]
    for i, a in enumerate(shown, 1):
        why = "<br>".join(f"+{f.points} {_cell(f.reason)}" for f in a.factors) or "–"
        help_ = "<br>".join(f"[{kind}]({url})" for kind, url in a.help) or "–"
        out.append(
            f"| {i} | `{_label(a)}` | {a.score} | {a.criticality} | {a.fragility} | {why} | "
            f"{help_} |"
        )
    return "\n".join(out) + "\n"
