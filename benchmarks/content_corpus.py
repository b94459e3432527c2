"""Download the corpus for the content benchmarks: two consecutive releases of well-known npm and
PyPI packages, into ``benchmarks/.work/content/`` (gitignored).

Uses this machine's own configuration: ``npm view`` / ``npm pack`` for npm, and Custody's own
PyPI reader and ``fetch_artifact`` (digest-checked) with pip's configured index, so whatever
registry or mirror they are set up for is used; no host name is written here. Files already
downloaded are kept::

    python benchmarks/content_corpus.py            # everything
    python benchmarks/content_corpus.py lodash numpy

``CONTENT_BENCH_DIR`` overrides the folder. Writes ``corpus.json`` there: a list of
``{"ecosystem", "name", "old", "new", "old_file", "new_file", "kind"}`` (paths relative to it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from custody.model import Artifact

# check_speed.py wipes benchmarks/.work/ on each run: CONTENT_BENCH_DIR puts the corpus elsewhere.
WORK = Path(
    os.environ.get("CONTENT_BENCH_DIR") or Path(__file__).resolve().parent / ".work" / "content"
)

NPM_PACKAGES = [
    "lodash", "react", "react-dom", "express", "chalk", "debug", "axios", "typescript",
    "@babel/core", "next", "webpack", "eslint", "vue", "moment", "commander", "yargs", "uuid",
    "semver", "ws", "rxjs", "prettier", "jquery", "async", "minimist", "glob", "body-parser",
    "dotenv", "core-js", "esbuild", "tslib", "socket.io", "ua-parser-js", "sharp", "bcrypt",
]  # fmt: skip

PYPI_PACKAGES = [
    "requests", "urllib3", "six", "idna", "certifi", "charset-normalizer", "click", "flask",
    "jinja2", "markupsafe", "attrs", "packaging", "setuptools", "pyyaml", "numpy", "django",
    "pytest", "rich", "httpx", "sqlalchemy", "pydantic", "boto3",
]  # fmt: skip

_STABLE = re.compile(r"^\d+(\.\d+)*$")


def _run(argv: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr[-800:]}")
    return done.stdout


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _last_two(versions: list[str]) -> tuple[str, str] | None:
    stable = sorted((v for v in versions if _STABLE.match(v)), key=_key)
    return (stable[-2], stable[-1]) if len(stable) >= 2 else None


def npm_pair(name: str) -> dict[str, str] | None:
    versions = json.loads(_run(["npm", "view", name, "versions", "--json"]))
    pair = _last_two(versions if isinstance(versions, list) else [versions])
    if pair is None:
        return None
    out = WORK / "npm"
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for version in pair:
        stem = name.replace("@", "").replace("/", "-")
        target = out / f"{stem}-{version}.tgz"
        if not target.exists():
            packed = json.loads(_run(["npm", "pack", f"{name}@{version}", "--json"], cwd=out))
            (out / packed[0]["filename"]).rename(target)
        files.append(target)
    return {
        "ecosystem": "npm",
        "name": name,
        "old": pair[0],
        "new": pair[1],
        "old_file": str(files[0].relative_to(WORK)),
        "new_file": str(files[1].relative_to(WORK)),
        "kind": "tarball",
    }


async def _pypi_pairs(names: list[str]) -> list[dict[str, str]]:
    """Through Custody's own PyPI reader and ``fetch_artifact`` (digest-checked), with the
    index this machine's pip is configured for."""
    from packaging.version import InvalidVersion, Version

    from custody.content.fetch import choose_artifacts, fetch_artifact
    from custody.model import Ecosystem
    from custody.registries.config import resolve_settings
    from custody.registries.facade import make_readers

    settings = resolve_settings(Path.cwd(), None, None, os.environ, ecosystems=[Ecosystem.PYPI])
    out: list[dict[str, str]] = []
    async with make_readers(settings, None) as regs:
        reader = regs.readers[Ecosystem.PYPI]
        for name in names:
            try:
                history = await reader.history(name)
            except Exception as exc:  # a benchmark: report and go on
                print(f"pypi {name}: {exc}", file=sys.stderr)
                continue

            def stable(v: str) -> bool:
                try:
                    return not Version(v).is_prerelease
                except InvalidVersion:
                    return False

            releases = [r for r in history.releases if r.artifacts and stable(r.version)]
            releases.sort(key=lambda r: Version(r.version))
            if len(releases) < 2:
                continue
            old, new = releases[-2], releases[-1]
            kinds = ["wheel", "sdist"]
            for kind in kinds:
                pair = choose_artifacts(
                    dataclasses.replace(old, artifacts=_only(old.artifacts, kind)),
                    dataclasses.replace(new, artifacts=_only(new.artifacts, kind)),
                )
                if pair is None:
                    continue
                files = []
                for art in (pair.baseline, pair.candidate):
                    target = WORK / "pypi" / kind / art.filename
                    if not target.exists():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        data = await fetch_artifact(
                            regs.client, art, registry=reader.registry, max_bytes=300 * 2**20
                        )
                        target.write_bytes(data)
                    files.append(target)
                out.append(
                    {
                        "ecosystem": "pypi",
                        "name": name,
                        "old": old.version,
                        "new": new.version,
                        "old_file": str(files[0].relative_to(WORK)),
                        "new_file": str(files[1].relative_to(WORK)),
                        "kind": pair.kind,
                    }
                )
                print(f"pypi {name} {pair.kind} {old.version} -> {new.version}", flush=True)
    return out


def _only(artifacts: tuple[Artifact, ...], kind: str) -> tuple[Artifact, ...]:
    if kind == "wheel":
        return tuple(a for a in artifacts if a.filename.endswith("-any.whl"))
    return tuple(a for a in artifacts if a.kind == "sdist")


def main() -> None:
    only = set(sys.argv[1:])
    WORK.mkdir(parents=True, exist_ok=True)
    index = WORK / "corpus.json"
    corpus: list[dict[str, str]] = json.loads(index.read_text()) if index.exists() else []
    done = {(c["ecosystem"], c["name"], c["kind"]) for c in corpus}
    os.environ.setdefault("npm_config_update_notifier", "false")
    for name in NPM_PACKAGES:
        if (only and name not in only) or ("npm", name, "tarball") in done:
            continue
        try:
            entry = npm_pair(name)
        except (RuntimeError, ValueError, OSError) as exc:
            print(f"npm {name}: {exc}", file=sys.stderr)
            continue
        if entry:
            corpus.append(entry)
            print(f"npm {name} {entry['old']} -> {entry['new']}", flush=True)
        index.write_text(json.dumps(corpus, indent=1))
    wanted = [
        n
        for n in PYPI_PACKAGES
        if (not only or n in only)
        and ("pypi", n, "wheel") not in done
        and ("pypi", n, "sdist") not in done
    ]
    if wanted and os.environ.get("CORPUS_PYPI", "1") == "1":
        corpus.extend(asyncio.run(_pypi_pairs(wanted)))
        index.write_text(json.dumps(corpus, indent=1))
    print(f"{len(corpus)} pairs in {index}")


if __name__ == "__main__":
    main()
