"""The Python reader against a real devpi-server (tests/support/servers.py): who uploaded each
file comes from devpi's own JSON, who may upload from the index ACL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from custody.errors import PackageNotFound
from custody.model import Custodian, DeclaredDependency, Ecosystem, OwnerRole, PackageHistory
from custody.registries.facade import make_readers
from custody.registries.settings import PypiSettings, RegistrySettings
from tests.support.publish import publish_pypi
from tests.support.servers import Devpi

from .conftest import FAST, MemoryCache, run

pytestmark = pytest.mark.registry

INDEX = "regowner/dev"


@pytest.fixture(scope="module")
def published(devpi: Devpi) -> Iterator[Devpi]:
    for user in ("regowner", "regalice", "regbob"):
        devpi.create_user(user)
    devpi.create_index(INDEX, acl_upload=["regowner", "regalice", "regbob"])
    publish_pypi(devpi, INDEX, "Reg_Demo", "1.0", uploader="regalice", requires_dist=["idna>=3"])
    publish_pypi(
        devpi,
        INDEX,
        "reg-demo",
        "1.1",
        uploader="regbob",
        requires_dist=["idna>=3", "attrs; python_version < '3.12'"],
    )
    yield devpi


async def read(
    devpi: Devpi, name: str, enrich: list[str] | None = None, cache: MemoryCache | None = None
) -> PackageHistory:
    settings = RegistrySettings(pypi=PypiSettings(index_url=devpi.simple_url(INDEX), source="t"))
    async with make_readers(settings, cache, options=FAST) as regs:
        reader = regs.readers[Ecosystem.PYPI]
        history = await reader.history(name)
        return await reader.enrich(history, enrich) if enrich else history


def test_devpi_sends_its_headers_and_json_shapes(published: Devpi) -> None:
    """What the reader relies on, checked against the live server."""
    with httpx.Client(trust_env=False, timeout=30) as client:
        simple = client.get(
            published.simple_url(INDEX) + "reg-demo/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        )
        project = client.get(
            published.index_url(INDEX) + "reg-demo", headers={"Accept": "application/json"}
        )
    assert simple.headers["content-type"].startswith("application/vnd.pypi.simple.v1+json")
    assert {"x-devpi-api-version", "x-devpi-server-version"} <= set(simple.headers)
    assert simple.json()["files"][0]["url"].startswith("../../+f/")  # relative file URLs
    link = project.json()["result"]["1.0"]["+links"][0]
    assert link["log"][0]["what"] == "upload" and link["log"][0]["who"] == "regalice"
    assert len(link["log"][0]["when"]) == 6


def test_devpi_history_names_the_uploaders(published: Devpi) -> None:
    history = run(read(published, "reg_demo"))
    assert history.name == "reg-demo"
    assert [r.version for r in history.releases] == ["1.0", "1.1"]
    first, second = history.releases
    assert first.publisher == Custodian.pypi_user("regalice")
    assert second.publisher == Custodian.pypi_user("regbob")
    assert all(a.uploader == second.publisher for a in second.artifacts)
    assert first.published_at is not None and second.published_at is not None
    assert first.published_at <= second.published_at
    assert {a.kind for a in first.artifacts} == {"wheel", "sdist"}
    assert all(a.url and a.url.startswith(published.url) for a in first.artifacts)
    assert all(len(a.digests["sha256"]) == 64 for a in first.artifacts)
    assert history.current_owners == (
        OwnerRole(Custodian.pypi_user("regowner"), "index-owner"),
        OwnerRole(Custodian.pypi_user("regowner"), "acl_upload"),
        OwnerRole(Custodian.pypi_user("regalice"), "acl_upload"),
        OwnerRole(Custodian.pypi_user("regbob"), "acl_upload"),
    )


def test_devpi_dependencies_from_core_metadata(published: Devpi) -> None:
    history = run(read(published, "reg-demo", enrich=["1.1"]))
    assert history.release("1.0") is not None
    assert history.release("1.0").dependencies is None  # type: ignore[union-attr]
    assert history.release("1.1").dependencies == (  # type: ignore[union-attr]
        DeclaredDependency("idna", ">=3", "requires-dist"),
        DeclaredDependency("attrs", "", "requires-dist", 'python_version < "3.12"'),
    )


def test_devpi_acl_change_shows_up(published: Devpi) -> None:
    published.create_user("regmallory")
    published.create_index("regowner/acl", acl_upload=["regowner"])
    publish_pypi(published, "regowner/acl", "reg-acl", "1.0", uploader="regowner")
    published.set_acl_upload("regowner/acl", ["regowner", "regmallory"])
    settings = RegistrySettings(
        pypi=PypiSettings(index_url=published.simple_url("regowner/acl"), source="t")
    )

    async def scenario() -> PackageHistory:
        async with make_readers(settings, None, options=FAST) as regs:
            return await regs.readers[Ecosystem.PYPI].history("reg-acl")

    owners = run(scenario()).current_owners or ()
    assert OwnerRole(Custodian.pypi_user("regmallory"), "acl_upload") in owners


def test_devpi_unknown_project(published: Devpi) -> None:
    with pytest.raises(PackageNotFound):
        run(read(published, "reg-nothing-here"))
