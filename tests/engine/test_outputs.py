"""The JSON report against its documented schema, the text report, the custody timeline and
the trust-on-first-use baseline."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import msgspec

from custody.baseline import build_baseline
from custody.formats import json_format, text
from custody.judge import judge_release
from custody.model import Action, Custodian, OwnerRole, Provenance
from custody.report import Report
from custody.timeline import timeline
from custody.trust import TrustFile, parse_trust_file

from .builders import T0, history, locked, release

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "report.schema.json").read_text())
TRUST = parse_trust_file('[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n')

HANDOVER = history(
    release("1.0.0", 0, maintainers=["alice"], repo="https://github.com/alice/pkg"),
    release("1.0.1", 100, "mallory", ["alice", "mallory"], deps={"x": "1"}),
)


def _report() -> Report:
    later = T0 + timedelta(days=365)  # both releases older than the cooldown
    held = judge_release(locked("1.0.1"), HANDOVER, TRUST, now=later).decision
    fine = judge_release(locked("1.0.0"), HANDOVER, TRUST, now=later).decision
    return Report(
        "check", (held, fine), T0, lockfiles=("package-lock.json",), trust_file="custody.toml"
    )


def test_json_report_matches_the_documented_schema() -> None:
    doc = json.loads(json_format.render(_report()))
    jsonschema.validate(doc, SCHEMA)
    assert doc["schema"] == "custody/report@1"
    assert doc["summary"] == {"allow": 1, "hold": 1, "block": 0}
    assert doc["exit_code"] == 1
    held = doc["decisions"][0]
    assert (held["package"], held["version"], held["from_version"], held["action"]) == (
        "pkg",
        "1.0.1",
        "1.0.0",
        "hold",
    )


def test_schema_rejects_a_broken_report() -> None:
    doc = json.loads(json_format.render(_report()))
    doc["decisions"][0]["action"] = "maybe"
    try:
        jsonschema.validate(doc, SCHEMA)
    except jsonschema.ValidationError:
        return
    raise AssertionError("schema accepted an unknown action")


def test_text_report_says_what_is_held_and_how_to_approve() -> None:
    out = text.render(_report())
    assert "HOLD  npm:pkg@1.0.1" in out
    assert "custody.new-publisher" in out
    assert 'custody approve npm:pkg@1.0.1 --reason "..."' in out
    assert "2 releases checked: 1 allowed, 1 held, 0 blocked" in out


def test_timeline_shows_publishers_maintainers_and_provenance() -> None:
    h = history(
        release("1.0.0", 0, maintainers=["alice"], provenance="alice/pkg"),
        release("1.0.1", 10, "mallory", ["mallory"]),
    )
    events = [(e.kind, e.version) for e in timeline(h)]
    assert ("publish", "1.0.1") in events
    assert ("maintainer-added", "1.0.1") in events
    assert ("maintainer-removed", "1.0.1") in events
    assert ("provenance-off", "1.0.1") in events


def test_baseline_trusts_the_line_before_the_locked_release() -> None:
    h = history(
        release("0.9.0", 0, "old-owner", ["old-owner"]),
        release("1.0.0", 10, "alice", ["alice"], provenance="alice/pkg", repo_id="7"),
        release("1.0.1", 20, "bob", ["alice", "bob"]),
        release("1.0.2", 30, "mallory", ["mallory"]),
    )
    [base] = build_baseline([locked("1.0.1")], {(h.ecosystem, h.name): h}, when=T0)
    ids = {e.custodian: e for e in base.entries}
    assert set(ids) == {"npm:user/alice", "npm:user/bob", "github:alice/pkg"}  # not 0.x, not later
    assert ids["github:alice/pkg"].numeric_id == "7"
    assert ids["npm:user/alice"].since == h.releases[1].published_at


def test_baseline_trusts_custodians_from_their_first_release_in_any_line() -> None:
    """Who: the locked release's line. From when: the first release of the package, any line,
    that the custodian published or was listed with; so an older major of the same author
    (a nested ^1 dependency, a rollback) is trusted too."""
    h = history(
        release("0.9.0", 0, "old-owner", ["old-owner", "alice"]),
        release("1.0.0", 10, "alice", ["alice"]),
        release("1.1.0", 20, "bob", ["alice", "bob"]),
        release("2.0.0", 30, "alice", ["alice"]),
        release("3.0.0", 40, "mallory", ["alice", "mallory"]),
    )
    [base] = build_baseline([locked("2.0.0")], {(h.ecosystem, h.name): h}, when=T0)
    assert [(e.custodian, e.since, e.until) for e in base.entries] == [
        ("npm:user/alice", T0, None)  # listed with 0.9.0; not bob, old-owner or mallory
    ]
    trust = TrustFile(None, trusted={"npm:pkg": base.entries})
    later = T0 + timedelta(days=365)
    older = judge_release(locked("1.0.0"), h, trust, now=later).decision
    assert "custody.new-publisher" not in {f.rule for f in older.findings}
    assert older.action is Action.ALLOW
    other = judge_release(locked("1.1.0"), h, trust, now=later).decision
    assert "custody.new-publisher" in {f.rule for f in other.findings}  # bob: not widened


def test_baseline_of_a_trusted_publish_trusts_the_ci_system_and_its_source() -> None:
    ci = Custodian("npm:trusted-publisher/github")
    verified = Provenance(
        "npm-attestation",
        verified=True,
        source=Custodian("github:acme/pkg", "42"),
        workflow=".github/workflows/release.yml",
        issuer="https://token.actions.githubusercontent.com",
    )
    h = history(
        release("1.0.0", 0, "alice", ["alice"]),
        msgspec.structs.replace(release("1.1.0", 10, None, ["alice"]), publisher=ci),
        msgspec.structs.replace(
            release("1.2.0", 20, None, ["alice"]), publisher=ci, provenance=verified
        ),
    )
    [base] = build_baseline([locked("1.2.0")], {(h.ecosystem, h.name): h}, when=T0)
    ids = {e.custodian: e for e in base.entries}
    assert set(ids) == {"npm:user/alice", ci.id, "github:acme/pkg"}
    assert ids[ci.id].since == T0 + timedelta(days=10)
    assert ids["github:acme/pkg"].since == T0 + timedelta(days=20)
    assert ids["github:acme/pkg"].numeric_id == "42"


def test_baseline_falls_back_to_owners_when_no_publisher_is_named() -> None:
    h = msgspec.structs.replace(
        history(release("1.0.0", 0, None)),
        current_owners=(OwnerRole(Custodian("pypi:user/alice"), "Owner"),),
    )
    [base] = build_baseline([locked("1.0.0")], {(h.ecosystem, h.name): h}, when=T0)
    assert [e.custodian for e in base.entries] == ["pypi:user/alice"] and not base.unknown
    bare = history(release("1.0.0", 0, None))
    [unknown] = build_baseline([locked("1.0.0")], {(bare.ecosystem, bare.name): bare}, when=T0)
    assert unknown.unknown and unknown.entries == ()


def test_report_exit_code() -> None:
    assert _report().exit_code == 1
    allowed = [d for d in _report().decisions if d.action is Action.ALLOW]
    assert Report("check", tuple(allowed), T0).exit_code == 0
