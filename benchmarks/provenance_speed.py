"""Provenance verification time per release (offline) and fingerprint time for a mid-size
package with a warm clone cache.

    .venv/bin/python benchmarks/provenance_speed.py [--repeat 50] [--files 600]

Verification uses the real attestations in the pypi-attestations sdist's ``test/assets/``
(downloaded into ``.tools/`` like the tests do): a PEP 740 provenance object (one GitHub
Actions publish attestation) through ``verify_pep740``, and a SLSA v1 provenance bundle through
the npm path (``verify_bundle``). Each is verified ``--repeat`` times; the first call (loading
the trust root) is shown apart.

The fingerprint builds a synthetic npm package under ``benchmarks/.work/provenance_speed/``:
a repository of ``3 x --files`` files (sources, tests, docs) whose package holds ``--files``
files (about 4 KB each) plus 40 ignored build outputs, tagged ``v1.0.0`` and served as
``file://``. "cold" fetches into an empty cache; "warm" runs again with the clone cached
(the commit, its trees and the few blobs read are local: no fetch at all).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = ROOT / "benchmarks" / ".work" / "provenance_speed"


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(first call, median of the next ``repeat``) in milliseconds."""
    started = time.perf_counter()
    fn()
    first = (time.perf_counter() - started) * 1000
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return first, statistics.median(runs)


def verification(repeat: int) -> list[tuple[str, float, float]]:
    from pypi_attestations import Attestation
    from tests.provenance.assets import PYPI_ATTESTATIONS_SDIST, Asset, assets_dir

    from custody.model import Artifact, Ecosystem, Release
    from custody.provenance import Status, trustroot, verify_pep740
    from custody.provenance.npm import verify_bundle

    try:
        asset = Asset(assets_dir() / PYPI_ATTESTATIONS_SDIST)
    except BaseException as exc:  # pytest.skip outside pytest
        print(f"attestation assets unavailable: {exc}")
        return []
    release = asset.release("pypi-attestations", "0.0.19")
    doc = asset.doc(".provenance")

    def pep740() -> None:
        assert verify_pep740(doc, release, release.artifacts[0]).status is Status.VERIFIED

    text = Path(f"{asset.dist}.slsa.attestation").read_text()
    bundle = json.loads(Attestation.model_validate_json(text).to_bundle().to_json())
    artifact = Artifact(asset.dist.name, digests={"sha256": asset.sha256}, kind="tarball")
    npm_release = Release(Ecosystem.NPM, "pypi-attestations", "0.0.19", artifacts=(artifact,))

    def slsa() -> None:
        check = verify_bundle(
            bundle, release=npm_release, artifact=artifact, subject_name=asset.dist.name,
            verifier=trustroot.verifier(),
        )  # fmt: skip
        assert check.status is Status.VERIFIED

    return [
        ("PEP 740 provenance (pypi-attestations)", *timed(pep740, repeat)),
        ("npm-style SLSA v1 bundle (sigstore)", *timed(slsa, repeat)),
    ]


def build_package(files: int) -> tuple[Path, dict[str, bytes]]:
    from tests.fingerprint.helpers import Repo

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    body = ("export function f(a, b) { return a + b; }\n" * 100).encode()  # ~4 KB
    manifest = {
        "name": "mid", "version": "1.0.0", "files": ["lib/", "dist/"],
        "scripts": {"build": "tsc"},
    }  # fmt: skip
    source: dict[str, bytes] = {"package.json": json.dumps(manifest).encode()}
    source[".gitignore"] = b"dist/\n"
    for i in range(files):
        source[f"lib/mod{i:04d}.js"] = body + str(i).encode()
        source[f"test/mod{i:04d}.test.js"] = body + b"// test " + str(i).encode()
        source[f"docs/mod{i:04d}.md"] = b"# doc " + str(i).encode()
    repo = Repo(WORK / "origin")
    repo.commit(source, tag="v1.0.0")
    package = {p: d for p, d in source.items() if p.startswith("lib/") or p == "package.json"}
    for i in range(40):
        package[f"dist/out{i}.js"] = body + b"// built " + str(i).encode()
    return repo.path, package


def fingerprinting(files: int, repeat: int) -> list[tuple[str, float, float]]:
    from custody.fingerprint import GitOptions, fingerprint
    from custody.model import Ecosystem, Release

    origin, package = build_package(files)
    cache = WORK / "cache"
    options = GitOptions(cache_dir=cache, allow_file=True)
    release = Release(Ecosystem.NPM, "mid", "1.0.0")
    size = sum(len(d) for d in package.values()) / 1e6

    def run() -> None:
        result = asyncio.run(
            fingerprint(release, package, options=options, repository=origin.as_uri())
        )
        assert result.compared and not result.unexplained, result

    started = time.perf_counter()
    run()
    cold = (time.perf_counter() - started) * 1000
    _first, warm = timed(run, repeat)
    label = f"npm package, {len(package)} files / {size:.1f} MB, repo {3 * files + 2} files"
    return [(f"fingerprint {label}", cold, warm)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--files", type=int, default=600)
    args = parser.parse_args()
    rows = verification(args.repeat) + fingerprinting(args.files, max(5, args.repeat // 5))
    print(f"{'measure':<72} {'first/cold ms':>13} {'median ms':>10}")
    for name, first, median in rows:
        print(f"{name:<72} {first:>13.1f} {median:>10.1f}")


if __name__ == "__main__":
    main()
