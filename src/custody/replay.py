"""Replaying a package's history: each release judged against the ones before it, as the world
looked shortly after it was published. Used to measure noise on real histories and for
forensics ("would Custody have held this?")."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta

from custody.judge import Judged, judge_release
from custody.model import LockedDependency, PackageHistory
from custody.signals import CHECK_SIGNALS, deps
from custody.trust import EMPTY_TRUST, TrustFile

REPLAY_SIGNALS = tuple(s for s in CHECK_SIGNALS if s is not deps.new_package)
"""A replayed package is already in the tree: it is never a new package."""


def replay(
    history: PackageHistory,
    trust: TrustFile = EMPTY_TRUST,
    *,
    after: timedelta = timedelta(days=7),
) -> Iterator[Judged]:
    """Judge every release but the first, ``after`` its publish time, trusting on first use
    every custodian of the releases before it (plus the trust file's own entries)."""
    policy = dataclasses.replace(trust.policy, new_packages="trust-on-first-use")
    tofu = dataclasses.replace(trust, policy=policy)
    seen_one = False
    for release in history.releases:
        if release.unpublished or release.published_at is None:
            continue
        if not seen_one:
            seen_one = True
            continue
        when = release.published_at + after
        dep = LockedDependency(history.ecosystem, history.name, release.version, direct=True)
        yield judge_release(dep, history.as_of(when), tofu, now=when, signals=REPLAY_SIGNALS)
