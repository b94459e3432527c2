"""The Python index reader against documents served on loopback: a captured Warehouse project
(JSON simple API + project JSON with ownership), HTML-only and relative-URL indexes, PEP 658
metadata and the wheel fallback."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from custody.errors import PackageNotFound, RegistryUnavailable
from custody.model import Custodian, DeclaredDependency, Ecosystem, OwnerRole, PackageHistory
from custody.registries.facade import make_readers
from custody.registries.http import HttpOptions
from custody.registries.pypi import PypiReader
from custody.registries.pypi_json import parse_devpi_acl, parse_devpi_project
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
    options: HttpOptions = FAST,
) -> tuple[PackageHistory, PypiReader]:
    settings = RegistrySettings(pypi=PypiSettings(index_url=index, source="test"))
    async with make_readers(settings, cache, options=options) as regs:
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


# --------------------------------------------------------------------------- hunt findings


def sha256(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def metadata_entry(wheel: Path, meta: str, url: str) -> dict[str, Any]:
    return {
        "filename": wheel.name,
        "url": url,
        "hashes": {"sha256": sha256(wheel.read_bytes())},
        "core-metadata": {"sha256": sha256(meta)},
    }


def test_a_redirected_simple_page_resolves_its_files_alike_from_the_cache(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Relative file URLs resolve against where the page came from after the redirect, also
    when a fresh cache entry answers and the page is parsed again (a newer parser)."""
    wheel, meta = build_wheel(tmp_path, "demo", "1.0", requires_dist=["evil-dep>=1"])
    moved = "/other/deep/simple/demo/"
    httpserver.expect_request("/simple/demo/").respond_with_data(
        "", status=302, headers={"Location": moved}
    )
    httpserver.expect_request(moved).respond_with_json(
        {"files": [metadata_entry(wheel, meta, f"../../files/{wheel.name}")]},
        headers={"Cache-Control": "max-age=600"},
    )
    httpserver.expect_request("/pypi/demo/json").respond_with_data("", status=404)
    httpserver.expect_request(f"/other/deep/files/{wheel.name}.metadata").respond_with_data(meta)
    index = httpserver.url_for("/simple/")
    honour = dataclasses.replace(FAST, honor_cache_control=True)
    cache = MemoryCache()
    cold, _ = run(read(index, "demo", enrich=["1.0"], cache=cache, options=honour))
    for url, entry in list(cache.entries.items()):
        cache.entries[url] = dataclasses.replace(entry, derived=None, derived_version=None)
        if url.endswith(".metadata"):
            del cache.entries[url]
    warm, _ = run(read(index, "demo", enrich=["1.0"], cache=cache, options=honour))
    assert requested(httpserver, moved) == 1  # the warm run used the fresh cached page
    file_url = httpserver.url_for(f"/other/deep/files/{wheel.name}")
    for history in (cold, warm):
        assert history.releases[0].artifacts[0].url == file_url
        assert history.releases[0].dependencies == (
            DeclaredDependency("evil-dep", ">=1", "requires-dist"),
        )


@pytest.mark.parametrize("warm", [False, True], ids=["parsed-page", "cached-history"])
def test_pep658_metadata_must_match_the_hash_on_the_simple_page(
    httpserver: HTTPServer, tmp_path: Path, warm: bool
) -> None:
    """Metadata that hides a dependency is garbage: retried, then the registry is unavailable
    (exit 3), and it is never cached. A warm run whose history comes from the cache checks it
    the same way."""
    wheel, meta = build_wheel(tmp_path, "demo", "1.0", requires_dist=["evil-dep>=1"])
    tampered = meta.replace("Requires-Dist: evil-dep>=1\n", "")
    assert tampered != meta
    entry = metadata_entry(wheel, meta, f"/files/{wheel.name}")
    httpserver.expect_request("/simple/demo/", headers={"If-None-Match": '"p1"'}).respond_with_data(
        "", status=304
    )
    httpserver.expect_request("/simple/demo/").respond_with_json(
        {"files": [entry]}, headers={"ETag": '"p1"'}
    )
    httpserver.expect_request("/pypi/demo/json").respond_with_data("", status=404)
    httpserver.expect_request(f"/files/{wheel.name}.metadata").respond_with_data(tampered)
    index = httpserver.url_for("/simple/")
    cache = MemoryCache()
    if warm:
        run(read(index, "demo", cache=cache))  # the history is cached; its metadata is not
    with pytest.raises(RegistryUnavailable, match="metadata does not match its sha256") as info:
        run(read(index, "demo", enrich=["1.0"], cache=cache))
    assert info.value.registry == index
    assert requested(httpserver, ".metadata") == 3
    assert not any(url.endswith(".metadata") for url in cache.entries)


def test_pep658_metadata_that_matches_its_hash_is_used(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    wheel, meta = build_wheel(tmp_path, "demo", "1.0", requires_dist=["evil-dep>=1"])
    entry = metadata_entry(wheel, meta, f"/files/{wheel.name}")
    entry["data-dist-info-metadata"] = entry.pop("core-metadata")  # the older name (PEP 714)
    httpserver.expect_request("/simple/demo/").respond_with_json({"files": [entry]})
    httpserver.expect_request("/pypi/demo/json").respond_with_data("", status=404)
    httpserver.expect_request(f"/files/{wheel.name}.metadata").respond_with_data(meta)
    history, _ = run(read(httpserver.url_for("/simple/"), "demo", enrich=["1.0"]))
    assert history.releases[0].dependencies == (
        DeclaredDependency("evil-dep", ">=1", "requires-dist"),
    )


def test_html_pages_give_the_metadata_hash() -> None:
    page = parse_simple(
        b'<a href="/f/demo-1.0-py3-none-any.whl" data-core-metadata="sha256=AB12">x</a>'
        b'<a href="/f/demo-1.0.tar.gz" data-dist-info-metadata>demo-1.0.tar.gz</a>',
        "text/html",
        "demo",
        "http://127.0.0.1:1/simple/demo/",
    )
    wheel, sdist = page.files
    assert wheel.metadata_hashes == {"sha256": "ab12"} and wheel.has_metadata
    assert sdist.metadata_hashes == {} and sdist.has_metadata


EDGE_TIMES = ["9999-12-31T23:59:59-10:00", "0001-01-01T00:00:00+10:00"]


def test_wrong_shapes_in_a_simple_page_are_ignored(httpserver: HTTPServer) -> None:
    doc = {
        "project-status": {"status": ["archived"], "reason": {"why": 1}},
        "files": [
            {"filename": "demo-1.0-py3-none-any.whl", "url": "http://[bad/demo.whl"},
            {"filename": "demo-1.0-py2-none-any.whl", "url": "http://127.0.0.1:99999/d.whl"},
            {
                "filename": "demo-1.0.tar.gz",
                "url": "../../files/demo-1.0.tar.gz",
                "provenance": "http://[bad/demo-1.0.tar.gz.provenance",
                "upload-time": EDGE_TIMES[0],
            },
            {
                "filename": "demo-0.9.tar.gz",
                "url": "/f/demo-0.9.tar.gz",
                "upload-time": EDGE_TIMES[1],
            },
        ],
    }
    httpserver.expect_request("/simple/demo/").respond_with_json(doc)
    httpserver.expect_request("/pypi/demo/json").respond_with_data("", status=404)
    history, _ = run(read(httpserver.url_for("/simple/"), "demo"))
    assert history.deprecated is None
    old, current = history.releases
    assert [a.filename for a in current.artifacts] == ["demo-1.0.tar.gz"]  # bad URLs skipped
    assert not current.artifacts[0].has_attestations and current.provenance is None
    assert current.published_at is None and old.published_at is None


def test_an_html_page_with_unparseable_links_keeps_the_others() -> None:
    page = parse_simple(
        b'<base href="http://[bad/"><a href="http://[bad/demo-2.0.tar.gz">demo-2.0.tar.gz</a>'
        b'<a href="http://[bad/demo-3.0.tar.gz"></a>'
        b'<a href="../../f/demo-1.0.tar.gz" data-provenance="http://[x">demo-1.0.tar.gz</a>',
        "text/html",
        "demo",
        "http://127.0.0.1:1/simple/demo/",
    )
    (only,) = page.files
    assert only.url == "http://127.0.0.1:1/f/demo-1.0.tar.gz" and only.provenance_url is None


@pytest.mark.parametrize(
    "ownership",
    [{"roles": 5}, {"organization": "acme", "roles": "alice"}, {"roles": {"user": "x"}}],
)
def test_wrong_shapes_in_project_json_give_unknown_owners(
    httpserver: HTTPServer, ownership: dict[str, Any]
) -> None:
    httpserver.expect_request("/simple/demo/").respond_with_json({"files": []})
    release = {
        "filename": "demo-1.0.tar.gz",
        "url": "http://[bad/demo-1.0.tar.gz",
        "upload_time_iso_8601": EDGE_TIMES[0],
    }
    httpserver.expect_request("/pypi/demo/json").respond_with_json(
        {"ownership": ownership, "releases": {"1.0": [release]}}
    )
    history, _ = run(read(httpserver.url_for("/simple/"), "demo"))
    assert history.current_owners is None
    (only,) = history.releases
    assert only.artifacts[0].url is None and only.published_at is None


def test_wrong_shapes_in_devpi_json_are_ignored() -> None:
    project = parse_devpi_project(
        {
            "result": {
                "1.0": {"+links": 5},
                "1.1": {"+links": [{"rel": "releasefile", "href": "http://[bad/demo-1.1.tar.gz"}]},
            }
        }
    )
    assert project.files == {} and project.versions == {"1.0", "1.1"}
    assert parse_devpi_acl({"result": {"acl_upload": "alice"}}, "owner") is None
    assert parse_devpi_acl({"result": {"acl_upload": 3}}, "owner") is None


@pytest.mark.parametrize("body", ["[1, 2]", "null", '"text"'])
def test_project_json_that_is_not_an_object_is_garbage(httpserver: HTTPServer, body: str) -> None:
    """As a packument that is not an object: retried, then the registry is unavailable (exit
    3). Only a 404 or a non-JSON answer means the index has no project JSON."""
    httpserver.expect_request("/simple/demo/").respond_with_json({"files": []})
    httpserver.expect_request("/pypi/demo/json").respond_with_data(
        body, content_type="application/json"
    )
    index = httpserver.url_for("/simple/")
    with pytest.raises(RegistryUnavailable, match="not a JSON object") as info:
        run(read(index, "demo"))
    assert info.value.registry == index
    assert requested(httpserver, "/pypi/demo/json") == 3
