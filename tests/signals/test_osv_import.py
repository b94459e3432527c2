"""``custody db update --from``: OSV records from a folder (a malicious-packages checkout) and
from a zip like OSV's per-ecosystem all.zip, made here; validation and counts."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from custody.errors import InputError
from custody.ledger import open_ledger
from custody.model import Ecosystem
from custody.osv import parse_record
from custody.osv_import import MAX_RATIO, import_records
from tests.support.clients import clean_env, custody

from .osv_records import EVENT_STREAM, FLATMAP, GHSA, TYPOSQUAT, mal

NOW = datetime(2025, 9, 1, tzinfo=UTC)
NPM, PYPI = Ecosystem.NPM, Ecosystem.PYPI


def _write(root: Path, rel: str, doc: object) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The layout of ossf/malicious-packages: osv/malicious/ECO/NAME/ID.json, osv/withdrawn."""
    root = tmp_path / "malicious-packages" / "osv"
    _write(root, "malicious/npm/event-stream/MAL-2018-0001.json", EVENT_STREAM)
    _write(root, "malicious/npm/flatmap-stream/MAL-2025-20690.json", FLATMAP)
    _write(root, "malicious/pypi/beautiulsoup4/MAL-2023-1638.json", TYPOSQUAT)
    _write(root, "malicious/crates-io/evil/MAL-2024-9.json", mal("MAL-2024-9", "crates.io", "evil"))
    _write(root, "malicious/npm/broken/MAL-2024-10.json", {"id": "MAL-2024-10", "affected": []})
    (root / "malicious/npm/garbage/MAL-2024-11.json").parent.mkdir(parents=True)
    (root / "malicious/npm/garbage/MAL-2024-11.json").write_text("{not json")
    _write(
        root,
        "withdrawn/npm/oops/MAL-2024-12.json",
        mal("MAL-2024-12", "npm", "oops", versions=["1.0.0"], withdrawn="2024-02-01T00:00:00Z"),
    )
    return root


def test_import_a_folder(checkout: Path, tmp_path: Path) -> None:
    with open_ledger(f"sqlite:///{tmp_path / 'l.sqlite3'}") as ledger:
        ledger.store_known_bad(
            parse_record(mal("MAL-2024-12", "npm", "oops", versions=["1.0.0"])),
            NOW,
        )
        report = import_records(ledger, str(checkout), NOW)
        assert report.files == 7
        assert report.records == 3 and report.packages == 3 and report.stored == 3
        assert report.other_ecosystems == 1
        assert report.withdrawn == 1
        assert report.invalid == 2
        assert any("MAL-2024-11.json: not JSON" in e for e in report.errors)
        assert any("'modified'" in e for e in report.errors)
        assert report.total == 3
        found = ledger.known_bad_for(
            [(NPM, "event-stream"), (PYPI, "beautiulsoup4"), (NPM, "oops")]
        )
        assert set(found) == {(NPM, "event-stream"), (PYPI, "beautiulsoup4")}
        # importing again changes nothing
        again = import_records(ledger, str(checkout), NOW)
        assert again.stored == 3 and ledger.count_known_bad() == 3


def _all_zip(path: Path, docs: list[dict]) -> Path:
    """OSV's all.zip: one ID.json per record at the top level, vulnerabilities included."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for doc in docs:
            zf.writestr(f"{doc['id']}.json", json.dumps(doc))
    return path


def test_import_a_zip_skips_ordinary_vulnerabilities(tmp_path: Path) -> None:
    archive = _all_zip(tmp_path / "all.zip", [EVENT_STREAM, FLATMAP, GHSA])
    with open_ledger(f"sqlite:///{tmp_path / 'l.sqlite3'}") as ledger:
        report = import_records(ledger, str(archive), NOW)
        assert (report.files, report.records, report.not_malicious, report.invalid) == (3, 2, 1, 0)
        assert ledger.known_bad_for([(NPM, "lodash")]) == {}


def test_a_decompression_bomb_is_refused_not_read(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("MAL-2024-1.json", json.dumps(FLATMAP))
        zf.writestr("MAL-2024-2.json", b"{" + b" " * (MAX_RATIO * 2000) + b"}")
    with open_ledger(f"sqlite:///{tmp_path / 'l.sqlite3'}") as ledger:
        report = import_records(ledger, str(archive), NOW)
    assert report.records == 1 and report.invalid == 1
    assert "too compressed" in report.errors[0]


def test_missing_source_is_an_input_error(tmp_path: Path) -> None:
    with open_ledger(f"sqlite:///{tmp_path / 'l.sqlite3'}") as ledger:
        with pytest.raises(InputError, match="no such file"):
            import_records(ledger, str(tmp_path / "nope.zip"), NOW)
        (tmp_path / "x.txt").write_text("hello")
        with pytest.raises(InputError, match=r"expected a \.zip"):
            import_records(ledger, str(tmp_path / "x.txt"), NOW)


def test_the_cli_imports_from_a_url(tmp_path: Path, httpserver: HTTPServer) -> None:
    archive = _all_zip(tmp_path / "all.zip", [EVENT_STREAM, FLATMAP, GHSA])
    httpserver.expect_request("/osv/npm/all.zip").respond_with_data(
        archive.read_bytes(), content_type="application/zip"
    )
    env = clean_env(tmp_path / "home", CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'l.sqlite3'}")
    done = custody(
        "db", "update", "--from", httpserver.url_for("/osv/npm/all.zip"), cwd=tmp_path, env=env
    )
    assert done.code == 0, done.stderr
    assert "2 malicious-package records" in done.stderr
    assert "skipped 1 non-MAL records" in done.stderr
    assert "holds 2 records" in done.stderr
    httpserver.expect_request("/missing.zip").respond_with_data("no", status=404)
    missing = custody(
        "db", "update", "--from", httpserver.url_for("/missing.zip"), cwd=tmp_path, env=env
    )
    assert missing.code == 3 and "HTTP 404" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "bad.json").write_text("[]")
    refused = custody("db", "update", "--from", str(empty), cwd=tmp_path, env=env)
    assert refused.code == 2 and "invalid: bad.json" in refused.stderr
