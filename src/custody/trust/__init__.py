"""The trust file, ``custody.toml``: who a project trusts to publish its dependencies, which
releases people approved, and the policy that turns findings into decisions.

Reference: docs/trust-file.md."""

from typing import TYPE_CHECKING

from custody.lazy import lazy_exports
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
__getattr__ = lazy_exports(
    __name__,
    dict.fromkeys(("NEW_FILE_HEADER", "TrustFileEditor", "write_baseline"), "custody.trust.edit"),
)


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
