"""A live progress display: draws/s, divergences, step size and time left, per phase."""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["HEARTBEAT_SECONDS", "Heartbeat", "NullProgress", "Progress", "make_progress"]

# CI logs and batch jobs get one line this often (a live bar there only shows its final state).
HEARTBEAT_SECONDS = 15.0


class NullProgress:
    def start(self, phase: str, total: int) -> None: ...

    def advance(self, n: int, *, divergences: int = 0, step_size: float | None = None) -> None: ...

    def note(self, text: str) -> None: ...

    def stop(self) -> None: ...


class Progress:
    """Rich progress bar for all chains together (chunks advance every chain in lock step)."""

    def __init__(self, chains: int):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self.chains = chains
        self._bar = RichProgress(
            TextColumn("[bold]{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("div {task.fields[div]}"),
            TextColumn("step {task.fields[step]}"),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
            refresh_per_second=4,
        )
        self._task: Any = None
        self._t0 = 0.0
        self._done = 0
        self._div = 0
        self._bar.start()

    def start(self, phase: str, total: int) -> None:
        self._t0, self._done, self._div = time.perf_counter(), 0, 0
        from rich.markup import escape

        self._task = self._bar.add_task(escape(phase), total=total, rate="", div=0, step="", note="")

    def advance(self, n: int, *, divergences: int = 0, step_size: float | None = None) -> None:
        self._done += n
        self._div += divergences
        rate = self._done * self.chains / max(time.perf_counter() - self._t0, 1e-9)
        self._bar.update(
            self._task,
            advance=n,
            rate=f"{rate:,.0f} draws/s",
            div=self._div,
            step="" if step_size is None else f"{step_size:.3g}",
        )

    def note(self, text: str) -> None:
        """A short line after the bar (e.g. an until-run's worst ESS and draws still needed)."""
        from rich.markup import escape

        self._bar.update(self._task, note=escape(text))

    def stop(self) -> None:
        self._bar.stop()


class Heartbeat:
    """Plain lines for output that is not a terminal: one every ``interval`` seconds during a phase
    (draws done, rate, divergences) and one when it ends."""

    def __init__(self, chains: int, *, interval: float = HEARTBEAT_SECONDS, stream=None):
        self.chains, self.interval, self._stream = chains, interval, stream or sys.stdout
        self._phase, self._total, self._done, self._div, self._note = "", 0, 0, 0, ""
        self._t0 = self._last = 0.0

    def note(self, text: str) -> None:
        self._note = text

    def start(self, phase: str, total: int) -> None:
        self.stop()  # the previous phase's last line
        self._phase, self._total, self._done, self._div, self._note = phase, total, 0, 0, ""
        self._t0 = self._last = time.perf_counter()

    def advance(self, n: int, *, divergences: int = 0, step_size: float | None = None) -> None:
        self._done += n
        self._div += divergences
        now = time.perf_counter()
        if now - self._last >= self.interval and self._done < self._total:
            self._last = now
            self._line(now)

    def stop(self) -> None:
        if self._phase:
            self._line(time.perf_counter())
            self._phase = ""

    def _line(self, now: float) -> None:
        elapsed = max(now - self._t0, 1e-9)
        rate = self._done * self.chains / elapsed
        share = 100 * self._done / max(self._total, 1)
        print(
            f"{self._phase}: {self._done}/{self._total} draws per chain ({share:.0f}%), "
            f"{rate:,.0f} draws/s, {self._div} divergences, {elapsed:.0f} s"
            + (f"; {self._note}" if self._note else ""),
            file=self._stream,
            flush=True,
        )


def make_progress(enabled: bool, chains: int):
    if not enabled or not sys.stderr:
        return NullProgress()
    if sys.stdout is None or not sys.stdout.isatty():
        return Heartbeat(chains)
    return Progress(chains)
