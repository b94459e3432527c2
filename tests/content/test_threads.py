"""run_blocking: small work on the event loop, large work in a worker thread."""

from __future__ import annotations

import asyncio
import threading

from custody.content.threads import SMALL_BYTES, run_blocking


def where(*, tag: str) -> tuple[str, threading.Thread]:
    return tag, threading.current_thread()


def test_small_work_runs_on_the_loop_and_large_work_in_a_thread() -> None:
    async def go() -> None:
        here = threading.current_thread()
        assert await run_blocking(SMALL_BYTES - 1, where, tag="small") == ("small", here)
        tag, thread = await run_blocking(SMALL_BYTES, where, tag="large")
        assert tag == "large" and thread is not here

    asyncio.run(go())
