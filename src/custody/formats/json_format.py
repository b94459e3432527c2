"""``--format json``: the ``custody/report@1`` document described in docs/json-report.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from custody.model import Action, Decision, Finding
from custody.report import SCHEMA, Report


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "severity": f.severity.value,
        "message": f.message,
        "evidence": f.evidence,
    }


def decision_dict(d: Decision) -> dict[str, Any]:
    return {
        "ecosystem": d.ecosystem.value,
        "package": d.package,
        "version": d.version,
        "from_version": d.from_version,
        "action": d.action.value,
        "tier": d.tier,
        "approved_by": d.approved_by,
        "locations": [{"path": loc.path, "line": loc.line} for loc in d.locations],
        "findings": [finding_dict(f) for f in d.findings],
    }


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "command": report.command,
        "generated_at": _time(report.generated_at),
        "as_of": _time(report.as_of),
        "lockfiles": list(report.lockfiles),
        "trust_file": report.trust_file,
        "summary": {a.value: report.count(a) for a in Action},
        "exit_code": report.exit_code,
        "warnings": list(report.warnings),
        "decisions": [decision_dict(d) for d in report.decisions],
    }


def render(report: Report) -> str:
    return orjson.dumps(report_dict(report), option=orjson.OPT_INDENT_2).decode() + "\n"
