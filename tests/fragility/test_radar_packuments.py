"""The fragility radar over real npm histories: the shared packuments, ranked in-process and by
the real CLI against a local registry serving them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from custody.blast import BlastRadius
from custody.formats.fragility import assessment_dict
from custody.fragility import RadarInput, rank
from tests.fragility.packuments import (
    CAPTURED,
    documents,
    histories,
    needs_packuments,
    package_lock,
    serve,
    top,
)
from tests.support.clients import clean_env, custody

pytestmark = needs_packuments


def test_ranking_puts_lone_idle_maintainers_first() -> None:
    items = [RadarInput(h, BlastRadius(h.ecosystem, h.name, 1, 1, True, 1)) for h in histories()]
    ranked = rank(items, CAPTURED)
    assert len(ranked) > 200
    shown = [assessment_dict(a, i) for i, a in enumerate(ranked, 1)]
    print("\n".join(top(shown)))
    head = ranked[:10]
    rules = [{f.rule for f in a.factors} for a in head]
    assert all("fragility.single-maintainer" in r for r in rules)
    assert all("fragility.idle" in r for r in rules)
    assert all(a.fragility >= 55 for a in head)
    # the ranking is monotone in the score and the factors add up
    assert [a.score for a in ranked] == sorted((a.score for a in ranked), reverse=True)
    for a in ranked:
        assert a.fragility == min(100, sum(f.points for f in a.factors))
    # teams of maintainers releasing recently sit at the bottom
    tail = ranked[-20:]
    assert all("fragility.single-maintainer" not in {f.rule for f in a.factors} for a in tail)


def test_cli_fragile_over_a_registry_of_real_packuments(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    docs = documents()
    registry = serve(httpserver, docs)
    lock = package_lock(tmp_path / "app", docs)
    env = clean_env(
        tmp_path / "home",
        CUSTODY_NPM_REGISTRY=registry,
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    )
    result = custody(
        "fragile",
        str(lock),
        "--format",
        "json",
        "--as-of",
        CAPTURED.isoformat(),
        cwd=tmp_path,
        env=env,
    )
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["schema"] == "custody/fragile@1"
    assert any("CUSTODY_POPULARITY_NPM_URL" in n and "fan-in" in n for n in report["notes"])
    packages = report["packages"]
    assert len(packages) == len(docs)
    print("\n".join(top(packages)))
    first = packages[0]
    assert {"fragility.single-maintainer", "fragility.idle"} <= {
        f["rule"] for f in first["factors"]
    }
    assert first["blast"]["fan_in"] == 1 and first["popularity_known"] is False

    text = custody(
        "fragile", str(lock), "--top", "5", "--as-of", "2022-06-01", cwd=tmp_path, env=env
    )
    assert text.code == 0, text.stderr
    assert "Fragility radar" in text.stdout and "fan-in within your projects only" in text.stdout
    assert "single maintainer" in text.stdout

    md = custody(
        "fragile", str(lock), "-f", "markdown", "--as-of", "2022-06-01", cwd=tmp_path, env=env
    )
    assert md.code == 0 and md.stdout.startswith("## Fragility radar")
    assert "| 1 | `npm:" in md.stdout


@pytest.mark.parametrize("fmt", ["xml"])
def test_cli_fragile_rejects_unknown_formats(fmt: str, tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    result = custody("fragile", "nothing.json", "--format", fmt, cwd=tmp_path, env=env)
    assert result.code == 2
    assert "--format must be one of" in result.stderr
