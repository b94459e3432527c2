"""The Python index reader against documents served on loopback: a captured Warehouse project
(JSON simple API + project JSON with ownership), HTML-only and relative-URL indexes, PEP 658
metadata and the wheel fallback."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from custody.errors import PackageNotFound, RegistryUnavailable
from custody.model import Custodian, DeclaredDependency, Ecosystem, OwnerRole, PackageHistory
from custody.registries.facade import make_readers
from custody.registries.pypi import PypiReader
from custody.registries.pypi_metadata import dependencies_from_metadata
from custody.registries.pypi_simple import file_version, parse_simple
from custody.registries.settings import PypiSettings, RegistrySettings
from tests.support.publish import build_sdist, build_wheel

from .conftest import FAST, MemoryCache, run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pypi"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


async def read(
    index: str,
    name: str,
    enrich: list[str] | None = None,
    cache: MemoryCache | None = None,
) -> tuple[PackageHistory, PypiReader]:
    settings = RegistrySettings(pypi=PypiSettings(index_url=index, source="test"))
    async with make_readers(settings, cache, options=FAST) as regs:
        reader = regs.readers[Ecosystem.PYPI]
        assert isinstance(reader, PypiReader)
        history = await reader.history(name)
        if enrich is not None:
            history = await reader.enrich(history, enrich)
        return history, reader


def serve_warehouse(server: HTTPServer, *, etag: bool = False) -> str:
    base = server.url_for("/")[:-1]

    def text(name: str) -> str:
        raw = (FIXTURES / name).read_text()
        return raw.replace("https://files.registry.example", base + "/files").replace(
            "https://registry.example", base
        )

    headers = {"ETag": '"w1"'} if etag else {}
    if etag:
        for path in ("/simple/pypi-attestations/", "/pypi/pypi-attestations/json"):
            server.expect_request(path, headers={"If-None-Match": '"w1"'}).respond_with_data(
                "", status=304
            )
    server.expect_request("/simple/pypi-attestations/").respond_with_data(
        text("pypi-attestations.simple.json"), content_type=JSON_TYPE, headers=headers
    )
    server.expect_request("/pypi/pypi-attestations/json").respond_with_data(
        text("pypi-attestations.project.json"), content_type="application/json", headers=headers
    )
    return base + "/simple/"


def test_warehouse_project(httpserver: HTTPServer) -> None:
    index = serve_warehouse(httpserver)
    history, _ = run(read(index, "PyPI_Attestations"))
    assert history.name == "pypi-attestations"
    assert history.registry == index
    project = json.loads((FIXTURES / "pypi-attestations.project.json").read_text())
    assert {r.version for r in history.releases} == set(project["releases"])
    assert history.organization == "trailofbits"
    assert history.current_owners is not None
    assert history.current_owners[0] == OwnerRole(Custodian("pypi:org/trailofbits"), "organization")
    roles = {(o.custodian.id, o.role) for o in history.current_owners[1:]}
    assert roles == {(f"pypi:user/{r['user']}", r["role"]) for r in project["ownership"]["roles"]}
    assert history.repository == "https://github.com/pypi/pypi-attestations"
    times = [r.published_at for r in history.releases]
    assert None not in times and times == sorted(times)  # type: ignore[type-var]
    latest = history.release(project["info"]["version"])
    assert latest is not None and latest.publisher is None  # PyPI never names an uploader
    files = project["releases"][latest.version]
    assert {a.filename for a in latest.artifacts} == {f["filename"] for f in files}
    wheel = next(a for a in latest.artifacts if a.kind == "wheel")
    expected = next(f for f in files if f["filename"] == wheel.filename)
    assert wheel.digests["sha256"] == expected["digests"]["sha256"]
    assert wheel.digests["blake2b_256"] == expected["digests"]["blake2b_256"]
    assert wheel.url is not None and wheel.url.startswith(httpserver.url_for("/files/"))
    assert wheel.size == expected["size"]
    assert latest.dependencies is None  # only enrich() fetches them


def test_warehouse_304_reuses_the_derived_history(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = serve_warehouse(httpserver, etag=True)
    cache = MemoryCache()
    first, _ = run(read(index, "pypi-attestations", cache=cache))

    def no_build(*_a: object, **_k: object) -> PackageHistory:
        raise AssertionError("unchanged documents must not be rebuilt")

    monkeypatch.setattr(PypiReader, "_build", no_build)
    second, _ = run(read(index, "pypi-attestations", cache=cache))
    assert second.releases == first.releases
    assert second.current_owners == first.current_owners
    assert [resp.status_code for _req, resp in httpserver.log[-2:]] == [304, 304]


def test_project_json_is_optional(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/simple/lonely/").respond_with_json(
        {"meta": {"api-version": "1.0"}, "name": "lonely", "files": []}
    )
    httpserver.expect_request("/pypi/lonely/json").respond_with_data("", status=404)
    httpserver.expect_request("/simple/htmlproxy/").respond_with_json(
        {"meta": {"api-version": "1.0"}, "name": "htmlproxy", "files": []}
    )
    httpserver.expect_request("/pypi/htmlproxy/json").respond_with_data(
        "<html>an index UI</html>", content_type="text/html"
    )
    index = httpserver.url_for("/simple/")
    for name in ("lonely", "htmlproxy"):
        history, _ = run(read(index, name))
        assert history.releases == () and history.current_owners is None


def test_unknown_project(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/simple/nope/").respond_with_data("", status=404)
    with pytest.raises(PackageNotFound):
        run(read(httpserver.url_for("/simple/"), "nope"))


HTML_PAGE = """<!DOCTYPE html>
<html><head><meta name="pypi:repository-version" content="1.1">
<meta name="pypi:project-status" content="quarantined"></head><body>
<a href="../../files/demo-1.0.tar.gz#sha256={sdist}">demo-1.0.tar.gz</a>
<a href="../../files/demo-1.0-py3-none-any.whl#sha256={wheel}" data-core-metadata="sha256=ab"
   data-provenance="../../files/demo-1.0-py3-none-any.whl.provenance">demo-1.0-py3-none-any.whl</a>
<a href="/files/demo-2.0.tar.gz" data-yanked="broken build">demo-2.0.tar.gz</a>
<a href="https://files.registry.example/x/Demo-0.9.zip"
   data-requires-python="&gt;=3.8">Demo-0.9.zip</a>
</body></html>"""


def test_html_only_index_with_relative_urls(httpserver: HTTPServer) -> None:
    page = HTML_PAGE.format(sdist="aa" * 32, wheel="bb" * 32)
    httpserver.expect_request("/root/simple/demo/").respond_with_data(
        page, content_type="text/html; charset=utf-8"
    )
    httpserver.expect_request("/root/pypi/demo/json").respond_with_data("", status=404)
    history, _ = run(read(httpserver.url_for("/root/simple/"), "demo"))
    assert [r.version for r in history.releases] == ["0.9", "1.0", "2.0"]
    old, current, yanked = history.releases
    assert old.artifacts[0].url == "https://files.registry.example/x/Demo-0.9.zip"
    sdist, wheel = sorted(current.artifacts, key=lambda a: a.filename)[::-1]
    assert wheel.url == httpserver.url_for("/root/files/demo-1.0-py3-none-any.whl")
    assert wheel.digests == {"sha256": "bb" * 32} and wheel.has_metadata
    assert wheel.has_attestations and not sdist.has_attestations
    assert current.provenance is not None and current.provenance.kind == "pep740"
    assert current.provenance.verified is None
    assert sdist.kind == "sdist" and not sdist.has_metadata
    assert yanked.yanked and yanked.yanked_reason == "broken build"
    assert history.deprecated == "project status: quarantined"


def test_json_page_with_relative_urls_and_pep700(httpserver: HTTPServer) -> None:
    doc = {
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "versions": ["1.0", "1.1", "2.0.0-rc1"],
        "project-status": {"status": "deprecated", "reason": "use demo2"},
        "files": [
            {
                "filename": "demo-1.0-py3-none-any.whl",
                "url": "../../files/demo-1.0-py3-none-any.whl",
                "hashes": {"sha256": "CC" * 32},
                "upload-time": "2024-01-02T03:04:05.000006Z",
                "core-metadata": {"sha256": "dd" * 32},
                "provenance": "https://files.registry.example/demo-1.0.provenance",
                "yanked": False,
                "size": 1234,
            },
            {
                "filename": "demo-2.0.0rc1.tar.gz",
                "url": "../../files/demo-2.0.0rc1.tar.gz",
                "hashes": {},
                "upload-time": "2025-01-01T00:00:00Z",
                "yanked": "oops",
            },
        ],
    }
    httpserver.expect_request("/a/simple/demo/").respond_with_json(doc)
    httpserver.expect_request("/a/pypi/demo/json").respond_with_data("", status=404)
    history, _ = run(read(httpserver.url_for("/a/simple/"), "demo"))
    by_version = {r.version: r for r in history.releases}
    assert set(by_version) == {"1.0", "1.1", "2.0.0rc1"}  # PEP 440 normalised
    assert by_version["1.1"].unpublished and by_version["1.1"].artifacts == ()
    first = by_version["1.0"]
    assert first.artifacts[0].url == httpserver.url_for("/a/files/demo-1.0-py3-none-any.whl")
    assert first.artifacts[0].digests == {"sha256": "cc" * 32}
    assert first.published_at is not None and first.published_at.microsecond == 6
    assert first.provenance is not None and first.artifacts[0].size == 1234
    assert by_version["2.0.0rc1"].yanked and by_version["2.0.0rc1"].yanked_reason == "oops"
    assert history.deprecated == "project status: deprecated (use demo2)"


@pytest.mark.parametrize(
    ("body", "ctype"),
    [(b"{not json", JSON_TYPE), (b'{"files": 3}', JSON_TYPE), (b"...", "application/zip")],
)
def test_garbage_simple_pages(httpserver: HTTPServer, body: bytes, ctype: str) -> None:
    httpserver.expect_request("/simple/junk/").respond_with_data(body, content_type=ctype)
    with pytest.raises(RegistryUnavailable, match="junk"):
        run(read(httpserver.url_for("/simple/"), "junk"))


# --------------------------------------------------------------------------- dependencies


def serve_dists(
    server: HTTPServer, tmp_path: Path, *, metadata: bool, advertise: bool = True
) -> str:
    """demo 1.0 (wheel + sdist), demo 2.0 (sdist only)."""
    wheel, meta = build_wheel(
        tmp_path, "demo", "1.0", requires_dist=["requests>=2", "colorama; sys_platform == 'win32'"]
    )
    sdist = build_sdist(tmp_path, "demo", "1.0")
    sdist2 = build_sdist(tmp_path, "demo", "2.0")
    files = []
    for path in (wheel, sdist, sdist2):
        entry: dict[str, Any] = {
            "filename": path.name,
            "url": f"../../files/{path.name}",
            "hashes": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
        }
        if metadata and path == wheel:
            entry["core-metadata"] = advertise
            server.expect_request(f"/files/{path.name}.metadata").respond_with_data(meta)
        else:
            server.expect_request(f"/files/{path.name}.metadata").respond_with_data("", status=404)
        server.expect_request(f"/files/{path.name}").respond_with_data(path.read_bytes())
        files.append(entry)
    server.expect_request("/simple/demo/").respond_with_json({"name": "demo", "files": files})
    server.expect_request("/pypi/demo/json").respond_with_data("", status=404)
    return server.url_for("/simple/")


EXPECTED_DEPS = (
    DeclaredDependency("requests", ">=2", "requires-dist"),
    DeclaredDependency("colorama", "", "requires-dist", 'sys_platform == "win32"'),
)


def requested(server: HTTPServer, suffix: str) -> int:
    return sum(1 for request, _ in server.log if request.path.endswith(suffix))


def test_enrich_from_pep658_metadata(httpserver: HTTPServer, tmp_path: Path) -> None:
    index = serve_dists(httpserver, tmp_path, metadata=True)
    history, reader = run(read(index, "demo", enrich=["1.0", "2.0"]))
    one, two = history.releases
    assert one.dependencies == EXPECTED_DEPS
    assert two.dependencies is None
    assert "sdist only" in reader.notes["pypi:demo@2.0"]
    assert requested(httpserver, ".whl") == 0  # the wheel itself was not downloaded


def test_enrich_tries_unadvertised_metadata(httpserver: HTTPServer, tmp_path: Path) -> None:
    index = serve_dists(httpserver, tmp_path, metadata=True, advertise=False)
    history, _ = run(read(index, "demo", enrich=["1.0"]))
    assert history.releases[0].dependencies == EXPECTED_DEPS
    assert requested(httpserver, ".whl") == 0


def test_enrich_falls_back_to_the_wheel(httpserver: HTTPServer, tmp_path: Path) -> None:
    index = serve_dists(httpserver, tmp_path, metadata=False)
    cache = MemoryCache()
    history, _ = run(read(index, "demo", enrich=["1.0"], cache=cache))
    assert history.releases[0].dependencies == EXPECTED_DEPS
    assert requested(httpserver, ".whl") == 1
    assert not any(e.url.endswith(".whl") for e in cache.entries.values())  # wheel not cached
    history, _ = run(read(index, "demo", enrich=["1.0"], cache=cache))
    assert history.releases[0].dependencies == EXPECTED_DEPS
    assert requested(httpserver, ".whl") == 1  # METADATA came from the cache this time


def test_tampered_wheel_is_refused(httpserver: HTTPServer, tmp_path: Path) -> None:
    wheel, _meta = build_wheel(tmp_path, "demo", "1.0")
    entry = {"filename": wheel.name, "url": f"/files/{wheel.name}", "hashes": {"sha256": "0" * 64}}
    httpserver.expect_request("/simple/demo/").respond_with_json({"files": [entry]})
    httpserver.expect_request("/pypi/demo/json").respond_with_data("", status=404)
    httpserver.expect_request(f"/files/{wheel.name}.metadata").respond_with_data("", status=404)
    httpserver.expect_request(f"/files/{wheel.name}").respond_with_data(wheel.read_bytes())
    with pytest.raises(RegistryUnavailable, match="sha256"):
        run(read(httpserver.url_for("/simple/"), "demo", enrich=["1.0"]))


def test_metadata_parsing() -> None:
    raw = (
        b"Metadata-Version: 2.3\nName: x\nVersion: 1\n"
        b"Requires-Dist: Foo_Bar[b,a] (>=1.0,<2)\n"
        b"Requires-Dist: pkg @ https://files.registry.example/pkg.whl ; python_version < '3.12'\n"
        b"Requires-Dist: !!! not pep 508\n\nbody"
    )
    deps = dependencies_from_metadata(raw)
    assert deps[0] == DeclaredDependency("foo-bar", "[a,b]<2,>=1.0", "requires-dist")
    assert deps[1].spec == "@ https://files.registry.example/pkg.whl"
    assert deps[1].marker == 'python_version < "3.12"'
    assert deps[2].spec == "!!! not pep 508"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("demo-1.0-py3-none-any.whl", ("1.0", "wheel")),
        ("demo-1.0.tar.gz", ("1.0", "sdist")),
        ("Demo_Pkg-2.0.0.post1.zip", ("2.0.0.post1", "sdist")),
        ("demo-pkg-1.0.tar.bz2", ("1.0", "sdist")),
        ("demo_pkg-1.0-py2.7.egg", ("1.0", "other")),
        ("unrelated-1.0.tar.bz2", (None, "sdist")),
    ],
)
def test_file_versions(filename: str, expected: tuple[str | None, str]) -> None:
    name = "demo" if filename.lower().startswith("demo-1") else "demo-pkg"
    assert file_version(filename, name) == expected


def test_parse_simple_prefers_json_even_when_mislabelled() -> None:
    page = parse_simple(b'{"files": []}', "text/html", "x", "http://127.0.0.1:1/simple/x/")
    assert page.files == ()
