"""A synthetic 5,000-package package-lock v3: parses, with paths and lines (no timing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from custody.lockfiles import read_lockfile

N = 5000
NESTED = 200


def synthetic_lock() -> dict[str, Any]:
    packages: dict[str, Any] = {
        "": {"name": "big", "dependencies": {f"pkg-{i}": "^1.0.0" for i in range(50)}}
    }
    for i in range(N):
        children = [j for j in (i * 3 + 1, i * 3 + 2, i * 3 + 3, i // 2) if 0 < j < N and j != i]
        packages[f"node_modules/pkg-{i}"] = {
            "version": "1.0.0",
            "resolved": f"https://registry.example/pkg-{i}/-/pkg-{i}-1.0.0.tgz",
            "integrity": f"sha512-{i}",
            "dependencies": {f"pkg-{j}": "^1.0.0" for j in children},
        }
    for i in range(NESTED):  # pkg-i carries its own, older copy of pkg-(i + 1000)
        packages[f"node_modules/pkg-{i}/node_modules/pkg-{i + 1000}"] = {"version": "0.9.0"}
        packages[f"node_modules/pkg-{i}"]["dependencies"][f"pkg-{i + 1000}"] = "^0.9.0"
    return {"name": "big", "lockfileVersion": 3, "requires": True, "packages": packages}


def test_five_thousand_packages(tmp_path: Path) -> None:
    path = tmp_path / "package-lock.json"
    path.write_text(json.dumps(synthetic_lock(), indent=2))
    deps = read_lockfile(path)
    assert len(deps) == N + NESTED
    assert sum(d.direct for d in deps) == 50
    lines = path.read_text().splitlines()
    for dep in deps:
        assert 1 <= len(dep.paths) <= 3 or not dep.paths
        assert all(p[-1] == dep.name for p in dep.paths)
        assert len({len(p) for p in dep.paths}) <= 1  # only the shortest ones
        assert dep.location is not None and dep.location.line is not None
        assert f'/{dep.name}": {{' in lines[dep.location.line - 1]
    by_key = {(d.name, d.version): d for d in deps}
    assert by_key[("pkg-1000", "0.9.0")].paths == (("pkg-0", "pkg-1000"),)
    assert all(d.paths for d in deps if d.name != "pkg-0" or d.version != "1.0.0")
