"""Reports reach stdout whole, even when the process is stopped and continued mid-write."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from custody.console import emit
from tests.support.stopping import stopped_and_continued

SIZE = 40_000_000
WRITER = f"from custody.console import emit; emit('y' * {SIZE})"


def test_emit_writes_through_the_descriptor(capfd: pytest.CaptureFixture[str]) -> None:
    print("before", end="")  # buffered in sys.stdout: must come out first
    emit("report\n")
    assert capfd.readouterr().out == "beforereport\n"


def test_emit_without_a_descriptor_writes_to_the_stream(capsys: pytest.CaptureFixture[str]) -> None:
    emit("report\n")
    assert capsys.readouterr().out == "report\n"


def test_a_report_stopped_and_continued_mid_write_arrives_whole() -> None:
    """Ctrl-Z and ``fg`` (or a debugger, a cgroup freezer) while a large report goes into a
    pipe that a slow reader drains: every byte arrives. ``sys.stdout.write`` lost some here."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert writer.stdout is not None
    received = 0
    with stopped_and_continued(writer.pid):
        while chunk := writer.stdout.read1(65536):
            received += len(chunk)
            time.sleep(0.0002)
    writer.wait(timeout=60)
    assert writer.returncode == 0
    assert received == SIZE
