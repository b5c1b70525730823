"""Progress output: a live bar on a terminal, heartbeat lines in logs."""

import io
import time

import pytest

from pytensor_blackjax.run import _progress
from pytensor_blackjax.run._progress import Heartbeat, NullProgress, make_progress


def test_heartbeat_lines_during_and_after_each_phase():
    out = io.StringIO()
    beat = Heartbeat(4, interval=0.0, stream=out)
    beat.start("warmup", 100)
    beat.advance(50, divergences=1)
    beat.start("sampling", 200)
    time.sleep(0.01)
    beat.advance(100, divergences=2)
    beat.advance(100)
    beat.stop()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("warmup: 50/100 draws per chain (50%),") and "1 divergences" in lines[0]
    assert lines[1].startswith("warmup: 50/100")  # the phase's last line when the next starts
    assert (
        lines[2].startswith("sampling: 100/200 draws per chain (50%)")
        and "draws/s, 2 divergences" in lines[2]
    )
    assert lines[3].startswith("sampling: 200/200 draws per chain (100%)") and len(lines) == 4


def test_heartbeat_is_quiet_between_intervals():
    out = io.StringIO()
    beat = Heartbeat(1, interval=3600.0, stream=out)
    beat.start("sampling", 10)
    for _ in range(9):
        beat.advance(1)
    assert out.getvalue() == ""


def test_logs_get_the_heartbeat(monkeypatch):
    monkeypatch.setattr(_progress.sys, "stdout", io.StringIO())
    assert isinstance(make_progress(True, 2), Heartbeat)
    assert isinstance(make_progress(False, 2), NullProgress)
    assert _progress.HEARTBEAT_SECONDS == pytest.approx(15.0)
