"""The trust file, ``custody.toml``: who a project trusts to publish its dependencies, which
releases people approved, and the policy that turns findings into decisions.

Reference: docs/trust-file.md."""

import importlib
from typing import TYPE_CHECKING, Any

from custody.trust._ids import normalize_package_key
from custody.trust.load import (
    TRUST_FILE_NAME,
    find_trust_file,
    format_duration,
    load_trust_file,
    parse_duration,
    parse_trust_file,
)
from custody.trust.model import EMPTY_TRUST, ApprovalEntry, TrustedEntry, TrustFile

if TYPE_CHECKING:
    from custody.trust.edit import NEW_FILE_HEADER, TrustFileEditor, write_baseline

# The editor (tomlkit) is loaded on first use: `custody check` only reads the file.
_EDITING = frozenset({"NEW_FILE_HEADER", "TrustFileEditor", "write_baseline"})


def __getattr__(name: str) -> Any:
    if name not in _EDITING:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("custody.trust.edit"), name)


__all__ = [
    "EMPTY_TRUST",
    "NEW_FILE_HEADER",
    "TRUST_FILE_NAME",
    "ApprovalEntry",
    "TrustFile",
    "TrustFileEditor",
    "TrustedEntry",
    "find_trust_file",
    "format_duration",
    "load_trust_file",
    "normalize_package_key",
    "parse_duration",
    "parse_trust_file",
    "write_baseline",
]
