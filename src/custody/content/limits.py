"""Archive reading budgets, apart from the reader (``archive.py``) so that code which only needs
to name them (the comparison result cache keys on them) does not import tarfile, zipfile, lzma
and bz2."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Budgets shared by an archive and everything nested in it."""

    max_total: int = 256 * MiB
    """Uncompressed bytes of all files together."""
    max_files: int = 20_000
    """Members (files, folders, links) counted across nesting levels."""
    max_file: int = 64 * MiB
    """Uncompressed bytes of one member."""
    max_ratio: float = 200.0
    """Uncompressed over compressed bytes, checked once ``ratio_min_size`` bytes came out."""
    ratio_min_size: int = 1 * MiB
    max_depth: int = 3
    """Archive levels: the package itself is level 1; one nested archive inside it is 2."""
    internal_links: bool = False
    """Accept links that stay inside the tree (listed in ``links``, not read). pip extracts
    sdists with such links; npm and wheel installers never create links, so they are refused."""


DEFAULT_LIMITS = ArchiveLimits()
SDIST_LIMITS = ArchiveLimits(internal_links=True)


def limits_for(kind: str) -> ArchiveLimits:
    """The budgets an artifact of ``kind`` ("tarball", "wheel", "sdist") is read with."""
    return SDIST_LIMITS if kind == "sdist" else DEFAULT_LIMITS
