"""Bad usage is exit 2 with a one-line message naming what is wrong, in every command; a crash
is exit 70 ("a bug in Custody"), never 1, which means "held"."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from custody import gather
from custody.errors import InputError
from custody.model import Ecosystem, parse_package_ref
from tests.support.clients import Result, custody, project_env

TRUST = '[[trusted."npm:leftish"]]\ncustodian = "npm:user/alice"\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "custody.toml").write_text(TRUST)
    return root


def run(project: Path, *args: str) -> Result:
    return custody(*args, cwd=project, env=project_env(project))


def _usage_error(result: Result, *fragments: str) -> None:
    assert result.code == 2, (result.code, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# -- 1. ECO:NAME[@VERSION] -----------------------------------------------------------------------

COMMANDS = {
    "approve": ("approve", "{ref}", "--reason", "x", "--by", "me"),
    "trust": ("trust", "{ref}", "--custodian", "npm:user/x"),
    "history": ("history", "{ref}"),
    "where": ("where", "{ref}"),
    "rollback": ("rollback", "{ref}"),
    "verify": ("verify", "{ref}", "--offline"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("ref", "fragment"),
    [("cargo:x", "unknown ecosystem 'cargo'"), ("foo@1", "expected ECO:NAME"), ("*", "'*'")],
)
def test_malformed_package_ref_is_a_usage_error(
    project: Path, command: str, ref: str, fragment: str
) -> None:
    argv = [a.format(ref=ref) for a in COMMANDS[command]]
    _usage_error(run(project, *argv), fragment)
    assert (project / "custody.toml").read_text() == TRUST


@pytest.mark.parametrize("text", ["cargo:serde@1.0", "foo@1", "*", "npm:", ":x"])
def test_parse_package_ref_raises_input_error(text: str) -> None:
    with pytest.raises(InputError):
        parse_package_ref(text)
    assert parse_package_ref("npm:@scope/pkg@1.2.3") == (Ecosystem.NPM, "@scope/pkg", "1.2.3")


# -- exit 70 for a crash, nothing else changed ---------------------------------------------------


def _main_with(raising: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``cli.main`` with the ref parser replaced by one that raises ``raising``."""
    probe = textwrap.dedent(
        f"""
        import sys
        from custody import cli, cli_baseline
        from custody.errors import InputError

        def broken(text):
            raise {raising}

        cli_baseline.parse_package_ref = broken
        sys.argv = ["custody", *{list(argv)!r}]
        cli.main()
        """
    )
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )


def test_an_unexpected_exception_is_exit_70_with_the_traceback() -> None:
    done = _main_with("RuntimeError('boom [/x]')", "history", "npm:x")
    assert done.returncode == 70, done.stderr
    assert "Traceback (most recent call last)" in done.stderr
    assert "internal error: RuntimeError: boom [/x]" in done.stderr
    assert "report it" in done.stderr


@pytest.mark.parametrize(
    ("raising", "argv", "code", "fragment"),
    [
        ("KeyboardInterrupt()", ("history", "npm:x"), 130, ""),
        ("InputError('bad [/x] input')", ("history", "npm:x"), 2, "error: bad [/x] input"),
        ("RuntimeError()", ("history", "npm:x", "--bogus"), 2, "No such option"),
        ("RuntimeError()", ("history",), 2, "Missing argument"),
    ],
)
def test_interrupts_usage_and_input_errors_keep_their_codes(
    raising: str, argv: tuple[str, ...], code: int, fragment: str
) -> None:
    done = _main_with(raising, *argv)
    assert done.returncode == code, done.stderr
    assert fragment in done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


# -- 2, 4 and 10: times ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["9999-12-31T23:59:59-05:00", "0001-01-01", "0001-01-01T00:30:00+01:00", "1969-12-31", ""],
)
def test_as_of_out_of_range_or_empty_is_a_usage_error(project: Path, value: str) -> None:
    _usage_error(run(project, "check", "--as-of", value), "--as-of")


def test_as_of_in_the_future_is_a_usage_error(project: Path) -> None:
    _usage_error(run(project, "check", "--as-of", "2999-01-01"), "--as-of", "future")


@pytest.mark.parametrize("command", ["history npm:leftish", "diff a b", "fragile"])
def test_empty_as_of_is_a_usage_error_everywhere(project: Path, command: str) -> None:
    _usage_error(run(project, *command.split(), "--as-of", ""), "--as-of")


def test_publishes_are_recorded_from_the_start_of_time_at_year_one() -> None:
    ledger = cast(Any, None)  # no history: the ledger is never asked
    assert gather.record_publishes(ledger, [], datetime(1, 6, 1, tzinfo=UTC)) == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--since", ""),
        ("--until", ""),
        ("--since", "garbage"),
        ("--until", "garbage"),
        ("--since", "0001-01-01"),
        ("--note", ""),
        ("--note", "  "),
    ],
)
def test_trust_refuses_empty_or_bad_options(project: Path, option: str, value: str) -> None:
    result = run(project, "trust", "npm:leftish", "-c", "npm:user/bob", option, value)
    _usage_error(result, option)
    assert (project / "custody.toml").read_text() == TRUST


def test_trust_refuses_until_before_since(project: Path) -> None:
    result = run(
        project, "trust", "npm:leftish", "-c", "npm:user/bob", "--since", "2020-02-01",
        "--until", "2020-01-01",
    )  # fmt: skip
    _usage_error(result, "--until")


@pytest.mark.parametrize("value", ["", "   "])
def test_approve_refuses_an_empty_by(project: Path, value: str) -> None:
    result = run(project, "approve", "npm:leftish@1.0.1", "-r", "ok", "--by", value)
    _usage_error(result, "--by")
    assert (project / "custody.toml").read_text() == TRUST


def test_history_refuses_a_version(project: Path) -> None:
    _usage_error(run(project, "history", "npm:leftish@1.0.0"), "without a version")
