"""A live progress display: draws/s, divergences, step size and time left, per phase."""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["NullProgress", "Progress", "make_progress"]


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
        self._task = self._bar.add_task(phase, total=total, rate="", div=0, step="", note="")

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
        self._bar.update(self._task, note=text)

    def stop(self) -> None:
        self._bar.stop()


def make_progress(enabled: bool, chains: int):
    if not enabled or not sys.stderr:
        return NullProgress()
    return Progress(chains)
