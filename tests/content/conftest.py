"""Builders for archives shaped in the tests (hostile ones included)."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from collections.abc import Callable, Iterable

TarEdit = Callable[[tarfile.TarInfo], None]


def tgz(
    files: dict[str, bytes],
    *,
    root: str = "package",
    extra: Iterable[tarfile.TarInfo] = (),
    fmt: int = tarfile.PAX_FORMAT,
) -> bytes:
    """A gzipped tar like ``npm pack`` makes, plus ``extra`` members (links, devices...)."""
    raw = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=fmt) as tar,
    ):
        for path, data in files.items():
            info = tarfile.TarInfo(f"{root}/{path}" if root else path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return raw.getvalue()


def member(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def zipped(files: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return raw.getvalue()
