"""``custody db update --from PATH_OR_URL``: import OSV malicious-package records into the ledger.

Sources, as the OSV project and the OpenSSF malicious-packages repository publish them:

- a zip of OSV JSON files (OSV's per-ecosystem ``all.zip``: every record of the ecosystem, one
  ``ID.json`` per record), from a path or an ``http(s)://`` URL;
- a folder of ``*.json`` files, searched recursively (a checkout of ``ossf/malicious-packages``:
  ``osv/malicious/npm/NAME/MAL-....json``, ``osv/withdrawn/...``);
- a single ``.json`` record.

Only ``MAL-`` records are kept (an ``all.zip`` also holds ordinary vulnerabilities), and of
those only their npm and PyPI packages. Each record is validated; an invalid one is counted and
named, never half-imported. Nothing in an archive is extracted to disk or executed."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from custody.errors import InputError, RegistryUnavailable
from custody.ledger import Ledger
from custody.osv import KnownBadRecord, OsvError, is_malicious_id, parse_record, withdrawn

MAX_RECORD_BYTES = 16 * 1024 * 1024  # one OSV JSON document
MAX_ARCHIVE_FILES = 2_000_000
MAX_DOWNLOAD_BYTES = 4 * 1024 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed, per zip member (a decompression bomb otherwise)
BATCH = 5000  # records stored per transaction
SHOWN_ERRORS = 20


@dataclass
class ImportReport:
    """What an import read and did."""

    source: str
    files: int = 0  # JSON documents read
    records: int = 0  # valid MAL- records with an npm or PyPI package
    packages: int = 0  # (record, package) rows offered to the ledger
    stored: int = 0  # records written (new or newer than the ledger's copy)
    kept: int = 0  # records skipped: the ledger's copy is newer
    withdrawn: int = 0  # withdrawn records removed from the ledger
    not_malicious: int = 0  # records that are not MAL- (ordinary vulnerabilities)
    other_ecosystems: int = 0  # MAL- records naming no npm or PyPI package
    invalid: int = 0
    errors: list[str] = field(default_factory=list)  # the first SHOWN_ERRORS, "file: reason"
    total: int = 0  # records in the ledger afterwards

    def note_error(self, name: str, reason: str) -> None:
        self.invalid += 1
        if len(self.errors) < SHOWN_ERRORS:
            self.errors.append(f"{name}: {reason}")


def import_records(ledger: Ledger, source: str, now: datetime) -> ImportReport:
    """Read ``source`` (a path or URL), validate every record and store the malicious ones."""
    report = ImportReport(source)
    batch: list[KnownBadRecord] = []
    gone: list[str] = []

    def flush() -> None:
        if not batch and not gone:
            return
        result = ledger.store_known_bad(batch, now, gone)
        report.stored += result.stored
        report.kept += result.kept
        report.withdrawn += result.withdrawn
        batch.clear()
        gone.clear()

    with _documents(source) as documents:
        for name, raw in documents:
            report.files += 1
            if isinstance(raw, str):
                report.note_error(name, raw)
                continue
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                report.note_error(name, f"not JSON: {exc}")
                continue
            osv_id = doc.get("id") if isinstance(doc, dict) else None
            if isinstance(osv_id, str) and not is_malicious_id(osv_id.strip()):
                report.not_malicious += 1
                continue
            try:
                records = parse_record(doc)
            except OsvError as exc:
                report.note_error(name, str(exc))
                continue
            if withdrawn(doc):
                gone.append(str(osv_id).strip())
                continue
            if not records:
                report.other_ecosystems += 1
                continue
            report.records += 1
            report.packages += len(records)
            batch.extend(records)
            if len(batch) >= BATCH:
                flush()
    flush()
    report.total = ledger.count_known_bad()
    return report


class _Documents:
    """A context manager yielding ``(name, bytes)`` per JSON document of a source."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Iterator[tuple[str, bytes | str]]:
        path = self._local_path()
        if path.is_dir():
            return _folder(path)
        if not path.is_file():
            raise InputError(f"--from {self.source}: no such file or folder")
        if zipfile.is_zipfile(path):
            return _zip(path, self.source)
        if path.suffix.lower() == ".json" or self._tmp is not None:
            return iter([(self.source, _read_capped(path))])
        raise InputError(f"--from {self.source}: expected a .zip, a folder or a .json file")

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def _local_path(self) -> Path:
        if not self.source.startswith(("http://", "https://")):
            return Path(self.source).expanduser()
        self._tmp = tempfile.TemporaryDirectory(prefix="custody-osv-")
        target = Path(self._tmp.name) / "download"
        _download(self.source, target)
        return target


def _documents(source: str) -> _Documents:
    return _Documents(source)


def _read_capped(path: Path) -> bytes:
    if path.stat().st_size > MAX_RECORD_BYTES:
        raise InputError(f"{path}: larger than {MAX_RECORD_BYTES} bytes; not an OSV record")
    return path.read_bytes()


def _folder(root: Path) -> Iterator[tuple[str, bytes | str]]:
    for path in sorted(root.rglob("*.json")):
        if path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_size > MAX_RECORD_BYTES:
            yield str(path.relative_to(root)), f"larger than {MAX_RECORD_BYTES} bytes"
            continue
        yield str(path.relative_to(root)), path.read_bytes()


def _zip(path: Path, source: str) -> Iterator[tuple[str, bytes | str]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"--from {source}: not a readable zip: {exc}") from None
    with archive:
        members = [i for i in archive.infolist() if i.filename.lower().endswith(".json")]
        if len(members) > MAX_ARCHIVE_FILES:
            raise InputError(f"--from {source}: more than {MAX_ARCHIVE_FILES} files")
        for info in members:
            if info.is_dir():
                continue
            too_big = info.file_size > MAX_RECORD_BYTES or (
                info.compress_size and info.file_size / info.compress_size > MAX_RATIO
            )
            if too_big:
                yield info.filename, "refused: too large or too compressed (a zip bomb?)"
                continue
            try:
                with archive.open(info) as member:
                    data = member.read(MAX_RECORD_BYTES + 1)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise InputError(
                    f"--from {source}: corrupt member {info.filename}: {exc}"
                ) from None
            if len(data) > MAX_RECORD_BYTES:
                yield info.filename, f"larger than {MAX_RECORD_BYTES} bytes"
                continue
            yield info.filename, data


def _ca_files() -> tuple[str, ...]:
    """CA bundles named by the environment, added to the system trust store."""
    names = ("CUSTODY_CA_FILE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    return tuple(v for n in names if (v := os.environ.get(n)) and Path(v).is_file())


def _download(url: str, target: Path) -> None:
    import httpx

    from custody.registries.tls import ssl_context

    try:
        with (
            httpx.Client(
                follow_redirects=True, timeout=httpx.Timeout(60.0), verify=ssl_context(_ca_files())
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise RegistryUnavailable(url, f"HTTP {response.status_code}")
            size = 0
            with target.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise InputError(f"--from {url}: larger than {MAX_DOWNLOAD_BYTES} bytes")
                    out.write(chunk)
    except httpx.HTTPError as exc:
        raise RegistryUnavailable(url, f"{type(exc).__name__}: {exc}") from None
