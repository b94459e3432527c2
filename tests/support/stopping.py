"""Stop and continue a process over and over, as Ctrl-Z and ``fg``, a debugger, a profiler or
a cgroup freezer do: the condition under which a large write into a full pipe returns early."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator


@contextlib.contextmanager
def stopped_and_continued(pid: int, every_s: float = 0.002) -> Iterator[None]:
    """SIGSTOP and SIGCONT to ``pid`` every ``every_s`` seconds until the block ends; the
    process is left running."""
    done = threading.Event()

    def storm() -> None:
        while not done.is_set():
            for sig in (signal.SIGSTOP, signal.SIGCONT):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    return
                time.sleep(every_s)

    thread = threading.Thread(target=storm, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
