"""Build real artifacts and publish them to the loopback registries the way public ones record them.

npm (Verdaccio 6.8), verified by ``tests/servers/test_servers.py``:

- Verdaccio stores ``versions[v]._npmUser`` and ``versions[v].maintainers`` exactly as the publish
  request sends them; it does not overwrite ``_npmUser`` with the authenticated account. We still
  publish with the publisher's own token (one Verdaccio user per publisher, created on demand),
  so the registry's own view matches the recorded custody.
- It keeps no per-package owners and drops the top-level ``maintainers`` of a publish request:
  the packument it serves has ``maintainers`` only inside each version.
- ``time`` gets ``created``, ``modified`` and one entry per version, stamped by Verdaccio's own
  clock at publish time (ISO 8601, UTC, milliseconds): real timestamps. ``time`` sent by the
  client is ignored; :meth:`Verdaccio.set_times` backdates entries by editing the stored document.
- ``dist.tarball`` is rewritten on read to point at the server that is asked;
  ``dist.shasum``/``dist.integrity`` are kept as sent (this helper sends the real digests).
- Publishing needs a valid token (401 otherwise); publishing an existing version is a 409. Any
  authenticated user may publish any unscoped or scoped package (no owner check).
- ``Accept: application/vnd.npm.install-v1+json`` returns the abbreviated document (no
  ``_npmUser``/``maintainers``; ``hasInstallScript`` computed from ``scripts``; top-level
  ``modified``).

PyPI (devpi-server 6.x, started with ``--no-root-pypi --offline-mode --enable-core-metadata``):

- ``GET /USER/INDEX/NAME`` with ``Accept: application/json`` returns
  ``{"type": "projectconfig", "result": {VERSION: VERSIONDATA}}``; each ``VERSIONDATA`` holds the
  upload metadata (``name``, ``version``, ``requires_dist`` as a list, ``summary``, ...) and
  ``+links``: one entry per file with ``href``, ``hash_spec`` (``sha256=...``), ``rel``
  (``releasefile``) and ``log``: a list like
  ``[{"what": "upload", "who": "alice", "when": [Y, M, D, h, m, s], "dst": "alice/dev"}]``.
  ``who`` is the authenticated uploader, whatever the metadata says; ``when`` is UTC.
  ``GET /USER/INDEX/NAME/VERSION`` returns the same ``VERSIONDATA`` alone.
- The simple index speaks PEP 691: ``Accept: application/vnd.pypi.simple.v1+json`` on
  ``/USER/INDEX/+simple/NAME/`` returns ``{"meta": {"api-version": "1.0"}, "name", "files":
  [{"filename", "url", "hashes": {"sha256": ...}, "core-metadata": true (wheels), ...}]}``;
  without that header (or with ``text/html``) it serves PEP 503 HTML.
- PEP 658 works only with ``--enable-core-metadata`` (the fixture passes it): wheels get
  ``data-dist-info-metadata``/``data-core-metadata`` in HTML and ``core-metadata`` in JSON, and
  ``<file URL>.metadata`` serves the wheel's ``METADATA``. Sdists get no ``.metadata``.
- Uploads are refused with 403 for a user not in the index's ``acl_upload``; adding the user
  (PATCH ``["acl_upload=alice,mallory"]`` by the owner) lets them upload. There is no per-project
  owner list: custody on devpi is per index plus the upload log.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import re
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import Devpi, Verdaccio

ZIP_EPOCH = (2020, 1, 1, 0, 0, 0)
"""Fixed timestamp for archive members, so that equal inputs give equal artifacts."""

# --------------------------------------------------------------------------- npm


@dataclass(frozen=True)
class NpmRelease:
    """What :func:`publish_npm` sent."""

    name: str
    version: str
    tarball: bytes
    shasum: str
    """Hex SHA-1 of the tarball (``dist.shasum``)."""
    integrity: str
    """``sha512-<base64>`` of the tarball (``dist.integrity``)."""
    manifest: dict[str, Any]
    """The version document sent (``versions[version]``)."""


def npm_tarball(manifest: Mapping[str, Any], files: Mapping[str, bytes] | None = None) -> bytes:
    """A gzipped tar like ``npm pack`` makes: ``package/package.json`` plus ``files``."""
    members: dict[str, bytes] = {"package.json": json.dumps(manifest, indent=2).encode()}
    members.update(files if files is not None else {"index.js": b"module.exports = {};\n"})
    raw = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path, data in sorted(members.items()):
            info = tarfile.TarInfo(f"package/{path}")
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 499162500  # what npm pack uses: 1985-10-26T08:15:00Z
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _npm_digests(tarball: bytes) -> tuple[str, str]:
    shasum = hashlib.sha1(tarball).hexdigest()
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    return shasum, integrity


def _person(name: str) -> dict[str, str]:
    return {"name": name, "email": f"{name}@example.com"}


def publish_npm(
    verdaccio: Verdaccio,
    name: str,
    version: str,
    *,
    publisher: str,
    maintainers: Sequence[str],
    dependencies: Mapping[str, str] | None = None,
    scripts: Mapping[str, str] | None = None,
    files: Mapping[str, bytes] | None = None,
    repository: str | Mapping[str, str] | None = None,
    token: str | None = None,
    tag: str = "latest",
) -> NpmRelease:
    """Publish ``name@version`` with ``_npmUser`` = ``publisher`` and the given maintainers.

    ``token`` defaults to the publisher's own Verdaccio token (the user is created on demand).
    The request is the packument document ``npm publish`` sends, plus the fields the public
    registry adds on its side (``_npmUser``, ``maintainers``).
    """
    package_json: dict[str, Any] = {
        "name": name,
        "version": version,
        "description": f"{name} test package",
        "main": "index.js",
        "license": "MIT",
    }
    if dependencies:
        package_json["dependencies"] = dict(dependencies)
    if scripts:
        package_json["scripts"] = dict(scripts)
    if repository is not None:
        package_json["repository"] = (
            {"type": "git", "url": repository} if isinstance(repository, str) else repository
        )
    tarball = npm_tarball(package_json, files)
    shasum, integrity = _npm_digests(tarball)
    filename = f"{name.rsplit('/', 1)[-1]}-{version}.tgz"
    people = [_person(m) for m in maintainers]
    manifest = {
        **package_json,
        "_id": f"{name}@{version}",
        "_npmUser": _person(publisher),
        "maintainers": people,
        "_nodeVersion": "20.0.0",
        "_npmVersion": "10.0.0",
        "dist": {
            "tarball": f"{verdaccio.url}{name}/-/{filename}",
            "shasum": shasum,
            "integrity": integrity,
        },
    }
    document = {
        "_id": name,
        "name": name,
        "description": package_json["description"],
        "dist-tags": {tag: version},
        "versions": {version: manifest},
        "maintainers": people,
        "access": None,
        "_attachments": {
            filename: {
                "content_type": "application/octet-stream",
                "data": base64.b64encode(tarball).decode(),
                "length": len(tarball),
            }
        },
    }
    bearer = token if token is not None else verdaccio.token(publisher)
    with verdaccio.http() as client:
        response = client.put(
            verdaccio.package_url(name),
            json=document,
            headers={"authorization": f"Bearer {bearer}", "npm-command": "publish"},
        )
    if response.is_error:
        raise AssertionError(
            f"publish {name}@{version}: HTTP {response.status_code}: {response.text[:2000]}"
        )
    return NpmRelease(name, version, tarball, shasum, integrity, manifest)


# --------------------------------------------------------------------------- PyPI


@dataclass(frozen=True)
class PypiRelease:
    """What :func:`publish_pypi` built and uploaded."""

    name: str
    version: str
    wheel: Path
    sdist: Path | None
    metadata: str
    """The core metadata (``METADATA`` / ``PKG-INFO``) text."""


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_name(name: str) -> str:
    """Project name as it appears in wheel and sdist file names (PEP 427, PEP 625)."""
    return normalize(name).replace("-", "_")


def core_metadata(name: str, version: str, requires_dist: Sequence[str] = ()) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {name} test package",
    ]
    lines += [f"Requires-Dist: {req}" for req in requires_dist]
    return "\n".join(lines) + "\n\n"


def _default_files(name: str, version: str) -> dict[str, bytes]:
    return {f"{_dist_name(name)}/__init__.py": f'__version__ = "{version}"\n'.encode()}


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(
    out_dir: Path,
    name: str,
    version: str,
    *,
    requires_dist: Sequence[str] = (),
    files: Mapping[str, bytes] | None = None,
) -> tuple[Path, str]:
    """A pure-Python ``py3-none-any`` wheel; returns its path and its METADATA text."""
    dist_info = f"{_dist_name(name)}-{version}.dist-info"
    metadata = core_metadata(name, version, requires_dist)
    members = dict(files if files is not None else _default_files(name, version))
    members[f"{dist_info}/METADATA"] = metadata.encode()
    members[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: custody-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in members.items():
        writer.writerow([path, _record_hash(data), len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    members[f"{dist_info}/RECORD"] = record.getvalue().encode()

    wheel = out_dir / f"{_dist_name(name)}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in members.items():
            zf.writestr(zipfile.ZipInfo(path, ZIP_EPOCH), data, zipfile.ZIP_DEFLATED)
    return wheel, metadata


def build_sdist(
    out_dir: Path,
    name: str,
    version: str,
    *,
    requires_dist: Sequence[str] = (),
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """A ``.tar.gz`` sdist with ``PKG-INFO``, a ``pyproject.toml`` and the given files."""
    base = f"{_dist_name(name)}-{version}"
    deps = ", ".join(json.dumps(req) for req in requires_dist)
    pyproject = (
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        f'\n[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{deps}]\n'
    )
    members = dict(files if files is not None else _default_files(name, version))
    members["PKG-INFO"] = core_metadata(name, version, requires_dist).encode()
    members["pyproject.toml"] = pyproject.encode()
    sdist = out_dir / f"{base}.tar.gz"
    with (
        sdist.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path, data in sorted(members.items()):
            info = tarfile.TarInfo(f"{base}/{path}")
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1577836800  # 2020-01-01
            tar.addfile(info, io.BytesIO(data))
    return sdist


def _upload_fields(
    name: str, version: str, requires_dist: Sequence[str], path: Path
) -> dict[str, str | list[str]]:
    """The form fields twine sends along with a file."""
    is_wheel = path.suffix == ".whl"
    return {
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name,
        "version": version,
        "summary": f"{name} test package",
        "requires_dist": list(requires_dist),
        "filetype": "bdist_wheel" if is_wheel else "sdist",
        "pyversion": "py3" if is_wheel else "source",
        "sha256_digest": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def publish_pypi(
    devpi: Devpi,
    user_index: str,
    name: str,
    version: str,
    *,
    uploader: str,
    password: str | None = None,
    requires_dist: Sequence[str] | None = None,
    files: Mapping[str, bytes] | None = None,
    sdist: bool = True,
    out_dir: Path | None = None,
) -> PypiRelease:
    """Build a wheel (and an sdist) and upload them to ``user_index`` as ``uploader``.

    ``password`` defaults to the one given to ``devpi.create_user``. devpi then records
    ``who`` = ``uploader`` in each file's log.
    """
    out = out_dir or devpi.root / "dist" / f"{normalize(name)}-{version}-{uploader}"
    out.mkdir(parents=True, exist_ok=True)
    reqs = list(requires_dist or [])
    wheel, metadata = build_wheel(out, name, version, requires_dist=reqs, files=files)
    sdist_path = build_sdist(out, name, version, requires_dist=reqs, files=files) if sdist else None
    devpi.login(uploader, password)
    for path in [wheel] + ([sdist_path] if sdist_path else []):
        devpi.upload(
            user_index, path, user=uploader, metadata=_upload_fields(name, version, reqs, path)
        )
    return PypiRelease(name, version, wheel, sdist_path, metadata)


def fetch_bytes(url: str) -> bytes:
    """GET a loopback URL (tarball, wheel, ``.metadata``) and return its body."""
    response = httpx.get(url, timeout=30.0, trust_env=False)
    response.raise_for_status()
    return response.content
