"""Version arithmetic: plain npm versions are read without node-semver, and must agree with it."""

from __future__ import annotations

import subprocess
import sys

import nodesemver
import pytest
from hypothesis import given
from hypothesis import strategies as st

from custody import versions
from custody.model import Ecosystem

NPM = Ecosystem.NPM
PART = st.integers(0, 10**15 - 1)
PLAIN = st.builds(lambda a, b, c: f"{a}.{b}.{c}", PART, PART, PART)
SMALL = st.builds(lambda a, b, c: f"{a}.{b}.{c}", *(st.integers(0, 3),) * 3)


@given(PLAIN | SMALL, PLAIN | SMALL)
def test_plain_versions_compare_and_bump_as_node_semver_says(a: str, b: str) -> None:
    assert versions.plain_semver(a) is not None and versions.plain_semver(b) is not None
    assert versions.compare(NPM, a, b) == nodesemver.compare(a, b, loose=True)
    pa, pb = nodesemver.parse(a, loose=True), nodesemver.parse(b, loose=True)
    kind = "major" if pa.major != pb.major else "minor" if pa.minor != pb.minor else "patch"
    step = versions.bump(NPM, a, b)
    assert step is not None
    assert (step.kind, step.prerelease, step.downgrade) == (kind, False, pb.compare(pa) < 0)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.2.3-beta.1", "1.2.3", -1),  # a prerelease sorts before its release
        ("1.2.3+build.5", "1.2.3", 0),  # build metadata is ignored
        ("v1.2.3", "1.2.4", -1),  # a loose form
        ("01.2.3", "1.2.3", None),  # a leading zero: whatever node-semver makes of it
    ],
)
def test_other_versions_still_go_through_node_semver(a: str, b: str, expected: int | None) -> None:
    assert versions.plain_semver(a) is None
    try:
        want: int | None = nodesemver.compare(a, b, loose=True)
    except (ValueError, TypeError):
        want = None
    assert versions.compare(NPM, a, b) == want
    if expected is not None:
        assert want == expected


def test_plain_versions_do_not_import_node_semver() -> None:
    """Importing node-semver costs 25-50 ms; a check whose versions are all plain skips it."""
    script = (
        "import sys\n"
        "from custody import versions\n"
        "from custody.model import Ecosystem\n"
        "assert versions.bump(Ecosystem.NPM, '1.2.3', '1.3.0').kind == 'minor'\n"
        "assert versions.compare(Ecosystem.NPM, '2.0.0', '10.0.0') == -1\n"
        "print('nodesemver' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
