"""Signals: pure functions from a ``SignalContext`` to findings.

``judge_all`` runs them in two passes: ``RELEASE_SIGNALS`` judge each locked release on its own
(custody, release state, age, known-bad records); ``TREE_SIGNALS`` then look across the tree
(``deps.*``, and publish bursts, which read the other packages' repositories) with a
``TreeView`` built from the first pass. ``CHECK_SIGNALS`` is both, in order, for judging one
release alone (its ``tree`` is then None). ``CONTENT_SIGNALS`` run a third time for the releases
whose artifacts the engine downloaded and compared."""

from __future__ import annotations

from custody.signals import (
    age,
    burst,
    content,
    custody,
    deps,
    known_bad,
    lockfile,
    provenance,
    release,
    scripts,
)
from custody.signals.base import Signal, SignalContext, TreeEntry, TreeView, TrustedSet

RELEASE_SIGNALS: tuple[Signal, ...] = (
    known_bad.malicious,
    provenance.provenance_invalid,
    release.unpublished,
    lockfile.lockfile_entry,
    custody.new_publisher,
    custody.new_maintainer,
    custody.provenance_downgrade,
    custody.provenance_source_changed,
    custody.repository_changed,
    age.too_new,
    scripts.install_scripts,
    release.unknown_custody,
)
TREE_SIGNALS: tuple[Signal, ...] = (
    deps.new_package,
    deps.added_in_patch,
    burst.publish_burst,
)
CONTENT_SIGNALS: tuple[Signal, ...] = (
    scripts.install_scripts,
    content.content_obfuscated,
    provenance.content_not_in_source,
)
"""Signals that read the artifacts' files: run again once the engine has compared them."""
CONTENT_RULE_PREFIXES = ("scripts.", "content.")
CHECK_SIGNALS: tuple[Signal, ...] = RELEASE_SIGNALS + TREE_SIGNALS

__all__ = [
    "CHECK_SIGNALS",
    "CONTENT_RULE_PREFIXES",
    "CONTENT_SIGNALS",
    "RELEASE_SIGNALS",
    "TREE_SIGNALS",
    "Signal",
    "SignalContext",
    "TreeEntry",
    "TreeView",
    "TrustedSet",
]
