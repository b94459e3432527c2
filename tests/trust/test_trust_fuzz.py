"""Property tests: no input makes the trust file code fail in any way but TrustFileError, and
what the editor writes reads back as written."""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trust_examples import EXAMPLE

from custody.errors import TrustFileError
from custody.model import Custodian
from custody.trust import TrustFileEditor, load_trust_file, parse_trust_file
from custody.trust._scan import Outline

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- arbitrary input ------------------------------------------------------------------------------

FRAGMENTS = [
    "[policy]",
    "[policy.tiers.critical]",
    "[policy.tiers.x]",
    "[[trusted-everywhere]]",
    '[[trusted."npm:a"]]',
    '[[trusted."pypi:A_b"]]',
    '[[approved."npm:a"]]',
    "[trusted]",
    'cooldown = "48h"',
    "cooldown = 0",
    'new-packages = "review"',
    "min-fan-in = 20",
    "min-fan-in = -3",
    'hold-at = "medium"',
    'on-custody-change = "warn"',
    'custodian = "github:my-org/*"',
    'custodian = "npm:user/a"',
    'custodian = "github:o/r:.github/workflows/r.yml"',
    "since = 2011-06-01",
    "until = 2010-01-01T00:00:00Z",
    'numeric-id = "1"',
    'version = "1.0.0"',
    'by = "me"',
    'reason = """multi\nline"""',
    "at = 2018-11-27",
    'note = "x" # c',
    '"npm:b" = [{ custodian = "npm:user/b" }]',
    "tiers = {}",
    "policy = []",
    "# comment",
    "",
    "[",
    "= 3",
    '"',
    "'''",
]


def _check(text: str) -> None:
    try:
        trust = parse_trust_file(text)
    except TrustFileError as exc:
        if exc.line is not None:
            assert 1 <= exc.line <= text.count("\n") + 1, (exc.line, text)
    else:
        assert trust.policy.tiers[-1].min_fan_in == 0


@FAST
@given(st.text())
def test_any_text(text: str) -> None:
    _check(text)


@FAST
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=25))
def test_toml_like_text(lines: list[str]) -> None:
    _check("\n".join(lines))


KEYS = [
    "policy",
    "trusted-everywhere",
    "trusted",
    "approved",
    "cooldown",
    "new-packages",
    "tiers",
    "critical",
    "normal",
    "min-fan-in",
    "hold-at",
    "on-custody-change",
    "custodian",
    "since",
    "until",
    "note",
    "numeric-id",
    "version",
    "by",
    "reason",
    "at",
    "npm:a",
    "pypi:A",
    "pypi:a",
    "x",
]
WORDS = [
    "48h",
    "0",
    "review",
    "hold",
    "warn",
    "medium",
    "npm:user/a",
    "pypi:user/a",
    "github:o/*",
    "github:o/r:.github/workflows/r.yml",
    "1.0.0",
    "123",
    "me",
]
SCALARS = st.one_of(
    st.sampled_from(WORDS),
    st.text(max_size=10),
    st.integers(-3, 60),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(),
    st.datetimes(timezones=st.sampled_from([UTC, None])),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=25,
)


@FAST
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4))
def test_structured_documents(doc: dict[str, Any]) -> None:
    try:
        text = tomlkit.dumps(doc)
    except Exception:  # tomlkit cannot write every structure (e.g. mixed arrays)
        return
    _check(text)
    Outline(text)  # the outline never raises either


# -- round trips -----------------------------------------------------------------------------

NAME = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,15}", fullmatch=True)
ACCOUNTS = st.builds(
    lambda ns, kind, name: (ns, f"{ns}:{kind}/{name}"),
    st.sampled_from(["npm", "pypi"]),
    st.sampled_from(["user", "org"]),
    NAME,
)
REPOS = st.builds(
    lambda owner, repo, workflow: (None, f"github:{owner}/{repo}{workflow}"),
    NAME,
    NAME | st.just("*") | NAME.map(lambda n: n + "*"),
    st.just("") | NAME.map(lambda n: f":.github/workflows/{n}.yml"),
)
CUSTODIANS = ACCOUNTS | REPOS
VERSIONS = st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,3}([-+.!_][A-Za-z0-9]{1,5})?", fullmatch=True)
PACKAGE_NAMES = st.from_regex(r"[a-z]([a-z0-9-]{0,12}[a-z0-9])?", fullmatch=True)
MOMENTS = st.none() | st.dates() | st.datetimes(timezones=st.just(UTC))


def _utc(value: date | datetime | None, *, end: bool) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if end:
        return datetime.combine(value, time(23, 59, 59, 999999), tzinfo=UTC)
    return datetime.combine(value, time(), tzinfo=UTC)


@settings(max_examples=150, deadline=None)
@given(
    custodian=CUSTODIANS,
    package=PACKAGE_NAMES,
    version=VERSIONS,
    note=st.none() | st.text(),
    reason=st.text().filter(str.strip),
    since=MOMENTS,
    until=MOMENTS,
)
def test_add_then_load(
    custodian: tuple[str | None, str],
    package: str,
    version: str,
    note: str | None,
    reason: str,
    since: date | datetime | None,
    until: date | datetime | None,
) -> None:
    ecosystem, ident = custodian
    key = f"{ecosystem or 'npm'}:{package}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "custody.toml"
        path.write_text(EXAMPLE)
        editor = TrustFileEditor.open(path)
        try:
            assert editor.add_trusted(key, ident, since=since, until=until, note=note)
        except TrustFileError as exc:
            assert "before since" in str(exc)
            return
        assert editor.add_approval(key, version, "me@example.com", reason, at=since)
        editor.save()
        trust = load_trust_file(path)
    entry = trust.trusted[key][-1]
    assert (entry.custodian, entry.note) == (ident, note)
    assert (entry.since, entry.until) == (_utc(since, end=False), _utc(until, end=True))
    approval = trust.approval(key, version)
    assert approval is not None
    assert (approval.version, approval.reason) == (version, reason)
    # what was there before is still there
    assert trust.approval("npm:event-stream", "4.0.1") is not None
    assert trust.trusted_everywhere[0].custodian == "github:my-org/*"
    if "*" not in ident and ":" not in ident.partition(":")[2]:
        assert trust.trusting(key, Custodian(ident), entry.since or entry.until) is not None


@settings(max_examples=100, deadline=None)
@given(
    lines=st.lists(st.sampled_from(FRAGMENTS), max_size=20),
    custodian=CUSTODIANS,
    package=PACKAGE_NAMES,
)
def test_editing_odd_files_never_corrupts_them(
    lines: list[str], custodian: tuple[str | None, str], package: str
) -> None:
    text = "\n".join(lines)
    try:
        parse_trust_file(text)
    except TrustFileError:
        return
    editor = TrustFileEditor(Path("custody.toml"), text)
    ecosystem, ident = custodian
    key = f"{ecosystem or 'pypi'}:{package}"
    comments = [line for line in text.splitlines() if line.startswith("#")]
    try:
        editor.add_trusted(key, ident)
        editor.add_approval(key, "1.0.0", "me", "ok")
        editor.set_policy("cooldown", "1h")
        editor.remove_trusted(key, ident)
    except TrustFileError:
        pass
    parse_trust_file(editor.text)  # whatever happened, the text is still valid
    new_comments = [line for line in editor.text.splitlines() if line.startswith("#")]
    assert new_comments == comments
