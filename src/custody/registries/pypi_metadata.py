"""Core metadata (``METADATA`` / PEP 658 ``.metadata``) -> declared dependencies.

Wheels are read as zip archives in memory: only ``<name>.dist-info/METADATA`` is read, with a
size bound; nothing is extracted to disk or executed."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import io
import zipfile
import zlib
from collections.abc import Mapping

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from custody.model import DeclaredDependency
from custody.registries.documents import BadDocument

MAX_METADATA_BYTES = 8 * 1024 * 1024
_ALGORITHMS = frozenset(a for a in hashlib.algorithms_guaranteed if not a.startswith("shake_"))


def check_digests(data: bytes, digests: Mapping[str, str], name: str) -> bytes:
    """``data``, if it matches every digest in ``digests`` whose algorithm hashlib knows (the
    index's hashes of a wheel, or of its PEP 658 metadata); else ``BadDocument`` (retried)."""
    for algorithm, expected in digests.items():
        if algorithm not in _ALGORITHMS:
            continue
        if hashlib.new(algorithm, data).hexdigest() != expected.lower():
            raise BadDocument(f"{name} does not match its {algorithm}")
    return data


def dependencies_from_metadata(raw: bytes) -> tuple[DeclaredDependency, ...]:
    """``Requires-Dist`` entries as ``DeclaredDependency(kind="requires-dist")``, markers kept.
    Lines that are not valid PEP 508 are kept verbatim as the spec."""
    parser = email.parser.BytesParser(policy=email.policy.compat32)
    message = parser.parsebytes(raw, headersonly=True)
    if not message.keys():
        raise BadDocument("core metadata without any header")
    out: list[DeclaredDependency] = []
    for value in message.get_all("Requires-Dist") or ():
        text = " ".join(str(value).split())
        try:
            req = Requirement(text)
        except InvalidRequirement:
            name = text.split(";", 1)[0].split("[", 1)[0].split()[0] if text.split() else text
            out.append(DeclaredDependency(canonicalize_name(name), text, "requires-dist"))
            continue
        extras = "[" + ",".join(sorted(req.extras)) + "]" if req.extras else ""
        spec = f"{extras}@ {req.url}" if req.url else f"{extras}{req.specifier}"
        out.append(
            DeclaredDependency(
                canonicalize_name(req.name),
                spec,
                "requires-dist",
                str(req.marker) if req.marker is not None else None,
            )
        )
    return tuple(out)


def metadata_from_wheel(data: bytes, limit: int = MAX_METADATA_BYTES) -> bytes:
    """The ``METADATA`` file of a wheel held in memory (``BadDocument`` if absent or oversized)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            candidates = [
                info
                for info in archive.infolist()
                if info.filename.count("/") == 1
                and info.filename.endswith(".dist-info/METADATA")
                and not info.is_dir()
            ]
            if not candidates:
                raise BadDocument("wheel without a .dist-info/METADATA file")
            info = candidates[0]
            if info.file_size > limit:
                raise BadDocument(f"wheel METADATA larger than {limit} bytes")
            with archive.open(info) as fh:
                content = fh.read(limit + 1)
    except BadDocument:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        OSError,
        EOFError,
        NotImplementedError,
        RuntimeError,  # encrypted members
        ValueError,
    ) as exc:
        raise BadDocument(f"unreadable wheel: {exc}") from None
    if len(content) > limit:
        raise BadDocument(f"wheel METADATA larger than {limit} bytes")
    return content
