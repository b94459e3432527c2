"""Hostile and broken archives are refused with a reason, never an exception."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.content.archive import (
    SDIST_LIMITS,
    ArchiveContents,
    ArchiveLimits,
    ArchiveRefusal,
    read_archive,
)
from custody.content.review import unsafe_archive_finding
from custody.model import Artifact, Ecosystem, Release, Severity
from tests.content.conftest import member, tgz, zipped

MiB = 1024 * 1024


def refused(data: bytes, **kw: object) -> ArchiveRefusal:
    result = read_archive(data, **kw)  # type: ignore[arg-type]
    assert isinstance(result, ArchiveRefusal), result
    return result


def test_reads_an_npm_tarball_and_strips_the_root() -> None:
    result = read_archive(tgz({"package.json": b"{}", "lib/a.js": b"x = 1\n"}))
    assert isinstance(result, ArchiveContents)
    assert result.root == "package"
    assert dict(result.files) == {"package.json": b"{}", "lib/a.js": b"x = 1\n"}
    assert result.format == "tar.gz"


def test_reads_a_wheel_without_stripping() -> None:
    data = zipped({"pkg/__init__.py": b"", "pkg-1.0.dist-info/METADATA": b"Name: pkg\n"})
    result = read_archive(data, strip_root=False)
    assert isinstance(result, ArchiveContents)
    assert set(result.files) == {"pkg/__init__.py", "pkg-1.0.dist-info/METADATA"}


@pytest.mark.parametrize(
    "name",
    ["package/../../etc/passwd", "/etc/passwd", "C:/Windows/evil.js", "package\\..\\..\\x.js"],
)
def test_path_traversal_is_refused(name: str) -> None:
    r = refused(tgz({name: b"x"}, root=""))
    assert r.reason == "path-traversal"
    assert r.member == name


def test_zip_traversal_is_refused() -> None:
    assert refused(zipped({"../evil.py": b"x"})).reason == "path-traversal"


def test_symlink_is_refused() -> None:
    r = refused(tgz({"a.js": b"1"}, extra=[member("package/b.js", tarfile.SYMTYPE, "/etc/passwd")]))
    assert (r.reason, r.member) == ("link", "package/b.js")


def test_hardlink_is_refused() -> None:
    r = refused(
        tgz({"a.js": b"1"}, extra=[member("package/b.js", tarfile.LNKTYPE, "package/a.js")])
    )
    assert r.reason == "link"


def test_sdist_may_keep_links_inside_the_tree_but_not_outside() -> None:
    inside = tgz(
        {"a.txt": b"1"}, root="p-1.0", extra=[member("p-1.0/b.txt", tarfile.SYMTYPE, "a.txt")]
    )
    ok = read_archive(inside, limits=SDIST_LIMITS)
    assert isinstance(ok, ArchiveContents)
    assert dict(ok.links) == {"b.txt": "a.txt"}
    outside = tgz(
        {"a.txt": b"1"}, root="p-1.0", extra=[member("p-1.0/b.txt", tarfile.SYMTYPE, "../../x")]
    )
    assert refused(outside, limits=SDIST_LIMITS).reason == "link"


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_devices_and_fifos_are_refused(kind: bytes) -> None:
    r = refused(tgz({"a.js": b"1"}, extra=[member("package/dev", kind)]))
    assert r.reason == "special-file"


def test_zip_symlink_is_refused() -> None:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16) | 0x20
        zf.writestr(info, "/etc/passwd")
    assert refused(raw.getvalue()).reason == "link"


def test_gzip_bomb_is_refused_by_ratio() -> None:
    zeros = tgz({"big.bin": b"\0" * (50 * MiB)})
    assert len(zeros) < 200_000
    r = refused(zeros)
    assert r.reason == "compression-ratio"
    assert r.value is not None and r.value > 200


def test_total_size_limit() -> None:
    data = tgz({f"f{i}.js": bytes(range(256)) * 4096 for i in range(4)})  # 4 MiB, ratio low
    r = refused(data, limits=ArchiveLimits(max_total=2 * MiB, max_ratio=1e9))
    assert r.reason == "too-large"


def test_per_file_limit_does_not_trust_nothing_but_headers() -> None:
    data = tgz({"a.js": b"a" * (2 * MiB)})
    r = refused(data, limits=ArchiveLimits(max_file=1 * MiB, max_ratio=1e9))
    assert r.reason == "too-large"
    assert r.member == "package/a.js"


def test_zip_bomb_by_ratio() -> None:
    data = zipped({"bomb.txt": b"\0" * (20 * MiB)})
    r = refused(data)
    assert r.reason == "compression-ratio"


def test_zip_member_lying_about_its_size_is_caught_while_reading() -> None:
    """The central directory says 10 bytes; the stream holds 4 MiB: counted, not trusted."""
    data = bytearray(zipped({"a.txt": bytes(range(256)) * 16384}, compression=zipfile.ZIP_STORED))
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 10)  # uncompressed size in the central directory
    r = refused(bytes(data), limits=ArchiveLimits(max_file=1 * MiB))
    assert r.reason in ("too-large", "corrupt")


def test_too_many_files() -> None:
    data = tgz({f"f{i}.js": b"" for i in range(60)})
    assert refused(data, limits=ArchiveLimits(max_files=50)).reason == "too-many-files"
    z = zipped({f"f{i}.py": b"" for i in range(60)})
    assert refused(z, limits=ArchiveLimits(max_files=50)).reason == "too-many-files"


def test_duplicate_names() -> None:
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for content in (b"good", b"evil"):
            info = tarfile.TarInfo("package/index.js")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    assert refused(raw.getvalue()).reason == "duplicate-name"


def test_duplicate_names_after_normalisation() -> None:
    data = tgz({"a/index.js": b"1", "a/./index.js": b"2"})
    assert refused(data).reason == "duplicate-name"


def test_truncated_gzip() -> None:
    data = tgz({"index.js": bytes(range(256)) * 400})
    assert refused(data[: len(data) // 2]).reason == "truncated"


def test_gzip_trailing_garbage() -> None:
    data = tgz({"index.js": b"module.exports = 1\n"})
    assert refused(data + b"MZ\x90\x00hidden payload").reason == "trailing-data"


def test_gzip_zero_padding_is_fine() -> None:
    data = tgz({"index.js": b"module.exports = 1\n"})
    assert isinstance(read_archive(data + b"\0" * 512), ArchiveContents)


def test_zip_trailing_data() -> None:
    assert refused(zipped({"a.py": b"1"}) + b"junk").reason == "trailing-data"


def test_corrupt_gzip_crc() -> None:
    data = bytearray(tgz({"index.js": b"module.exports = 1\n"}))
    data[-8] ^= 0xFF  # CRC32 in the gzip trailer
    assert refused(bytes(data)).reason == "corrupt"


def test_nested_archives_are_listed_and_depth_is_limited() -> None:
    inner = zipped({"payload.js": b"eval(x)"})
    outer = tgz({"index.js": b"1", "vendor/blob.zip": inner})
    result = read_archive(outer)
    assert isinstance(result, ArchiveContents)
    assert result.files["vendor/blob.zip!/payload.js"] == b"eval(x)"

    deep = b"x"
    for level in range(5):
        deep = zipped({f"l{level}.zip" if level else "x.js": deep})
    r = refused(tgz({"a.zip": deep}))
    assert r.reason == "too-deep"


def test_nested_bomb_refuses_the_outer_archive() -> None:
    bomb = zipped({"zeros": b"\0" * (8 * MiB)})
    assert refused(tgz({"test/fixture.zip": bomb})).reason == "compression-ratio"


def test_unreadable_nested_archive_stays_an_opaque_file() -> None:
    result = read_archive(tgz({"fixture.zip": b"PK\x03\x04 not really a zip"}))
    assert isinstance(result, ArchiveContents)
    assert set(result.files) == {"fixture.zip"}


def test_unknown_format() -> None:
    assert refused(b"hello world").reason == "unknown-format"


def test_refusal_becomes_a_high_finding() -> None:
    r = refused(tgz({"../../x": b"1"}, root=""))
    release = Release(Ecosystem.NPM, "left-pad", "1.3.1")
    finding = unsafe_archive_finding(r, Artifact("left-pad-1.3.1.tgz"), release)
    assert finding.rule == "content.unsafe-archive"
    assert finding.severity is Severity.HIGH
    assert finding.evidence["reason"] == "path-traversal"
    assert finding.evidence["member"] == "../../x"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_never_raise(data: bytes) -> None:
    read_archive(data)
    read_archive(b"\x1f\x8b" + data)
    read_archive(b"PK\x03\x04" + data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_archives_never_raise(data: st.DataObject) -> None:
    base = bytearray(
        data.draw(st.sampled_from([TGZ_SAMPLE, ZIP_SAMPLE, zlib.compress(b"x" * 100)]))
    )
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(base) - 1))
        base[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(base)))
    read_archive(bytes(base[:cut]))
    read_archive(bytes(base[:cut]), strip_root=False, limits=SDIST_LIMITS)


TGZ_SAMPLE = tgz({"package.json": b'{"name":"x"}', "index.js": b"module.exports = 1\n" * 20})
ZIP_SAMPLE = zipped({"x/__init__.py": b"print(1)\n" * 20, "x-1.dist-info/RECORD": b""})
