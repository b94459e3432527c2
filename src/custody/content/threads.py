"""Where the content review's blocking work runs: in a worker thread only when it is large.

Reading and comparing archives, and writing cache files, block; ``asyncio.to_thread`` keeps
the event loop downloading meanwhile. But a hand-off to a thread costs about half a millisecond
on a busy loop (the thread must win the GIL back from it), which is more than comparing two
small archives or writing a small file takes: a cold check of 1,000 packages made 264 hand-offs
for 66 small pairs, about 0.03 s of its content review. Small work is done right away on the
loop instead."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

SMALL_BYTES = 256 * 1024
"""Work on fewer bytes than this runs on the event loop (well under a millisecond)."""


async def run_blocking(size: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, which handles about ``size`` bytes: in a worker thread when
    that is ``SMALL_BYTES`` or more, else right here."""
    if size >= SMALL_BYTES:
        return await asyncio.to_thread(fn, *args, **kwargs)
    return fn(*args, **kwargs)
