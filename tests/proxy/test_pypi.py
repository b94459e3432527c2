"""The firewall in front of a real devpi, driven by the real pip and uv.

``cp-stream-kit`` on index ``alice/cpproxy``: alice uploads 1.0.0 (a wheel with
``Requires-Python`` and an sdist); mallory is then given upload rights and uploads 1.0.1. devpi
stamps uploads with its own clock, so the trust file turns the cooldown off."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest

from tests.proxy.helpers import Proxy, pip, running_proxy, uv
from tests.support.publish import build_sdist, build_wheel, publish_pypi
from tests.support.servers import Devpi

pytestmark = pytest.mark.registry

INDEX = "alice/cpproxy"
KIT = "cp-stream-kit"
TRUST = f"""\
[policy]
cooldown = "0"

[[trusted."pypi:{KIT}"]]
custodian = "pypi:user/alice"
"""
JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def index(devpi: Devpi, tmp_path_factory: pytest.TempPathFactory) -> str:
    devpi.create_user("alice")
    devpi.create_user("mallory")
    devpi.create_index(INDEX, acl_upload=["alice"])
    out = tmp_path_factory.mktemp("dists")
    wheel, _meta = build_wheel(out, KIT, "1.0.0")
    sdist = build_sdist(out, KIT, "1.0.0")
    for path, filetype in ((wheel, "bdist_wheel"), (sdist, "sdist")):
        devpi.upload(
            INDEX,
            path,
            user="alice",
            metadata={
                "protocol_version": "1",
                "metadata_version": "2.1",
                "name": KIT,
                "version": "1.0.0",
                "requires_python": ">=3.8",
                "filetype": filetype,
                "pyversion": "py3" if filetype == "bdist_wheel" else "source",
                "sha256_digest": hashlib.sha256(path.read_bytes()).hexdigest(),
            },
        )
    devpi.set_acl_upload(INDEX, ["alice", "mallory"])
    publish_pypi(devpi, INDEX, KIT, "1.0.1", uploader="mallory", out_dir=out / "m")
    return devpi.simple_url(INDEX)


def _installed(target: Path) -> list[str]:
    return sorted(p.name for p in target.glob("cp_stream_kit-*.dist-info"))


def test_simple_pages_without_the_held_release(index: str, tmp_path: Path) -> None:
    with running_proxy(tmp_path, pypi=index, trust=TRUST) as proxy, proxy.http() as client:
        page = client.get(f"/pypi/simple/{KIT}/", headers={"Accept": JSON})
        assert page.status_code == 200, page.text
        assert page.headers["content-type"] == JSON
        doc = page.json()
        names = sorted(f["filename"] for f in doc["files"])
        assert names == ["cp_stream_kit-1.0.0-py3-none-any.whl", "cp_stream_kit-1.0.0.tar.gz"]
        wheel = next(f for f in doc["files"] if f["filename"].endswith(".whl"))
        assert wheel["url"] == f"/pypi/files/{KIT}/{wheel['filename']}"
        assert re.fullmatch(r"[0-9a-f]{64}", wheel["hashes"]["sha256"])
        assert wheel["requires-python"] == ">=3.8"
        assert wheel["core-metadata"]
        assert page.headers["x-custody-withheld"] == "1"

        html = client.get(f"/pypi/simple/{KIT}/", headers={"Accept": "text/html"})
        assert html.headers["content-type"].startswith("text/html")
        assert "1.0.1" not in html.text
        assert 'data-requires-python="&gt;=3.8"' in html.text
        assert f'href="/pypi/files/{KIT}/cp_stream_kit-1.0.0-py3-none-any.whl#sha256=' in html.text
        assert "data-core-metadata=" in html.text

        redirect = client.get("/pypi/simple/CP_Stream.Kit/")
        assert redirect.status_code == 301
        assert redirect.headers["location"] == f"/pypi/simple/{KIT}/"
        assert client.get("/pypi/simple/", headers={"Accept": JSON}).status_code == 200

        data = client.get(wheel["url"])
        assert data.status_code == 200
        assert hashlib.sha256(data.content).hexdigest() == wheel["hashes"]["sha256"]
        metadata = client.get(wheel["url"] + ".metadata")
        assert metadata.status_code == 200 and b"Name: cp-stream-kit" in metadata.content

        held = client.get(f"/pypi/files/{KIT}/cp_stream_kit-1.0.1-py3-none-any.whl")
        assert held.status_code == 403
        assert "custody.new-publisher" in held.json()["rules"]
        held_meta = client.get(f"/pypi/files/{KIT}/cp_stream_kit-1.0.1-py3-none-any.whl.metadata")
        assert held_meta.status_code == 403


def _approve(proxy: Proxy) -> None:
    response = proxy.admin("approve", f"pypi:{KIT}", "1.0.1")
    assert response.status_code == 200, response.text


def test_pip_installs_the_trusted_release_until_approval(index: str, tmp_path: Path) -> None:
    with running_proxy(tmp_path / "proxy", pypi=index, trust=TRUST) as proxy:
        home = tmp_path / "home"
        target = tmp_path / "t1"
        run = pip(proxy.simple, "install", "--target", str(target), KIT, home=home, cwd=tmp_path)
        assert run.code == 0, run.output
        assert _installed(target) == ["cp_stream_kit-1.0.0.dist-info"]
        exact = pip(
            proxy.simple, "install", "--target", str(tmp_path / "t2"), f"{KIT}==1.0.1",
            home=home, cwd=tmp_path,
        )  # fmt: skip
        assert exact.code != 0

        _approve(proxy)
        target = tmp_path / "t3"
        run = pip(proxy.simple, "install", "--target", str(target), KIT, home=home, cwd=tmp_path)
        assert run.code == 0, run.output
        assert _installed(target) == ["cp_stream_kit-1.0.1.dist-info"]


def test_uv_installs_the_trusted_release_until_approval(index: str, tmp_path: Path) -> None:
    with running_proxy(tmp_path / "proxy", pypi=index, trust=TRUST) as proxy:
        home = tmp_path / "home"
        target = tmp_path / "t1"
        run = uv(proxy.simple, "install", "--target", str(target), KIT, home=home, cwd=tmp_path)
        assert run.code == 0, run.output
        assert _installed(target) == ["cp_stream_kit-1.0.0.dist-info"]

        _approve(proxy)
        target = tmp_path / "t2"
        run = uv(
            proxy.simple, "install", "--refresh", "--target", str(target), KIT,
            home=home, cwd=tmp_path,
        )  # fmt: skip
        assert run.code == 0, run.output
        assert _installed(target) == ["cp_stream_kit-1.0.1.dist-info"]


def test_pep691_negotiation(index: str, tmp_path: Path) -> None:
    with running_proxy(tmp_path, pypi=index, trust=TRUST) as proxy, proxy.http() as client:
        url = f"/pypi/simple/{KIT}/"
        assert client.get(url).headers["content-type"].startswith("text/html")
        both = f"{JSON};q=0.5, application/vnd.pypi.simple.v1+html;q=0.9"
        assert (
            client.get(url, headers={"Accept": both})
            .headers["content-type"]
            .startswith("application/vnd.pypi.simple.v1+html")
        )
        assert client.get(url, headers={"Accept": "image/png"}).status_code == 406
        assert httpx.get(f"{proxy.url}/pypi/simple/{KIT}", trust_env=False).status_code == 301
