"""Python sdists and wheels against a src-layout repository: generated metadata and version
files are explained, extra or modified code is not."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from custody.fingerprint import FingerprintResult, GitOptions, fingerprint
from custody.model import Artifact, Ecosystem, Release
from custody.model import Severity as S
from tests.fingerprint.helpers import Files, Repo, tgz, wheel

SOURCE: dict[str, bytes | str] = {
    "pyproject.toml": '[project]\nname = "demo"\ndynamic = ["version"]\n',
    "src/demo/__init__.py": "from demo.core import run\n",
    "src/demo/core.py": "def run():\n    return 1\n",
    "tests/test_core.py": "def test():\n    pass\n",
    "README.md": "# demo\n",
    ".gitignore": "build/\n*.egg-info/\nsrc/demo/_version.py\n",
}
SDIST: dict[str, bytes | str] = {
    **{p: SOURCE[p] for p in ("pyproject.toml", "src/demo/__init__.py", "src/demo/core.py")},
    "README.md": SOURCE["README.md"],
    "PKG-INFO": "Metadata-Version: 2.1\nName: demo\nVersion: 1.0.0\n",
    "setup.cfg": "[egg_info]\ntag_build = \ntag_date = 0\n",
    "src/demo.egg-info/PKG-INFO": "Metadata-Version: 2.1\n",
    "src/demo.egg-info/SOURCES.txt": "src/demo/core.py\n",
    "src/demo/_version.py": "__version__ = version = '1.0.0'\n",
}
WHEEL: dict[str, bytes | str] = {
    "demo/__init__.py": SOURCE["src/demo/__init__.py"],
    "demo/core.py": SOURCE["src/demo/core.py"],
    "demo/_version.py": "__version__ = '1.0.0'\n",
    "demo-1.0.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: demo\n",
    "demo-1.0.0.dist-info/WHEEL": "Wheel-Version: 1.0\n",
    "demo-1.0.0.dist-info/RECORD": "",
}


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "origin")
    r.commit(SOURCE, tag="v1.0.0")
    return r


@pytest.fixture
def options(tmp_path: Path) -> GitOptions:
    return GitOptions(cache_dir=tmp_path / "cache", allow_file=True)


def run(
    data: bytes, filename: str, kind: str, repo: Repo, options: GitOptions
) -> FingerprintResult:
    artifact = Artifact(filename, kind=kind)
    rel = Release(Ecosystem.PYPI, "demo", "1.0.0", artifacts=(artifact,))
    return asyncio.run(
        fingerprint(rel, data, artifact=artifact, options=options, repository=repo.url)
    )


def sdist(files: Files) -> bytes:
    return tgz(files, root="demo-1.0.0")


def test_sdist_equal_to_its_tag_but_for_generated_files(repo: Repo, options: GitOptions) -> None:
    result = run(sdist(SDIST), "demo-1.0.0.tar.gz", "sdist", repo, options)
    assert result.compared and result.matched == 4
    assert result.unexplained == ()
    assert result.severity is S.INFO
    reasons = {f.path: f.reason for f in result.files}
    assert "version file" in reasons["src/demo/_version.py"]
    assert "metadata" in reasons["PKG-INFO"]


def test_sdist_with_an_extra_module_is_high(repo: Repo, options: GitOptions) -> None:
    files = {**SDIST, "src/demo/payload.py": "import os; os.system('id')\n"}
    result = run(sdist(files), "demo-1.0.0.tar.gz", "sdist", repo, options)
    finding = result.finding()
    assert finding is not None and finding.severity is S.HIGH
    assert finding.evidence["unexplained"] == ["src/demo/payload.py"]


def test_wheel_maps_to_the_src_layout(repo: Repo, options: GitOptions) -> None:
    result = run(wheel(WHEEL), "demo-1.0.0-py3-none-any.whl", "wheel", repo, options)
    assert result.compared and result.matched == 2 and result.package_dir == "src"
    assert result.unexplained == () and result.severity is S.INFO


def test_wheel_with_modified_code_and_a_pth_file(repo: Repo, options: GitOptions) -> None:
    files = {
        **WHEEL,
        "demo/core.py": str(SOURCE["src/demo/core.py"])
        + "exec(__import__('base64').b64decode('eA=='))\n",
        "demo-init.pth": "import demo\n",
        "demo/_speedups.cpython-311-x86_64-linux-gnu.so": b"\x7fELF",
    }
    result = run(wheel(files), "demo-1.0.0-cp311-cp311-linux_x86_64.whl", "wheel", repo, options)
    reports = {f.path: f for f in result.files}
    assert reports["demo/core.py"].severity is S.HIGH
    assert reports["demo/core.py"].source_path == "src/demo/core.py"
    assert reports["demo-init.pth"].severity is S.HIGH and not reports["demo-init.pth"].explained
    assert reports["demo/_speedups.cpython-311-x86_64-linux-gnu.so"].explained
    assert set(result.finding().evidence["unexplained"]) == {"demo/core.py", "demo-init.pth"}  # type: ignore[union-attr]
