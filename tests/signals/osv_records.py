"""OSV malicious-package records in the real shape (OSV schema 1.5-1.6, as ossf/malicious-packages
and OSV's per-ecosystem all.zip publish them)."""

from __future__ import annotations

from typing import Any


def mal(
    osv_id: str,
    ecosystem: str,
    name: str,
    *,
    versions: list[str] | None = None,
    ranges: list[dict[str, Any]] | None = None,
    published: str = "2018-11-26T12:00:00Z",
    modified: str | None = None,
    withdrawn: str | None = None,
) -> dict[str, Any]:
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name}}
    if versions is not None:
        affected["versions"] = versions
    if ranges is not None:
        affected["ranges"] = ranges
    doc: dict[str, Any] = {
        "modified": modified or published,
        "published": published,
        "schema_version": "1.5.0",
        "id": osv_id,
        "summary": f"Malicious code in {name} ({ecosystem})",
        "details": f"The package {name} was found to contain malicious code.",
        "affected": [affected],
        "credits": [{"name": "Example Finder", "type": "FINDER"}],
        "database_specific": {
            "malicious-packages-origins": [
                {
                    "source": "ghsa-malware",
                    "id": "GHSA-xxxx-xxxx-xxxx",
                    "import_time": "2022-06-20T20:13:53.264452Z",
                    "modified_time": modified or published,
                    "sha256": "0" * 64,
                }
            ]
        },
    }
    if withdrawn:
        doc["withdrawn"] = withdrawn
    return doc


ALL = [{"type": "SEMVER", "events": [{"introduced": "0"}]}]

# The npm advisory for the event-stream incident named exactly one version.
EVENT_STREAM = mal("MAL-2018-0001", "npm", "event-stream", versions=["3.3.6"])
# flatmap-stream was malicious from its first release: every version.
FLATMAP = mal(
    "MAL-2025-20690",
    "npm",
    "flatmap-stream",
    ranges=ALL,
    published="2025-08-14T18:52:04Z",
)
# A PyPI typosquat, every version (real record MAL-2023-1638 trimmed).
TYPOSQUAT = mal(
    "MAL-2023-1638",
    "PyPI",
    "beautiulsoup4",
    ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
    published="2023-02-10T12:45:05Z",
    modified="2023-08-21T20:12:58Z",
)
# A vulnerability database entry, not a malicious-package record.
GHSA = {
    "id": "GHSA-2222-3333-4444",
    "modified": "2024-01-01T00:00:00Z",
    "published": "2024-01-01T00:00:00Z",
    "aliases": ["CVE-2024-0001"],
    "affected": [
        {
            "package": {"ecosystem": "npm", "name": "lodash"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}],
        }
    ],
}
