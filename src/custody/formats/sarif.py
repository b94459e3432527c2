"""``--format sarif``: SARIF 2.1.0 for code scanning (one run, one result per finding).

Results:

- a held or blocked release gives one result per finding: ``error`` for a blocked release and
  for findings of severity ``medium`` or more, ``warning`` for ``low``, ``note`` for ``info``;
- an allowed release gives a ``warning`` per finding of severity ``low`` or more (what the text
  report calls "allowed with notes"); its ``info`` findings are left out;
- a release approved in the trust file keeps its results, with an external, accepted
  suppression naming who approved it.

Each result points at the lockfile line that locks the release (the path relative to the
repository root when the lockfile is inside it; ``REV:path`` locations from ``custody diff``
point at ``path``), and carries ``partialFingerprints`` stable per (rule, package, version), so
the same finding on the same release stays one alert across runs.

``helpUri`` links to docs/rules.md when the documentation's address is known: the
``CUSTODY_DOCS_URL`` environment variable (the URL of the ``docs`` folder), else the package's
``Documentation`` project URL. Without either, the rule's ``help`` text names the document.
"""

from __future__ import annotations

import hashlib
import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from custody import __version__
from custody.model import Action, Decision, Finding, Severity, SourceLocation
from custody.report import Report

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
FINGERPRINT = "custodyRelease/v1"

RULES: dict[str, str] = {
    "custody.new-publisher": "The release was published by an identity outside the trusted set.",
    "custody.new-maintainer": "A maintainer or owner appeared since the trusted release.",
    "custody.provenance-downgrade": (
        "The trusted release carried provenance or trusted publishing and this one does not."
    ),
    "custody.provenance-source-changed": (
        "Both releases carry provenance, from different source repositories or workflows."
    ),
    "custody.repository-changed": "The declared source repository changed.",
    "custody.unknown-publisher": (
        "The registry does not say who published the release: custody cannot be judged."
    ),
    "custody.publish-burst": "One publisher released many packages within minutes.",
    "release.unpublished": (
        "The locked release is gone from the registry, or the package does not exist there."
    ),
    "release.yanked": "The locked PyPI release was yanked.",
    "release.too-new": "The release is younger than the policy's cooldown.",
    "deps.new-package": "A package entered the dependency tree that the trust file does not know.",
    "deps.added-in-patch": "The release declares a dependency its previous release did not.",
    "deps.removed": "The package is no longer locked.",
    "scripts.install-added": "The release adds an install script.",
    "scripts.install-changed": "The release changes an install script.",
    "content.obfuscated": "The release adds minified, packed, encoded or dynamically run code.",
    "content.not-in-source": "The artifact contains files that its source repository does not.",
    "known.malicious": "A malicious-package record names this release.",
    "known.malicious-package": (
        "A malicious-package record covers this package, but not this older release."
    ),
    "content.unsafe-archive": "An artifact was refused unread (traversal, links, bomb).",
    "content.integrity-mismatch": "A downloaded artifact does not match its published digest.",
    "provenance.invalid": "The release's provenance does not verify.",
    "lockfile.integrity-mismatch": (
        "The lockfile's integrity is not a digest the registry published for the release."
    ),
    "lockfile.source-mismatch": "The lockfile's resolved URL is not the release's tarball.",
}
"""One sentence per rule id, in the words of docs/rules.md."""

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "error",
    Severity.LOW: "warning",
    Severity.INFO: "note",
}


def level(decision: Decision, finding: Finding) -> str | None:
    """The SARIF level of a finding, or None when it is not reported (see the module doc)."""
    if decision.action is Action.BLOCK:
        return "error"
    if decision.action is Action.HOLD:
        return _LEVEL[finding.severity]
    return "warning" if finding.severity.rank >= Severity.LOW.rank else None


def fingerprint(rule: str, decision: Decision) -> str:
    """Stable per (rule, package, version): the same alert across runs and line moves."""
    raw = "\0".join((rule, decision.ecosystem.value, decision.package, decision.version))
    return hashlib.sha256(raw.encode()).hexdigest()


def _anchor(rule: str) -> str:
    """GitHub's anchor for the ``## `rule` `` heading in docs/rules.md."""
    return re.sub(r"[^a-z0-9_ -]", "", rule.lower()).replace(" ", "-")


def docs_url() -> str | None:
    """The URL of the ``docs`` folder, when known (``CUSTODY_DOCS_URL``, else the package's
    ``Documentation`` project URL)."""
    configured = os.environ.get("CUSTODY_DOCS_URL", "").strip()
    if configured:
        return configured.rstrip("/")
    try:
        urls = metadata.metadata("custody").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = str(entry).partition(",")
        if label.strip().lower() == "documentation" and url.strip():
            return url.strip().rstrip("/")
    return None


def _rule(rule: str, docs: str | None) -> dict[str, Any]:
    description = RULES.get(rule, f"Custody rule {rule}.")
    anchor = _anchor(rule)
    out: dict[str, Any] = {
        "id": rule,
        "name": "".join(part.capitalize() for part in re.split(r"[.\-_]", rule)),
        "shortDescription": {"text": description},
        "help": {
            "text": f"{description} See docs/rules.md#{anchor} in the Custody repository.",
        },
        "properties": {"tags": ["security", "supply-chain"]},
    }
    if docs:
        out["helpUri"] = f"{docs}/rules.md#{anchor}"
    return out


def _repository_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def artifact_uri(path: str, cwd: Path | None = None) -> str:
    """A lockfile path as a SARIF ``uri``: relative to the root of the git repository it is in,
    else as given (a ``file:`` URI when absolute). ``REV:path`` locations name ``path``, which
    is from the root already."""
    cwd = cwd or Path.cwd()
    local = Path(path)
    if not local.is_absolute() and not (cwd / local).exists() and ":" in path:
        return quote(path.split(":", 1)[1].lstrip("/"), safe="/")
    full = local if local.is_absolute() else cwd / local
    full = Path(os.path.normpath(full))
    root = _repository_root(full.parent)
    if root is not None and full.is_relative_to(root):
        return quote(full.relative_to(root).as_posix(), safe="/")
    if local.is_absolute():
        return full.as_uri()
    return quote(local.as_posix(), safe="/")


def _location(loc: SourceLocation, cwd: Path | None) -> dict[str, Any]:
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": artifact_uri(loc.path, cwd), "uriBaseId": "%SRCROOT%"}
    }
    if loc.line is not None and loc.line >= 1:
        physical["region"] = {"startLine": loc.line}
    return {"physicalLocation": physical}


def _locations(decision: Decision, report: Report, cwd: Path | None) -> list[dict[str, Any]]:
    if decision.locations:
        return [_location(loc, cwd) for loc in decision.locations[:10]]
    if report.lockfiles:  # no line known: the lockfile itself (the new side of a diff)
        return [_location(SourceLocation(report.lockfiles[-1]), cwd)]
    return []


def _result(
    decision: Decision, finding: Finding, rule_index: int, report: Report, cwd: Path | None
) -> dict[str, Any] | None:
    found_level = level(decision, finding)
    if found_level is None:
        return None
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": found_level,
        "message": {"text": f"{decision.key} ({decision.action.value}): {finding.message}"},
        "locations": _locations(decision, report, cwd),
        "partialFingerprints": {FINGERPRINT: fingerprint(finding.rule, decision)},
        "properties": {
            "ecosystem": decision.ecosystem.value,
            "package": decision.package,
            "version": decision.version,
            "fromVersion": decision.from_version,
            "action": decision.action.value,
            "severity": finding.severity.value,
            "tier": decision.tier,
            "evidence": finding.evidence,
        },
    }
    if decision.approved_by is not None:
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"approved by {decision.approved_by} in the trust file",
            }
        ]
    return result


def sarif_log(report: Report, *, cwd: Path | None = None) -> dict[str, Any]:
    """The SARIF log as a dict (``render`` serialises it)."""
    reported = [(d, f) for d in report.decisions for f in d.findings if level(d, f) is not None]
    rule_ids = list(dict.fromkeys(f.rule for _, f in reported))
    index = {rule: i for i, rule in enumerate(rule_ids)}
    docs = docs_url()
    results = [_result(d, f, index[f.rule], report, cwd) for d, f in reported]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "custody",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_rule(rule, docs) for rule in rule_ids],
                    }
                },
                "automationDetails": {"id": f"custody/{report.command}/"},
                "results": [r for r in results if r is not None],
                "properties": {
                    "command": report.command,
                    "lockfiles": list(report.lockfiles),
                    "warnings": list(report.warnings),
                },
            }
        ],
    }


def render(report: Report) -> str:
    return orjson.dumps(sarif_log(report), option=orjson.OPT_INDENT_2).decode() + "\n"
