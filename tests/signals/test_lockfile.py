"""lockfile.integrity-mismatch and lockfile.source-mismatch: the locked entry must name the
release the registry published, or the package manager installs something Custody never
judged (an npm entry saying 2.1.3 whose ``resolved`` is the 2.0.0 tarball, or another host)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from datetime import timedelta

import msgspec
import pytest

from custody.diff import ChangeKind, compute_changes, judge_changes
from custody.judge import judge_all, judge_release
from custody.model import (
    Action,
    Artifact,
    Ecosystem,
    LockedDependency,
    PackageHistory,
    Release,
    Severity,
)
from custody.proxy.judging import judge_package
from custody.replay import replay
from custody.signals import CHECK_SIGNALS, RELEASE_SIGNALS
from custody.signals.base import SignalContext, TrustedSet
from custody.signals.lockfile import (
    integrity_mismatch,
    lockfile_entry,
    parse_integrity,
    source_mismatch,
)
from custody.trust import parse_trust_file
from tests.engine.builders import T0, release

REGISTRY = "https://registry.example.test/"
MIRROR = "https://mirror.example.test/repository/npm-proxy/"
NOW = T0 + timedelta(days=400)
TRUST = parse_trust_file(
    '[[trusted."npm:ms"]]\ncustodian = "npm:user/alice"\n'
    '[[trusted."npm:@scope/ms"]]\ncustodian = "npm:user/alice"\n'
    '[[trusted."pypi:requests"]]\ncustodian = "pypi:user/alice"\n'
)


def _sri(data: bytes, alg: str = "sha512") -> str:
    return f"{alg}-" + base64.b64encode(hashlib.new(alg, data).digest()).decode()


def _tarball(name: str, version: str) -> bytes:
    return f"tarball of {name}@{version}".encode()


def npm_release(
    version: str, day: float, name: str = "ms", registry: str = REGISTRY, shasum: bool = True
) -> Release:
    data = _tarball(name, version)
    base = name.rsplit("/", 1)[-1]
    integrity = _sri(data)
    digests = {"sha512": hashlib.sha512(data).hexdigest()}
    if shasum:
        digests["sha1"] = hashlib.sha1(data).hexdigest()
    artifact = Artifact(
        filename=f"{base}-{version}.tgz",
        url=f"{registry}{name}/-/{base}-{version}.tgz",
        digests=digests,
        integrity=integrity,
        kind="tarball",
    )
    return msgspec.structs.replace(release(version, day, name=name), artifacts=(artifact,))


def npm_history(name: str = "ms", registry: str = REGISTRY) -> PackageHistory:
    return PackageHistory(
        Ecosystem.NPM,
        name,
        registry,
        NOW,
        (npm_release("2.0.0", 0, name, registry), npm_release("2.1.3", 100, name, registry)),
    )


def npm_entry(
    version: str = "2.1.3",
    *,
    name: str = "ms",
    resolved: str | None = None,
    integrity: str | None = None,
) -> LockedDependency:
    return LockedDependency(
        Ecosystem.NPM,
        name,
        version,
        direct=True,
        paths=((name,),),
        integrity=integrity,
        resolved=resolved,
    )


def good_entry(name: str = "ms", version: str = "2.1.3", host: str = REGISTRY) -> LockedDependency:
    base = name.rsplit("/", 1)[-1]
    return npm_entry(
        version,
        name=name,
        resolved=f"{host}{name}/-/{base}-{version}.tgz",
        integrity=_sri(_tarball(name, version)),
    )


def ctx(dep: LockedDependency, history: PackageHistory | None = None) -> SignalContext:
    h = history or npm_history(dep.name)
    cand = h.release(dep.version)
    return SignalContext(
        dependency=dep,
        history=h,
        candidate=cand,
        baseline=None,
        trusted=TrustedSet(lambda c, at, wf: None),
        observations=(),
        now=NOW,
    )


def _rules(dep: LockedDependency, history: PackageHistory | None = None) -> dict[str, dict]:
    return {f.rule: f.evidence for f in lockfile_entry(ctx(dep, history))}


# -- the injection of the bug hunt ---------------------------------------------------------------


def test_resolved_pointing_at_another_versions_tarball_is_a_source_mismatch() -> None:
    """The hunt's ``injdemo``: version 2.1.3, the 2.0.0 tarball and its integrity. npm installs
    2.0.0; Custody judged 2.1.3."""
    dep = npm_entry(
        resolved=f"{REGISTRY}ms/-/ms-2.0.0.tgz", integrity=_sri(_tarball("ms", "2.0.0"))
    )
    findings = {f.rule: f for f in lockfile_entry(ctx(dep))}
    assert set(findings) == {"lockfile.source-mismatch", "lockfile.integrity-mismatch"}
    source = findings["lockfile.source-mismatch"]
    assert source.severity is Severity.HIGH
    assert source.evidence["reason"] == "other-version"
    assert source.evidence["resolved_version"] == "2.0.0"
    assert source.evidence["resolved"] == f"{REGISTRY}ms/-/ms-2.0.0.tgz"
    assert source.evidence["expected"] == f"{REGISTRY}ms/-/ms-2.1.3.tgz"
    assert "2.0.0" in source.message
    integrity = findings["lockfile.integrity-mismatch"]
    assert integrity.severity is Severity.CRITICAL
    assert integrity.evidence["algorithm"] == "sha512"
    assert integrity.evidence["expected"] == [_sri(_tarball("ms", "2.1.3"))]
    assert integrity.evidence["locked"] == _sri(_tarball("ms", "2.0.0"))


def test_the_injection_is_held_by_the_judge() -> None:
    dep = npm_entry(resolved=f"{REGISTRY}ms/-/ms-2.0.0.tgz")
    judged = judge_release(dep, npm_history(), TRUST, now=NOW)
    assert judged.decision.action is Action.HOLD
    assert [f.rule for f in judged.decision.findings] == ["lockfile.source-mismatch"]


def test_another_version_tarball_without_integrity_is_a_source_mismatch() -> None:
    dep = npm_entry(resolved=f"{REGISTRY}ms/-/ms-2.0.0.tgz")
    assert set(_rules(dep)) == {"lockfile.source-mismatch"}


def test_a_foreign_host_without_integrity_is_a_source_mismatch() -> None:
    """The hunt's ``c/inj``: a tarball on another host, named like the release."""
    dep = npm_entry(resolved="https://evil.example.com/ms-2.1.3.tgz")
    evidence = _rules(dep)["lockfile.source-mismatch"]
    assert evidence["reason"] == "other-tarball"
    same_path = npm_entry(resolved="https://evil.example.com/ms/-/ms-2.1.3.tgz")
    evidence = _rules(same_path)["lockfile.source-mismatch"]
    assert evidence["reason"] == "unverified-host"
    assert evidence["host"] == "evil.example.com"
    assert evidence["registry_hosts"] == ["registry.example.test"]


def test_a_foreign_host_with_an_integrity_the_registry_does_not_confirm_is_flagged() -> None:
    """An algorithm the registry publishes no digest in leaves the foreign bytes unpinned: npm
    checks them against the attacker's own digest."""
    evil = npm_entry(
        resolved="https://evil.example.com/ms/-/ms-2.1.3.tgz",
        integrity=_sri(b"evil", "sha384"),
    )
    rules = _rules(evil)
    assert set(rules) == {"lockfile.source-mismatch"}  # no shared algorithm: no integrity finding
    assert rules["lockfile.source-mismatch"]["reason"] == "unverified-host"


def test_a_swapped_integrity_is_an_integrity_mismatch() -> None:
    dep = replace(good_entry(), integrity=_sri(b"other bytes"))
    findings = lockfile_entry(ctx(dep))
    assert [(f.rule, f.severity) for f in findings] == [
        ("lockfile.integrity-mismatch", Severity.CRITICAL)
    ]
    evidence = findings[0].evidence
    assert evidence["integrity"] == _sri(b"other bytes")
    assert evidence["resolved"] == f"{REGISTRY}ms/-/ms-2.1.3.tgz"
    assert evidence["artifacts"] == ["ms-2.1.3.tgz"]


def test_the_scope_of_another_package_is_not_the_release() -> None:
    """``/@evil/ms/-/ms-2.1.3.tgz`` ends with ``/ms/-/ms-2.1.3.tgz`` but is the scoped package
    ``@evil/ms``, which anyone can publish on the same registry."""
    dep = npm_entry(resolved=f"{REGISTRY}@evil/ms/-/ms-2.1.3.tgz")
    assert _rules(dep)["lockfile.source-mismatch"]["reason"] == "other-tarball"
    older = npm_entry(resolved=f"{REGISTRY}@evil/ms/-/ms-2.0.0.tgz")
    assert _rules(older)["lockfile.source-mismatch"]["reason"] == "other-tarball"


def test_another_package_of_the_same_basename_is_not_the_release() -> None:
    dep = npm_entry(resolved=f"{REGISTRY}evil/-/ms-2.1.3.tgz")
    assert "lockfile.source-mismatch" in _rules(dep)


def test_dot_segments_and_non_http_sources_are_flagged() -> None:
    dotted = npm_entry(resolved=f"{REGISTRY}evil/-/evil-1.0.0.tgz/../../../ms/-/ms-2.1.3.tgz")
    assert _rules(dotted)["lockfile.source-mismatch"]["reason"] == "dot-segments"
    encoded = npm_entry(resolved=f"{REGISTRY}x/%2e%2e/ms/-/ms-2.1.3.tgz")
    assert _rules(encoded)["lockfile.source-mismatch"]["reason"] == "dot-segments"
    git = npm_entry(resolved="git+ssh://git@github.com/evil/ms.git#0123abc")
    evidence = _rules(git)["lockfile.source-mismatch"]
    assert (evidence["reason"], evidence["scheme"]) == ("not-a-registry-url", "git+ssh")
    assert "lockfile.source-mismatch" in _rules(npm_entry(resolved="file:../ms-2.1.3.tgz"))


def test_credentials_in_a_resolved_url_are_redacted() -> None:
    dep = npm_entry(resolved="https://user:s3cret@evil.example.com/ms-2.0.0.tgz")
    [finding] = lockfile_entry(ctx(dep))
    assert "s3cret" not in finding.message and "s3cret" not in str(finding.evidence)


# -- no false positives ------------------------------------------------------------------------


def test_the_registrys_own_tarball_with_its_integrity_passes() -> None:
    assert lockfile_entry(ctx(good_entry())) == []
    assert judge_release(good_entry(), npm_history(), TRUST, now=NOW).decision.findings == ()


def test_a_mirror_or_proxy_serving_the_same_tarball_passes() -> None:
    """Users read through mirrors: the lockfile may name the public host while Custody reads
    a mirror (or the reverse). The path tail decides, the integrity pins the bytes."""
    via_mirror = good_entry(host="https://registry.npmjs.org/")
    assert lockfile_entry(ctx(via_mirror, npm_history(registry=MIRROR))) == []
    assert lockfile_entry(ctx(good_entry(host=MIRROR))) == []
    http = good_entry(host="http://registry.example.test/")
    assert lockfile_entry(ctx(http)) == []


def test_the_same_host_without_integrity_passes() -> None:
    dep = replace(good_entry(), integrity=None)
    assert lockfile_entry(ctx(dep)) == []
    port = npm_history(registry="http://127.0.0.1:4873/")
    local = npm_entry(resolved="http://127.0.0.1:4873/ms/-/ms-2.1.3.tgz")
    assert lockfile_entry(ctx(local, port)) == []
    other_port = npm_entry(resolved="http://127.0.0.1:9999/ms/-/ms-2.1.3.tgz")
    assert _rules(other_port, port)["lockfile.source-mismatch"]["reason"] == "unverified-host"


def test_scoped_packages_and_encoded_scopes_pass() -> None:
    h = npm_history("@scope/ms")
    assert lockfile_entry(ctx(good_entry("@scope/ms"), h)) == []
    encoded = replace(good_entry("@scope/ms"), resolved=f"{REGISTRY}@scope%2fms/-/ms-2.1.3.tgz")
    assert lockfile_entry(ctx(encoded, h)) == []
    wrong = replace(good_entry("@scope/ms"), resolved=f"{REGISTRY}@scope/ms/-/ms-2.0.0.tgz")
    evidence = _rules(wrong, h)["lockfile.source-mismatch"]
    assert (evidence["reason"], evidence["resolved_version"]) == ("other-version", "2.0.0")


def test_a_registry_with_its_own_tarball_layout_is_compared_by_its_whole_path() -> None:
    """A registry whose ``dist.tarball`` is not ``/<name>/-/<file>.tgz`` (a download path):
    npm writes that URL into ``resolved``, so its path is what must match."""
    url = f"{REGISTRY}download/ms/2.1.3/abcdef"
    cand = npm_release("2.1.3", 100)
    cand = msgspec.structs.replace(
        cand, artifacts=(msgspec.structs.replace(cand.artifacts[0], url=url),)
    )
    h = PackageHistory(Ecosystem.NPM, "ms", REGISTRY, NOW, (cand,))
    assert lockfile_entry(ctx(replace(good_entry(), resolved=url), h)) == []
    assert "lockfile.source-mismatch" in _rules(good_entry(), h)


def test_a_release_without_a_tarball_url_uses_npms_convention() -> None:
    cand = npm_release("2.1.3", 100)
    cand = msgspec.structs.replace(
        cand, artifacts=(msgspec.structs.replace(cand.artifacts[0], url=None),)
    )
    h = PackageHistory(Ecosystem.NPM, "ms", REGISTRY, NOW, (cand,))
    assert lockfile_entry(ctx(good_entry(), h)) == []
    evidence = _rules(npm_entry(resolved=f"{REGISTRY}ms/-/ms-2.0.0.tgz"), h)
    assert evidence["lockfile.source-mismatch"]["expected"] == "/ms/-/ms-2.1.3.tgz"


def test_sha1_integrity_of_old_lockfiles_is_compared_with_the_shasum() -> None:
    old = replace(good_entry(), integrity=_sri(_tarball("ms", "2.1.3"), "sha1"))
    assert lockfile_entry(ctx(old)) == []
    bad = replace(good_entry(), integrity=_sri(b"x", "sha1"))
    assert _rules(bad)["lockfile.integrity-mismatch"]["algorithm"] == "sha1"


def test_every_shared_algorithm_must_agree() -> None:
    data = _tarball("ms", "2.1.3")
    both = f"{_sri(data)} {_sri(b'x', 'sha1')}"
    assert "lockfile.integrity-mismatch" in _rules(replace(good_entry(), integrity=both))
    fine = f"{_sri(data)} {_sri(data, 'sha1')}"
    assert _rules(replace(good_entry(), integrity=fine)) == {}


def test_no_shared_algorithm_or_no_published_digest_draws_no_integrity_finding() -> None:
    unusual = replace(good_entry(), integrity=_sri(b"x", "sha384"))
    assert lockfile_entry(ctx(unusual)) == []  # same host: the registry serves its own bytes
    cand = msgspec.structs.replace(
        npm_release("2.1.3", 100),
        artifacts=(Artifact(filename="ms-2.1.3.tgz", url=f"{REGISTRY}ms/-/ms-2.1.3.tgz"),),
    )
    h = PackageHistory(Ecosystem.NPM, "ms", REGISTRY, NOW, (cand,))
    assert lockfile_entry(ctx(replace(good_entry(), integrity=_sri(b"x")), h)) == []
    garbage = replace(good_entry(), integrity="sha512-???not base64")
    assert lockfile_entry(ctx(garbage)) == []


def test_nothing_to_compare_draws_nothing() -> None:
    """No lockfile entry fields (the proxy, replays, watch), an unknown or unpublished
    release: other rules speak (release.unpublished)."""
    assert lockfile_entry(ctx(npm_entry())) == []
    unknown = npm_entry("9.9.9", resolved=f"{REGISTRY}ms/-/ms-2.0.0.tgz", integrity=_sri(b"x"))
    assert lockfile_entry(ctx(unknown)) == []
    gone = msgspec.structs.replace(npm_release("2.1.3", 100), unpublished=True)
    h = PackageHistory(Ecosystem.NPM, "ms", REGISTRY, NOW, (gone,))
    bad = npm_entry(resolved=f"{REGISTRY}ms/-/ms-2.0.0.tgz", integrity=_sri(b"x"))
    assert lockfile_entry(ctx(bad, h)) == []


# -- Python -------------------------------------------------------------------------------------


def pypi_release(version: str = "2.31.0") -> Release:
    files = [f"requests-{version}-py3-none-any.whl", f"requests-{version}.tar.gz"]
    artifacts = tuple(
        Artifact(
            filename=f,
            url=f"https://files.example.test/{f}",
            digests={"sha256": hashlib.sha256(f.encode()).hexdigest(), "md5": "00"},
        )
        for f in files
    )
    return msgspec.structs.replace(
        release(version, 100, name="requests", ecosystem=Ecosystem.PYPI), artifacts=artifacts
    )


def pypi_ctx(integrity: str | None, resolved: str | None = None) -> SignalContext:
    dep = LockedDependency(
        Ecosystem.PYPI, "requests", "2.31.0", direct=True, integrity=integrity, resolved=resolved
    )
    h = PackageHistory(
        Ecosystem.PYPI, "requests", "https://pypi.example.test/simple/", NOW, (pypi_release(),)
    )
    return ctx(dep, h)


@pytest.mark.parametrize("filename", ["requests-2.31.0-py3-none-any.whl", "requests-2.31.0.tar.gz"])
def test_a_python_hash_of_any_of_the_releases_files_passes(filename: str) -> None:
    digest = hashlib.sha256(filename.encode()).hexdigest()
    assert lockfile_entry(pypi_ctx(f"sha256:{digest}")) == []
    assert lockfile_entry(pypi_ctx(f"sha256:{digest.upper()}")) == []


def test_a_python_hash_of_no_file_of_the_release_is_an_integrity_mismatch() -> None:
    other = hashlib.sha256(b"requests-2.30.0.tar.gz").hexdigest()
    [finding] = lockfile_entry(pypi_ctx(f"sha256:{other}"))
    assert (finding.rule, finding.severity) == ("lockfile.integrity-mismatch", Severity.CRITICAL)
    assert finding.evidence["algorithm"] == "sha256"
    assert finding.evidence["locked"] == f"sha256:{other}"
    assert finding.evidence["compared_artifacts"] == 2
    assert all(e.startswith("sha256:") for e in finding.evidence["expected"])


def test_python_entries_have_no_source_rule_and_unshared_algorithms_are_not_judged() -> None:
    digest = hashlib.sha256(b"requests-2.31.0.tar.gz").hexdigest()
    elsewhere = pypi_ctx(f"sha256:{digest}", resolved="https://evil.example.com/x.tar.gz")
    assert source_mismatch(elsewhere) == []
    assert integrity_mismatch(pypi_ctx("sha384:" + "ab" * 48)) == []


def test_parse_integrity_reads_both_notations() -> None:
    data = b"x"
    assert parse_integrity(f"{_sri(data)}?foo {_sri(data, 'sha1')}") == {
        "sha512": hashlib.sha512(data).hexdigest(),
        "sha1": hashlib.sha1(data).hexdigest(),
    }
    assert parse_integrity("SHA256:ABCD") == {"sha256": "abcd"}
    assert parse_integrity("sha256=abcd") == {"sha256": "abcd"}
    assert parse_integrity("nonsense") == {}


# -- where the rules run ------------------------------------------------------------------------


def test_the_rules_run_in_check_diff_and_the_proxy_lists() -> None:
    assert lockfile_entry in RELEASE_SIGNALS and lockfile_entry in CHECK_SIGNALS


def test_check_holds_an_injected_entry_in_the_first_pass() -> None:
    deps = [npm_entry(resolved=f"{REGISTRY}ms/-/ms-2.0.0.tgz"), good_entry("@scope/ms")]
    histories = {
        (Ecosystem.NPM, "ms"): npm_history(),
        (Ecosystem.NPM, "@scope/ms"): npm_history("@scope/ms"),
    }
    judged = judge_all(deps, histories, TRUST, observations={}, now=NOW, fan_ins={})
    by_name = {j.decision.package: j.decision for j in judged}
    assert by_name["ms"].action is Action.HOLD
    assert [f.rule for f in by_name["ms"].findings] == ["lockfile.source-mismatch"]
    assert by_name["@scope/ms"].action is Action.ALLOW


def test_the_proxy_and_replays_judging_a_packument_never_fire() -> None:
    """The proxy judges every version of a packument, with no lockfile entry: nothing to
    compare, whatever the releases' tarball URLs look like."""
    h = npm_history(registry="https://upstream.example.test/")
    judgement = judge_package(h, TRUST, unknown_packages="first-use", now=NOW)
    for decision in judgement.decisions.values():
        assert not any(f.rule.startswith("lockfile.") for f in decision.findings)
    for judged in replay(h):
        assert not any(f.rule.startswith("lockfile.") for f in judged.decision.findings)


def test_diff_judges_an_upgrade_whose_entry_is_injected() -> None:
    """``custody diff`` runs the release signals on what the change brings: an upgrade to
    2.1.3 whose entry installs the 2.0.0 tarball is held; the clean upgrade passes."""
    old = [good_entry(version="2.0.0")]
    histories = {(Ecosystem.NPM, "ms"): npm_history()}

    def judged(new: list[LockedDependency]) -> Action:
        [j] = judge_changes(
            compute_changes(old, new), old, new, histories, TRUST, observations={}, now=NOW
        )
        return j.decision.action

    assert judged([good_entry()]) is Action.ALLOW
    assert judged([npm_entry(resolved=f"{REGISTRY}ms/-/ms-2.0.0.tgz")]) is Action.HOLD


def test_diff_judges_an_entry_whose_source_alone_changed() -> None:
    """A pull request that edits only ``resolved`` (the version stays): the kept version is
    ``resourced`` and its lockfile entry judged, nothing else about it."""
    good, injected = [good_entry()], [npm_entry(resolved=f"{REGISTRY}ms/-/ms-2.0.0.tgz")]
    [change] = compute_changes(good, injected)
    assert change.kind is ChangeKind.RESOURCED
    histories = {(Ecosystem.NPM, "ms"): npm_history()}
    [j] = judge_changes([change], good, injected, histories, TRUST, observations={}, now=NOW)
    assert [f.rule for f in j.decision.findings] == ["lockfile.source-mismatch"]
    assert j.decision.action is Action.HOLD and j.decision.from_version == "2.1.3"
    # the same entry on both sides is not a change; one that drops its integrity is judged,
    # and passes while resolved is the registry's own tarball
    assert compute_changes(good, good)[0].kind is ChangeKind.UNCHANGED
    bare = [replace(good[0], integrity=None)]
    [change] = compute_changes(good, bare)
    [j] = judge_changes([change], good, bare, histories, TRUST, observations={}, now=NOW)
    assert change.kind is ChangeKind.RESOURCED and j.decision.action is Action.ALLOW


def test_an_approval_of_the_release_does_not_accept_a_tampered_lockfile_entry() -> None:
    approved = parse_trust_file(
        '[[trusted."npm:ms"]]\ncustodian = "npm:user/alice"\n'
        '[[approved."npm:ms"]]\nversion = "2.1.3"\nby = "r@example.com"\nreason = "ok"\n'
    )
    dep = npm_entry(resolved=f"{REGISTRY}ms/-/ms-2.0.0.tgz")
    assert judge_release(dep, npm_history(), approved, now=NOW).decision.action is Action.HOLD


def test_a_tampered_second_copy_is_not_hidden_by_the_merge(tmp_path) -> None:
    """Two entries lock ms 2.1.3 (the top-level one and a nested copy); only the nested one
    points at another version's tarball. Merging them into one release must keep both."""
    from custody.lockfiles import read_lockfile_report

    good = f"{REGISTRY}ms/-/ms-2.1.3.tgz"
    bad = f"{REGISTRY}ms/-/ms-2.0.0.tgz"
    lock = tmp_path / "package-lock.json"
    lock.write_text(
        '{"name": "r", "version": "1.0.0", "lockfileVersion": 3, "packages": {\n'
        '"": {"name": "r", "version": "1.0.0", "dependencies": {"ms": "2.1.3", "x": "1.0.0"}},\n'
        f'"node_modules/ms": {{"version": "2.1.3", "resolved": "{good}"}},\n'
        f'"node_modules/x": {{"version": "1.0.0", "resolved": "{REGISTRY}x/-/x-1.0.0.tgz",'
        ' "dependencies": {"ms": "2.1.3"}},\n'
        f'"node_modules/x/node_modules/ms": {{"version": "2.1.3", "resolved": "{bad}"}}\n'
        "}}\n"
    )
    [dep] = [d for d in read_lockfile_report(lock).dependencies if d.name == "ms"]
    assert dep.sources == ((None, good), (None, bad))
    judged = judge_all(
        [dep], {(Ecosystem.NPM, "ms"): npm_history()}, TRUST, observations={}, now=NOW, fan_ins={}
    )
    [finding] = judged[0].decision.findings
    assert finding.rule == "lockfile.source-mismatch"
    assert finding.evidence["reason"] == "other-version"
    assert judged[0].decision.action is Action.HOLD
    # the same two entries in two lockfiles are merged by the judge the same way
    one, two = replace(dep, other_sources=()), replace(dep, resolved=bad, other_sources=())
    judged = judge_all(
        [one, two],
        {(Ecosystem.NPM, "ms"): npm_history()},
        TRUST,
        observations={},
        now=NOW,
        fan_ins={},
    )
    assert [f.rule for f in judged[0].decision.findings] == ["lockfile.source-mismatch"]
