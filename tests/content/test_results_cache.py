"""The comparison result cache (results_cache.py): a second comparison of the same artifacts is
answered from disk without downloading or reading them, and nothing else is ever answered
from it (other bytes, another comparison format, a corrupt or misplaced entry, a digest
mismatch)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest

from custody.content import archive
from custody.content import results_cache as rc
from custody.content.fetch import ArtifactCache, choose_artifacts
from custody.content.limits import DEFAULT_LIMITS, ArchiveLimits
from custody.content.result import COMPARISON_FORMAT
from custody.content.results_cache import ComparisonCache, comparison_key
from custody.content.review import ContentOutcome, compare_releases
from custody.model import Artifact, Ecosystem, Release, Severity
from custody.registries.http import RegistryClient
from tests.content.conftest import tgz

BASE = "https://registry.invalid/pad/-/"
INDEX = b"'use strict';\nmodule.exports = (s, n) => String(s).padStart(n);\n"
_BLOB = base64.b64encode(bytes(range(256)) * 12).decode()
PAYLOAD = ";(function(){var b=Buffer.from('" + _BLOB + "','base64').toString();eval(b)})();\n"
OLD = tgz({"package.json": b'{"name":"pad","version":"1.0.0"}', "index.js": INDEX})
NEW = tgz(
    {"package.json": b'{"name":"pad","version":"1.0.1"}', "index.js": INDEX + PAYLOAD.encode()}
)
UNSAFE = tgz({"../escape.js": b"boom"}, root="")


class Client:
    """Serves artifacts by URL and counts the downloads; ``fail`` makes any download an error."""

    def __init__(self, files: dict[str, bytes], *, fail: bool = False) -> None:
        self.files = files
        self.fail = fail
        self.calls: list[str] = []

    async def get(self, url: str, **_kw: Any) -> tuple[None, bytes]:
        self.calls.append(url)
        if self.fail:
            raise AssertionError(f"downloaded {url} although the result was cached")
        return None, self.files[url]


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def release(version: str, data: bytes, **digest: str) -> Release:
    """An npm release whose tarball carries ``digest`` (default: its sha512 integrity)."""
    integrity = None if digest else sri(data)
    art = Artifact(
        f"pad-{version}.tgz",
        url=f"{BASE}pad-{version}.tgz",
        integrity=integrity,
        digests=dict(digest),
        kind="tarball",
    )
    return Release(Ecosystem.NPM, "pad", version, artifacts=(art,))


def served(*pairs: tuple[Release, bytes]) -> dict[str, bytes]:
    return {cast(str, r.artifacts[0].url): data for r, data in pairs}


def compare(
    client: Client, base: Release, cand: Release, results: ComparisonCache | None, **kw: Any
) -> ContentOutcome:
    return asyncio.run(
        compare_releases(
            cast(RegistryClient, client), base, cand, registry=BASE, results=results, **kw
        )
    )


def key_of(base: Release, cand: Release, limits: ArchiveLimits = DEFAULT_LIMITS) -> str | None:
    pair = choose_artifacts(base, cand)
    assert pair is not None
    return comparison_key(pair, base, cand, limits)


def entries(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def results(tmp_path: Path) -> ComparisonCache:
    return ComparisonCache(tmp_path / "comparisons")


@pytest.fixture
def no_reading(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it to make any archive read fail the test."""

    def arm() -> None:
        def refuse(*_a: object, **_k: object) -> None:
            raise AssertionError("an archive was read although the result was cached")

        monkeypatch.setattr(archive, "read_archive", refuse)

    return arm


def test_a_hit_returns_the_same_comparison_without_downloading_or_reading(
    results: ComparisonCache, no_reading: Callable[[], None]
) -> None:
    base, cand = release("1.0.0", OLD), release("1.0.1", NEW)
    first = compare(Client(served((base, OLD), (cand, NEW))), base, cand, results)
    assert first.comparison is not None and first.error is None
    assert {f.kind for f in first.comparison.flags} >= {"appended-code", "encoded-string"}
    (entry,) = entries(results.root)
    assert entry == results.path(cast(str, key_of(base, cand)))

    no_reading()
    again = Client({}, fail=True)
    second = compare(again, base, cand, results)
    assert again.calls == []
    assert second == first


def test_without_the_cache_every_run_downloads(results: ComparisonCache) -> None:
    """The positive control of the test above: with no result cache, a run downloads."""
    base, cand = release("1.0.0", OLD), release("1.0.1", NEW)
    compare(Client(served((base, OLD), (cand, NEW))), base, cand, None)
    assert not results.root.exists()
    with pytest.raises(AssertionError, match="downloaded"):
        compare(Client({}, fail=True), base, cand, None)


def test_a_hit_does_not_need_the_artifact_cache(tmp_path: Path, results: ComparisonCache) -> None:
    """Artifacts cached too, then deleted: the second run reads neither them nor the network."""
    base, cand = release("1.0.0", OLD), release("1.0.1", NEW)
    artifacts = ArtifactCache(tmp_path / "artifacts")
    client = Client(served((base, OLD), (cand, NEW)))
    first = compare(client, base, cand, results, cache=artifacts)
    assert len(client.calls) == 2 and entries(artifacts.root)
    for path in entries(artifacts.root):
        path.unlink()
    assert compare(Client({}, fail=True), base, cand, results, cache=artifacts) == first


def test_other_bytes_miss(results: ComparisonCache) -> None:
    base, cand = release("1.0.0", OLD), release("1.0.1", NEW)
    compare(Client(served((base, OLD), (cand, NEW))), base, cand, results)
    # the same names and versions, other candidate bytes: another digest, another key
    clean = tgz({"package.json": b'{"name":"pad","version":"1.0.1"}', "index.js": INDEX + b"//\n"})
    cand2 = release("1.0.1", clean)
    client = Client(served((base, OLD), (cand2, clean)))
    outcome = compare(client, base, cand2, results)
    assert len(client.calls) == 2
    assert outcome.comparison is not None and outcome.comparison.flags == ()
    assert len(entries(results.root)) == 2


def test_another_comparison_format_misses(
    results: ComparisonCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, cand = release("1.0.0", OLD), release("1.0.1", NEW)
    first = compare(Client(served((base, OLD), (cand, NEW))), base, cand, results)
    monkeypatch.setattr(rc, "COMPARISON_FORMAT", COMPARISON_FORMAT + 1)
    client = Client(served((base, OLD), (cand, NEW)))
    assert compare(client, base, cand, results) == first
    assert len(client.calls) == 2, "a result of another comparison format was reused"


def test_the_key_covers_what_the_outcome_depends_on(monkeypatch: pytest.MonkeyPatch) -> None:
    base, cand = release("1.0.0", OLD), release("1.0.1", NEW)
    key = key_of(base, cand)
    assert key is not None and len(key) == 64
    assert key_of(base, cand) == key  # stable
    sha256 = release("1.0.1", NEW, sha256=hashlib.sha256(NEW).hexdigest())
    renamed = Release(Ecosystem.NPM, "pad2", "1.0.1", artifacts=cand.artifacts)
    variants = {
        "limits": key_of(base, cand, ArchiveLimits(max_files=10)),
        "digest": key_of(base, sha256),
        "baseline bytes": key_of(release("1.0.0", OLD + b"\0"), cand),
        "version": key_of(base, Release(Ecosystem.NPM, "pad", "1.0.2", artifacts=cand.artifacts)),
        "package": key_of(base, renamed),
        "sides": key_of(cand, base),
    }
    monkeypatch.setattr(rc, "__version__", "0.0.0-other")
    variants["custody version"] = key_of(base, cand)
    monkeypatch.undo()
    monkeypatch.setattr(rc, "COMPARISON_FORMAT", COMPARISON_FORMAT + 1)
    variants["format"] = key_of(base, cand)
    assert all(v is not None and v != key for v in variants.values()), variants
    assert len(set(variants.values())) == len(variants)


def test_no_strong_digest_no_cache(results: ComparisonCache) -> None:
    """sha1 (older npm ``shasum``) does not name the bytes well enough: nothing is stored."""
    base = release("1.0.0", OLD, sha1=hashlib.sha1(OLD).hexdigest())
    cand = release("1.0.1", NEW)
    assert key_of(base, cand) is None
    first = compare(Client(served((base, OLD), (cand, NEW))), base, cand, results)
    assert first.comparison is not None
    assert entries(results.root) == []
    client = Client(served((base, OLD), (cand, NEW)))
    assert compare(client, base, cand, results) == first
    assert len(client.calls) == 2


def _flip(raw: bytes) -> bytes:
    """One letter of a file name changed: the entry still decodes, only the checksum tells."""
    i = raw.index(b"index.js", 40)  # past the checksum and the key
    return raw[:i] + b"X" + raw[i + 1 :]


def _bad_status(raw: bytes) -> bytes:
    """A FileChange's status that is not one of its Literal values."""
    i = raw.index(b"changed", raw.index(b"status"))
    return raw[:i] + b"C" + raw[i + 1 :]


def _resealed(body: bytes) -> bytes:
    return hashlib.sha256(body).digest() + body


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda raw: b"", id="empty"),
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated"),
        pytest.param(lambda raw: raw[:20], id="shorter-than-checksum"),
        pytest.param(lambda raw: b"\xc1garbage" * 8, id="garbage"),
        pytest.param(_flip, id="flipped-byte"),
        pytest.param(lambda raw: _resealed(b"\xc1"), id="sealed-garbage"),
        pytest.param(lambda raw: _resealed(msgspec.msgpack.encode({"key": 1})), id="wrong-shape"),
        pytest.param(lambda raw: _resealed(_bad_status(raw)[32:]), id="sealed-invalid-field"),
        pytest.param(lambda raw: _resealed(raw[32:-10]), id="sealed-truncated"),
    ],
)
def test_a_damaged_entry_is_recomputed(
    results: ComparisonCache, damage: Callable[[bytes], bytes]
) -> None:
    base, cand = release("1.0.0", OLD), release("1.0.1", NEW)
    first = compare(Client(served((base, OLD), (cand, NEW))), base, cand, results)
    (entry,) = entries(results.root)
    entry.write_bytes(damage(entry.read_bytes()))
    client = Client(served((base, OLD), (cand, NEW)))
    again = compare(client, base, cand, results)
    assert len(client.calls) == 2, "the damaged entry was not recomputed"
    assert again == first
    # and stored again, whole
    assert compare(Client({}, fail=True), base, cand, results) == first


def test_an_entry_under_another_key_is_not_a_verdict(results: ComparisonCache) -> None:
    """A valid entry of a clean comparison, copied under the key of a malicious one, is
    ignored: the malicious release is compared again and its flags found."""
    clean = tgz({"package.json": b'{"name":"pad","version":"1.0.1"}', "index.js": INDEX + b"//\n"})
    base, good, bad = release("1.0.0", OLD), release("1.0.1", clean), release("1.0.1", NEW)
    compare(Client(served((base, OLD), (good, clean))), base, good, results)
    (good_entry,) = entries(results.root)
    bad_key = cast(str, key_of(base, bad))
    results.path(bad_key).parent.mkdir(parents=True, exist_ok=True)
    results.path(bad_key).write_bytes(good_entry.read_bytes())
    client = Client(served((base, OLD), (bad, NEW)))
    outcome = compare(client, base, bad, results)
    assert len(client.calls) == 2
    assert outcome.comparison is not None and outcome.comparison.flags


def test_an_integrity_mismatch_is_not_cached(results: ComparisonCache) -> None:
    base, cand = release("1.0.0", OLD), release("1.0.1", NEW)
    tampered = served((base, OLD), (cand, NEW + b"\0"))
    first = compare(Client(tampered), base, cand, results)
    assert first.error is not None and first.error.rule == "content.integrity-mismatch"
    assert entries(results.root) == []
    client = Client(tampered)
    assert compare(client, base, cand, results) == first
    assert len(client.calls) == 2
    # the honest bytes are compared, not answered with the earlier mismatch
    honest = compare(Client(served((base, OLD), (cand, NEW))), base, cand, results)
    assert honest.comparison is not None and honest.error is None


def test_an_unsafe_archive_refusal_is_cached(
    results: ComparisonCache, no_reading: Callable[[], None]
) -> None:
    base, cand = release("1.0.0", OLD), release("1.0.1", UNSAFE)
    first = compare(Client(served((base, OLD), (cand, UNSAFE))), base, cand, results)
    assert first.error is not None and first.error.rule == "content.unsafe-archive"
    assert first.error.severity is Severity.HIGH
    assert first.error.evidence["reason"] == "path-traversal"
    assert len(entries(results.root)) == 1
    no_reading()
    second = compare(Client({}, fail=True), base, cand, results)
    assert second == first
    assert second.error is not None and second.error.severity is Severity.HIGH


def test_nothing_comparable_is_not_cached(results: ComparisonCache) -> None:
    base = release("1.0.0", OLD)
    cand = Release(Ecosystem.NPM, "pad", "1.0.1")
    outcome = compare(Client({}, fail=True), base, cand, results)
    assert outcome.note and outcome.comparison is None and outcome.error is None
    assert not results.root.exists()


def test_an_unwritable_cache_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    results = ComparisonCache(blocker / "comparisons")
    base, cand = release("1.0.0", OLD), release("1.0.1", NEW)
    outcome = compare(Client(served((base, OLD), (cand, NEW))), base, cand, results)
    assert outcome.comparison is not None


def test_it_lives_beside_the_artifact_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTODY_CACHE_DIR", str(tmp_path))
    assert ArtifactCache().root == tmp_path / "artifacts"
    assert ComparisonCache().root == tmp_path / "comparisons"


def test_a_hit_does_not_import_the_archive_reader(tmp_path: Path) -> None:
    """A run whose comparisons all come from the cache imports neither the archive reader
    (tarfile and friends), nor the comparison heuristics, nor the fingerprint machinery."""
    base, cand = release("1.0.0", OLD), release("1.0.1", NEW)
    results = ComparisonCache(tmp_path / "comparisons")
    expected = compare(Client(served((base, OLD), (cand, NEW))), base, cand, results)
    assert expected.comparison is not None
    script = textwrap.dedent(
        """
        import asyncio, json, pathlib, sys
        import custody.engine  # what `custody check` imports
        from custody.content.results_cache import ComparisonCache
        from custody.content.review import compare_releases
        from custody.model import Artifact, Ecosystem, Release

        class Offline:
            async def get(self, url, **kw):
                raise AssertionError("downloaded " + url)

        def release(version, integrity):
            art = Artifact(f"pad-{version}.tgz", url=f"https://registry.invalid/pad-{version}.tgz",
                           integrity=integrity, kind="tarball")
            return Release(Ecosystem.NPM, "pad", version, artifacts=(art,))

        root, old, new = sys.argv[1:]
        outcome = asyncio.run(compare_releases(
            Offline(), release("1.0.0", old), release("1.0.1", new), registry="x",
            results=ComparisonCache(pathlib.Path(root)),
        ))
        print(json.dumps({
            "flags": len(outcome.comparison.flags),
            "modules": sorted(m for m in sys.modules if m.startswith(
                ("custody.content.archive", "custody.content.compare",
                 "custody.content.heuristics", "custody.fingerprint.check", "tarfile"))),
        }))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(results.root), sri(OLD), sri(NEW)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    report = json.loads(done.stdout)
    assert report["flags"] == len(expected.comparison.flags)
    assert report["modules"] == []
