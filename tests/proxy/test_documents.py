"""Filtering and rendering the documents clients resolve against (npm packuments, PEP 503/691
pages) and checking what clients send. Pure: no servers."""

from __future__ import annotations

import json

import orjson
import pytest

from custody.proxy.names import BadName, dist_filename, npm_name, pypi_name, tarball_filename
from custody.proxy.packument import abbreviate, filter_full, move_dist_tags, tarballs
from custody.proxy.simple import (
    HTML_V1,
    JSON_V1,
    TEXT_HTML,
    choose_format,
    parse_index,
    parse_project,
    render_html,
    render_json,
)
from custody.registries.urls import origin

UPSTREAM = "https://registry.example/"


def _manifest(name: str, version: str, **extra: object) -> dict[str, object]:
    tail = name.rsplit("/", 1)[-1]
    return {
        "name": name,
        "version": version,
        "_npmUser": {"name": "alice"},
        "scripts": {"test": "x"},
        "dist": {
            "tarball": f"{UPSTREAM}{name}/-/{tail}-{version}.tgz",
            "integrity": "sha512-AAAA",
            "shasum": "ab" * 20,
        },
        **extra,
    }


def _doc(name: str, versions: list[str], tags: dict[str, str]) -> dict[str, object]:
    return {
        "name": name,
        "dist-tags": tags,
        "versions": {v: _manifest(name, v) for v in versions},
        "time": {"created": "2020", "modified": "2024", **{v: "2021" for v in versions}},
        "readme": "hi",
        "_attachments": {},
    }


def test_dist_tags_move_to_the_newest_allowed_version_below() -> None:
    tags = {"latest": "1.0.6", "next": "2.0.0-beta.2", "old": "0.9.0", "gone": "0.1.0"}
    allowed = ["0.9.0", "1.0.4", "1.0.5", "2.0.0-beta.1", "1.1.0-rc.1"]
    assert move_dist_tags(tags, allowed) == {
        "latest": "1.0.5",  # not the newer prerelease
        "next": "2.0.0-beta.1",
        "old": "0.9.0",
    }
    assert move_dist_tags({"latest": "1.0.0"}, []) == {}


def test_full_document_drops_withheld_versions_everywhere() -> None:
    doc = _doc("kit", ["1.0.0", "1.0.1", "1.0.2"], {"latest": "1.0.2"})
    files, unusable = tarballs(doc, None)
    assert not unusable and set(files) == {"kit-1.0.0.tgz", "kit-1.0.1.tgz", "kit-1.0.2.tgz"}
    out = filter_full(doc, "kit", {"1.0.0", "1.0.1"}, files, "http://proxy:8080")
    assert sorted(out["versions"]) == ["1.0.0", "1.0.1"]
    assert "1.0.2" not in out["time"] and out["time"]["modified"] == "2024"
    assert out["dist-tags"] == {"latest": "1.0.1"}
    assert (
        out["versions"]["1.0.1"]["dist"]["tarball"] == "http://proxy:8080/npm/kit/-/kit-1.0.1.tgz"
    )
    assert doc["versions"]["1.0.1"]["dist"]["tarball"].startswith(UPSTREAM)  # not mutated
    assert "_attachments" not in out and out["readme"] == "hi"


def test_abbreviated_document() -> None:
    doc = _doc("@s/kit", ["1.0.0"], {"latest": "1.0.0"})
    doc["versions"]["1.0.0"]["scripts"] = {"postinstall": "node x"}  # type: ignore[index]
    files, _ = tarballs(doc, None)
    full = filter_full(doc, "@s/kit", {"1.0.0"}, files, "http://p")
    small = abbreviate(full)
    assert set(small) == {"name", "dist-tags", "modified", "versions"}
    version = small["versions"]["1.0.0"]
    assert version["hasInstallScript"] is True and "_npmUser" not in version
    assert version["dist"]["tarball"] == "http://p/npm/@s/kit/-/kit-1.0.0.tgz"


def test_tarballs_on_other_hosts_or_with_odd_names_are_not_served() -> None:
    doc = _doc("kit", ["1.0.0", "1.0.1", "1.0.2", "1.0.3"], {})
    versions = doc["versions"]
    versions["1.0.1"]["dist"]["tarball"] = "https://elsewhere.example/kit-1.0.1.tgz"  # type: ignore[index]
    versions["1.0.2"]["dist"]["tarball"] = f"{UPSTREAM}kit/-/..%2fkit.tgz"  # type: ignore[index]
    versions["1.0.3"]["dist"]["tarball"] = "file:///etc/passwd"  # type: ignore[index]
    files, unusable = tarballs(doc, {origin(UPSTREAM)})
    assert set(files) == {"kit-1.0.0.tgz"}
    assert unusable == {"1.0.1", "1.0.2", "1.0.3"}
    _files, anywhere = tarballs(doc, None)
    assert anywhere == {"1.0.2", "1.0.3"}


HTML_PAGE = b"""<!DOCTYPE html><html><head>
<meta name="pypi:repository-version" content="1.1"></head><body>
<a href="../../+f/aa/kit-1.0.0-py3-none-any.whl#sha256=aaaa" data-requires-python="&gt;=3.8"
   data-dist-info-metadata="sha256=bbbb">kit-1.0.0-py3-none-any.whl</a>
<a href="https://files.example/kit-1.0.1.tar.gz#sha256=cccc"
   data-yanked="broken">kit-1.0.1.tar.gz</a>
<a href="other-1.0.exe">other-1.0.exe</a>
</body></html>"""


def test_html_pages_keep_every_attribute_a_resolver_uses() -> None:
    page = parse_project(HTML_PAGE, "text/html", "kit", "https://index.example/u/i/+simple/kit/")
    wheel, sdist, odd = page.files
    assert wheel.url == "https://index.example/u/i/+f/aa/kit-1.0.0-py3-none-any.whl"
    assert wheel.hashes == {"sha256": "aaaa"} and wheel.requires_python == ">=3.8"
    assert wheel.core_metadata == {"sha256": "bbbb"} and wheel.version == "1.0.0"
    assert sdist.yanked == "broken" and sdist.version == "1.0.1"
    assert odd.version is None
    html = render_html(page, [wheel, sdist], "/pypi").decode()
    assert 'href="/pypi/files/kit/kit-1.0.0-py3-none-any.whl#sha256=aaaa"' in html
    assert 'data-requires-python="&gt;=3.8"' in html
    assert 'data-core-metadata="sha256=bbbb"' in html and 'data-yanked="broken"' in html
    again = parse_project(html.encode(), "text/html", "kit", "http://proxy/pypi/simple/kit/")
    assert [f.filename for f in again.files] == [wheel.filename, sdist.filename]
    assert again.files[0].requires_python == ">=3.8"


def test_json_pages_round_trip() -> None:
    doc = {
        "meta": {"api-version": "1.1"},
        "name": "Kit",
        "files": [
            {
                "filename": "kit-1.0.0-py3-none-any.whl",
                "url": "/files/kit-1.0.0-py3-none-any.whl",
                "hashes": {"sha256": "AAAA"},
                "requires-python": ">=3.9",
                "core-metadata": {"sha256": "bbbb"},
                "yanked": False,
                "size": 10,
                "upload-time": "2024-01-01T00:00:00Z",
            }
        ],
        "versions": ["1.0.0", "1.0.1"],
    }
    page = parse_project(orjson.dumps(doc), JSON_V1, "kit", "https://index.example/simple/kit/")
    [f] = page.files
    assert f.url == "https://index.example/files/kit-1.0.0-py3-none-any.whl"
    out = json.loads(render_json(page, page.files, ["1.0.0"], "/pypi"))
    assert out["name"] == "kit" and out["meta"]["api-version"] == "1.1"
    assert out["versions"] == ["1.0.0"]
    [entry] = out["files"]
    assert entry["url"] == "/pypi/files/kit/kit-1.0.0-py3-none-any.whl"
    assert entry["hashes"] == {"sha256": "aaaa"} and entry["requires-python"] == ">=3.9"
    assert entry["core-metadata"] == {"sha256": "bbbb"} == entry["data-dist-info-metadata"]
    assert entry["size"] == 10 and entry["upload-time"] == "2024-01-01T00:00:00Z"
    assert parse_index(b'{"projects": [{"name": "a"}, {"name": "b"}]}', JSON_V1) == ["a", "b"]


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, TEXT_HTML),
        ("*/*", TEXT_HTML),
        (JSON_V1, JSON_V1),
        (f"{JSON_V1}, {HTML_V1};q=0.2, text/html;q=0.1", JSON_V1),
        (f"{JSON_V1};q=0.1, {HTML_V1}", HTML_V1),
        ("application/vnd.pypi.simple.latest+json", JSON_V1),
        ("image/png", None),
        (f"{JSON_V1};q=0", None),
    ],
)
def test_pep691_negotiation(accept: str | None, chosen: str | None) -> None:
    assert choose_format(accept) == chosen


def test_names() -> None:
    assert npm_name(["left-pad"]) == "left-pad"
    assert npm_name(["@scope", "pkg"]) == "@scope/pkg"
    assert npm_name(["JSONStream"]) == "JSONStream"
    for bad in (["..", "x"], [".x"], ["_x"], ["a b"], ["@s", ".."], ["@", "x"], ["node_modules"]):
        with pytest.raises(BadName):
            npm_name(bad)
    with pytest.raises(BadName):
        npm_name(["a" * 215])
    assert pypi_name("Stream_Kit.Two") == "stream-kit-two"
    for bad in ("-x", "x-", "a/b", "..", "a b", ""):
        with pytest.raises(BadName):
            pypi_name(bad)
    assert tarball_filename("kit-1.0.0.tgz") == "kit-1.0.0.tgz"
    assert dist_filename("kit-1.0.0+local-py3-none-any.whl")
    for bad in ("../x.tgz", "x.tar", ".tgz"):
        with pytest.raises(BadName):
            tarball_filename(bad)
    with pytest.raises(BadName):
        dist_filename("a..b")
