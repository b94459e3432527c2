"""``custody proxy`` on the command line: help, bad options, and the approvals made at the
firewall reaching the trust file (and so the CI gate) through ``approvals export``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from custody.ledger import open_ledger
from custody.model import Ecosystem
from custody.trust import load_trust_file
from tests.support.clients import clean_env, custody


def test_help_explains_the_url_layout(tmp_path: Path) -> None:
    run = custody("proxy", "--help", cwd=tmp_path, env=clean_env(tmp_path / "home"))
    assert run.code == 0
    text = " ".join(run.stdout.split())
    assert "npm config set registry http://127.0.0.1:8080/npm/" in text
    assert "--index-url http://127.0.0.1:8080/pypi/simple/" in text
    assert "--allow-writes" in text and "--unknown-packages" in text
    assert "approvals" in text


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    bad = custody("proxy", "--listen", "nonsense", "--no-pypi", cwd=tmp_path, env=env)
    assert bad.code == 2 and "HOST:PORT" in bad.stderr
    loop = custody(
        "proxy", "--listen", "127.0.0.1:18765", "--npm-upstream", "http://127.0.0.1:18765/npm/",
        "--no-pypi", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert loop.code == 2 and "this proxy itself" in loop.stderr
    mode = custody(
        "proxy", "--unknown-packages", "maybe", "--npm-upstream", "http://127.0.0.1:1/",
        "--no-pypi", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert mode.code == 2 and "first-use" in mode.stderr


def test_approvals_export_writes_the_trust_file(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = open_ledger(database)
    at = datetime(2025, 3, 1, 12, tzinfo=UTC)
    for verdict, package, version in (
        ("deny", "kit", "1.0.6"),
        ("approve", "kit", "1.0.6"),  # the latest review wins
        ("approve", "other", "2.0.0"),
        ("deny", "bad", "0.1.0"),
    ):
        ledger.add_review(
            at=at, ecosystem=Ecosystem.NPM, package=package, version=version,
            verdict=verdict, by="r@example.com", reason="read the diff",
        )  # fmt: skip
    ledger.close()
    trust = tmp_path / "custody.toml"
    trust.write_text('# ours\n[[trusted."npm:kit"]]\ncustodian = "npm:user/alice"\n')
    env = clean_env(tmp_path / "home")
    listed = custody("proxy", "approvals", "list", "--database", database, cwd=tmp_path, env=env)
    assert listed.code == 0 and "npm:kit@1.0.6  by r@example.com" in listed.stdout
    args = ["proxy", "approvals", "export", "--database", database, "--trust-file", str(trust)]
    run = custody(*args, cwd=tmp_path, env=env)
    assert run.code == 0, run.stderr
    assert "2 approval(s) written" in run.stderr and "npm:bad@0.1.0" in run.stderr
    loaded = load_trust_file(trust)
    approval = loaded.approval("npm:kit", "1.0.6")
    assert approval is not None and approval.by == "r@example.com"
    assert "registry firewall" in approval.reason
    assert loaded.approval("npm:other", "2.0.0") is not None
    assert loaded.approval("npm:bad", "0.1.0") is None
    assert trust.read_text().startswith("# ours")
    again = custody(*args, cwd=tmp_path, env=env)
    assert again.code == 0 and "0 approval(s) written" in again.stderr
