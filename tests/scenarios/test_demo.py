"""The README's first command: ``custody demo`` replays the event-stream hand-over on the
built-in registry and must hold it, with the rules that tell the story."""

from __future__ import annotations

from pathlib import Path

from tests.support.clients import clean_env, custody


def test_demo_holds_the_event_stream_handover(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home", CUSTODY_CACHE_DIR=str(tmp_path / "cache"))
    result = custody("demo", cwd=tmp_path, env=env)
    assert result.code == 0, result.stdout + result.stderr
    out = result.stdout
    assert "HOLD  npm:event-stream@3.3.6" in out
    assert "custody.new-publisher" in out and "deps.added-in-patch" in out
    assert "HOLD  npm:flatmap-stream@0.1.1" in out
    assert "content.obfuscated" in out and "deps.new-package" in out
    assert "the hand-over is held" in out
