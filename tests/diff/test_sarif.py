"""``--format sarif``: valid against the official SARIF 2.1.0 schema, with stable fingerprints
and locations in the lockfile.

The schema is not committed: the fixture takes it from a package the npm registry serves
(``@microsoft/jest-sarif``, Microsoft's SARIF SDK, ships the 2.1.0 schema as
``lib/schemas/sarif-2.1.0-rtm.5.json``) with ``npm pack`` into ``.tools/sarif/`` once, and
checks its digest. Without npm or the registry the tests skip, unless ``CI`` is set."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from custody.formats import FORMATS
from custody.formats.sarif import RULES, artifact_uri, fingerprint, render, sarif_log
from custody.model import Action, SourceLocation
from custody.report import Report

from .gitrepo import init_repo
from .test_markdown import BLOCKED, EMPTY, HANDOVER, NOW, _hostile_report

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / ".tools" / "sarif"
SCHEMA_PACKAGE = "@microsoft/jest-sarif@1.0.0-beta.0"
SCHEMA_MEMBER = "package/lib/schemas/sarif-2.1.0-rtm.5.json"
SCHEMA_SHA256 = "2d99159ae54a3eea97f81781cff48780548657c35949f4b7f25e99a2ba4de4f8"


def _unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so the SARIF schema must be obtainable)")
    pytest.skip(message)


def _download_schema(target: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("npm is not on PATH: cannot fetch the SARIF 2.1.0 schema")
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "pack", SCHEMA_PACKAGE, "--pack-destination", str(SCHEMA_DIR), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        _unavailable(f"npm pack {SCHEMA_PACKAGE} failed: {done.stderr.strip()[-500:]}")
    [packed] = json.loads(done.stdout)
    tarball = SCHEMA_DIR / packed["filename"]
    with tarfile.open(tarball) as tar:
        member = tar.extractfile(SCHEMA_MEMBER)
        assert member is not None, f"{SCHEMA_MEMBER} missing from {tarball.name}"
        data = member.read()
    tarball.unlink()
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    target = SCHEMA_DIR / "sarif-2.1.0-rtm.5.json"
    if not target.is_file():
        _download_schema(target)
    data = target.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == SCHEMA_SHA256, f"{target} is not the expected SARIF 2.1.0 schema ({digest})"
    doc: dict[str, Any] = json.loads(data)
    assert doc["$schema"] == "http://json-schema.org/draft-04/schema#"
    return doc


def validate(doc: dict[str, Any], schema: dict[str, Any]) -> None:
    jsonschema.Draft4Validator.check_schema(schema)
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


@pytest.mark.parametrize("report", [HANDOVER, BLOCKED, EMPTY], ids=["held", "blocked", "empty"])
def test_valid_against_the_official_schema(report: Report, schema: dict[str, Any]) -> None:
    validate(json.loads(render(report)), schema)


def test_hostile_text_is_still_valid_sarif(schema: dict[str, Any]) -> None:
    validate(json.loads(render(_hostile_report())), schema)


def test_schema_catches_a_broken_log(schema: dict[str, Any]) -> None:
    doc = json.loads(render(HANDOVER))
    doc["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(AssertionError, match="level"):
        validate(doc, schema)


def _results(report: Report) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = sarif_log(report)["runs"][0]["results"]
    return results


def test_levels_and_which_findings_are_reported() -> None:
    got = {(r["properties"]["package"], r["ruleId"], r["level"]) for r in _results(HANDOVER)}
    assert got == {
        ("diff-kit", "custody.new-publisher", "error"),
        ("diff-kit", "custody.new-maintainer", "error"),
        ("diff-kit", "deps.added-in-patch", "error"),
        ("flatmap-stream", "deps.new-package", "error"),
        ("left-pad", "custody.new-publisher", "warning"),  # allowed with a low note
        ("requests", "custody.new-maintainer", "warning"),  # approved: suppressed
    }  # no result for unchanged "ms" or the info-only removal
    [approved] = [r for r in _results(HANDOVER) if r["properties"]["package"] == "requests"]
    assert approved["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "approved by reviewer@example.com in the trust file",
        }
    ]
    blocked = {r["ruleId"]: r["level"] for r in _results(BLOCKED)}
    assert blocked == {"known.malicious": "error", "custody.provenance-downgrade": "error"}


def test_rules_are_declared_once_with_descriptions() -> None:
    run = sarif_log(HANDOVER)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids))
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    assert rules[ids.index("custody.new-publisher")]["shortDescription"]["text"] == (
        "The release was published by an identity outside the trusted set."
    )
    assert run["tool"]["driver"]["name"] == "custody"
    assert all("helpUri" not in r for r in rules) or os.environ.get("CUSTODY_DOCS_URL")


def test_help_uri_points_at_the_rule_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTODY_DOCS_URL", "https://example.com/custody/blob/v1/docs/")
    rules = sarif_log(HANDOVER)["runs"][0]["tool"]["driver"]["rules"]
    uris = {r["id"]: r["helpUri"] for r in rules}
    assert uris["custody.new-publisher"] == (
        "https://example.com/custody/blob/v1/docs/rules.md#custodynew-publisher"
    )


def test_every_documented_rule_has_a_description() -> None:
    documented = set()
    for line in (REPO / "docs" / "rules.md").read_text().splitlines():
        if line.startswith("## `") and line.endswith("`"):
            documented.add(line[4:-1])
    assert documented, "no rule headings found in docs/rules.md"
    assert documented <= set(RULES), f"add SARIF descriptions for {documented - set(RULES)}"


def test_fingerprints_are_stable_per_rule_package_and_version() -> None:
    held = HANDOVER.decisions[0]
    moved = replace(held, locations=(SourceLocation("package-lock.json", 99),))
    assert fingerprint("custody.new-publisher", held) == fingerprint("custody.new-publisher", moved)
    assert fingerprint("custody.new-publisher", held) != fingerprint(
        "custody.new-publisher", replace(held, version="1.0.2")
    )
    assert fingerprint("custody.new-publisher", held) != fingerprint("custody.new-maintainer", held)
    first = [r["partialFingerprints"] for r in _results(HANDOVER)]
    assert first == [r["partialFingerprints"] for r in _results(HANDOVER)]


def test_locations_are_lockfile_lines_from_the_repository_root(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    web = repo / "web"
    web.mkdir()
    (web / "package-lock.json").write_text("{}")
    assert artifact_uri("package-lock.json", web) == "web/package-lock.json"
    assert artifact_uri(str(web / "package-lock.json"), tmp_path) == "web/package-lock.json"
    assert artifact_uri("origin/main:web/package-lock.json", web) == "web/package-lock.json"
    assert artifact_uri("../package lock.json", web) == "package%20lock.json"
    outside = tmp_path / "elsewhere" / "requirements.txt"
    assert artifact_uri(str(outside), web) == outside.as_uri()

    [result, *_] = _results(HANDOVER)
    location = result["locations"][0]["physicalLocation"]
    assert location["region"] == {"startLine": 12}
    assert location["artifactLocation"]["uri"].endswith("package-lock.json")


def test_a_release_without_a_line_points_at_the_new_lockfile() -> None:
    [result] = [r for r in _results(HANDOVER) if r["properties"]["package"] == "left-pad"]
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"].endswith("package-lock.json")
    assert "region" not in physical


def test_registered_and_deterministic() -> None:
    assert FORMATS["sarif"] is render
    assert render(HANDOVER) == render(HANDOVER)
    report = Report("diff", (replace(HANDOVER.decisions[0], action=Action.ALLOW),), NOW)
    assert [r["level"] for r in _results(report)] == ["warning"] * 3  # allowed: notes only
