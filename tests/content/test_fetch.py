"""Artifact selection and integrity checks (no network)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from custody.content.fetch import IntegrityMismatch, choose_artifacts, expected_digests, verify
from custody.model import Artifact, Ecosystem, Release, Severity


def _release(version: str, *names: str) -> Release:
    arts = tuple(
        Artifact(
            n, url=f"http://files.invalid/{n}", kind="wheel" if n.endswith(".whl") else "sdist"
        )
        for n in names
    )
    return Release(Ecosystem.PYPI, "demo", version, artifacts=arts)


def test_pure_wheels_are_compared_when_both_have_one() -> None:
    a = _release("1.0", "demo-1.0.tar.gz", "demo-1.0-py3-none-any.whl")
    b = _release("1.1", "demo-1.1.tar.gz", "demo-1.1-py3-none-any.whl")
    pair = choose_artifacts(a, b)
    assert pair is not None and pair.kind == "wheel" and not pair.strip_root
    assert pair.candidate.filename == "demo-1.1-py3-none-any.whl"


def test_sdists_when_a_pure_wheel_is_missing() -> None:
    a = _release("1.0", "demo-1.0.tar.gz", "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl")
    b = _release("1.1", "demo-1.1.tar.gz", "demo-1.1-cp311-cp311-manylinux_2_17_x86_64.whl")
    pair = choose_artifacts(a, b)
    assert pair is not None and pair.kind == "sdist"


def test_binary_wheels_with_the_same_tags_as_a_last_resort() -> None:
    a = _release(
        "1.0", "demo-1.0-cp311-cp311-win_amd64.whl", "demo-1.0-cp311-cp311-musllinux_1_2_x86_64.whl"
    )
    b = _release("1.1", "demo-1.1-cp311-cp311-musllinux_1_2_x86_64.whl")
    pair = choose_artifacts(a, b)
    assert pair is not None and pair.baseline.filename.endswith("musllinux_1_2_x86_64.whl")
    assert choose_artifacts(a, _release("1.1", "demo-1.1-cp312-cp312-win_amd64.whl")) is None


def test_npm_sri_and_shasum_are_both_checked() -> None:
    data = b"tarball bytes"
    sri = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    art = Artifact("x-1.0.0.tgz", integrity=sri, digests={"sha1": hashlib.sha1(data).hexdigest()})
    assert set(expected_digests(art)) == {"sha512", "sha1"}
    assert verify(art, data) == "sha512"
    bad = Artifact("x-1.0.0.tgz", integrity=sri, digests={"sha1": "0" * 40})
    with pytest.raises(IntegrityMismatch) as info:
        verify(bad, data)
    finding = info.value.finding()
    assert (finding.rule, finding.severity) == ("content.integrity-mismatch", Severity.CRITICAL)
    assert finding.evidence["algorithm"] == "sha1"


def test_no_digest_means_unverified_not_refused() -> None:
    assert verify(Artifact("x.tgz"), b"anything") is None
