"""Signals: pure functions from a ``SignalContext`` to findings. ``CHECK_SIGNALS`` is what
``custody check`` runs, in order."""

from __future__ import annotations

from custody.signals import custody, release
from custody.signals.base import Signal, SignalContext, TrustedSet

CHECK_SIGNALS: tuple[Signal, ...] = (
    release.unpublished,
    release.new_package,
    custody.new_publisher,
    custody.new_maintainer,
    custody.provenance_downgrade,
    custody.provenance_source_changed,
    custody.repository_changed,
    release.unknown_custody,
)

__all__ = ["CHECK_SIGNALS", "Signal", "SignalContext", "TrustedSet"]
