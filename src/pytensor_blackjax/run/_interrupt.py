"""Ctrl-C during a run: the first sets a flag the driver checks at chunk boundaries (of warmup too: a
Ctrl-C in warmup skips the sampling phase); a second raises ``KeyboardInterrupt`` as soon as the main
thread runs Python again. Neither can stop an XLA compilation or a chunk midway."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

__all__ = ["Interrupt", "interrupted_before_draws"]


class Interrupt:
    """A context manager that installs the handler (main thread only) and restores the previous one."""

    def __init__(self) -> None:
        self.hit = False
        self._previous: Any = None

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def interrupted_before_draws(store: Path | None) -> KeyboardInterrupt:
    """What ``sample`` and ``resume`` raise when a Ctrl-C came before the first draw: no result to
    return (an empty posterior would only fail later, in every function given it)."""
    message = "interrupted (Ctrl-C) before the first draw: there are no draws to return."
    if store is not None:
        message += (
            f" The store {str(store)!r} stays resumable: pbj.resume({str(store)!r}) continues the run "
            "(it repeats the warmup, so the draws equal those of an uninterrupted run)."
        )
    return KeyboardInterrupt(message)
