"""The TLS context: built once per set of CA bundles, in a thread, started when a run will ask
a registry (``RegistryClient.preload``) and not when its cache answers everything."""

from __future__ import annotations

import ssl
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from custody.registries import tls
from custody.registries.base import CachedResponse
from custody.registries.http import HttpOptions, RegistryClient
from custody.registries.tls import ssl_context, ssl_context_soon

from .conftest import MemoryCache

URL = "https://registry.example/left-pad"


def test_one_build_per_set_of_bundles_shared_by_every_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[tls.Versions] = []
    real = tls._Build

    def counting(versions: tls.Versions) -> tls._Build:
        built.append(versions)
        return real(versions)

    monkeypatch.setattr(tls, "_Build", counting)
    monkeypatch.setattr(tls, "_builds", {})
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")  # not a CA bundle: ignored with a warning
    soon = ssl_context_soon((str(bundle),))
    assert isinstance(soon(), ssl.SSLContext)
    assert ssl_context((str(bundle),)) is soon() is ssl_context_soon((str(bundle),))()
    assert len(built) == 1
    bundle.write_text(" ")  # changed: a new context
    assert ssl_context((str(bundle),)) is not soon()
    assert len(built) == 2


def test_the_table_of_contexts_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tls, "_builds", {})
    for i in range(tls._KEPT + 3):
        ssl_context((str(tmp_path / f"missing-{i}.pem"),))
    assert len(tls._builds) == tls._KEPT


def test_a_failed_build_raises_where_the_context_is_wanted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> ssl.SSLContext:
        raise ssl.SSLError("no trust store")

    monkeypatch.setattr(tls.ssl, "create_default_context", broken)
    monkeypatch.setattr(tls, "_builds", {})
    get = ssl_context_soon(())
    with pytest.raises(ssl.SSLError, match="no trust store"):
        get()


@pytest.mark.parametrize(
    ("cached", "offline", "starts"),
    [
        (None, False, True),  # nothing cached: a request follows
        ("stale", False, True),  # a revalidation follows
        ("fresh", False, False),  # answered from the cache
        (None, True, False),  # offline: no request ever
    ],
)
def test_preload_starts_the_tls_build_only_when_a_request_follows(
    monkeypatch: pytest.MonkeyPatch, cached: str | None, offline: bool, starts: bool
) -> None:
    started: list[tuple[str, ...]] = []
    monkeypatch.setattr(
        "custody.registries.http.ssl_context_soon", lambda ca: started.append(ca) or (lambda: None)
    )
    cache = MemoryCache()
    if cached is not None:
        fetched = datetime.now(UTC) if cached == "fresh" else datetime(2020, 1, 1, tzinfo=UTC)
        cache.entries[URL] = CachedResponse(
            url=URL, status=200, body=b"{}", fetched_at=fetched, fresh_for=300.0
        )
    options = HttpOptions(offline=offline, ca_files=("a.pem",), honor_cache_control=True)
    client = RegistryClient(cache, options)
    client.preload([URL])
    assert started == ([("a.pem",)] if starts else [])


_EXIT_DURING_BUILD = """
import ssl, sys, time
from custody.registries import tls

real = ssl.create_default_context

def slow():
    time.sleep(0.5)  # still building when the process exits
    context = real()
    open(sys.argv[1], "w").write("built")
    return context

ssl.create_default_context = slow
tls.ssl_context_soon(())
raise SystemExit(1)  # an error right after the build started (e.g. a bad registry URL)
"""


def test_a_process_that_exits_during_the_build_waits_for_it(tmp_path: Path) -> None:
    """The interpreter must not finalize under a thread still inside OpenSSL (a daemon thread
    there crashed the process, exit 139): it waits for the build, then exits as it meant to."""
    done = tmp_path / "built"
    script = tmp_path / "exit_early.py"
    script.write_text(_EXIT_DURING_BUILD)
    ended = subprocess.run(
        [sys.executable, str(script), str(done)], capture_output=True, timeout=60, check=False
    )
    assert ended.returncode == 1, ended.stderr
    assert done.read_text() == "built"
