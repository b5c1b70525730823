"""The one cache of compiled programs: owned by a `CompiledModel`, so programs live exactly as long as
the model they run (the on-disk program store, `run._stored`, is a layer beneath it)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["ProgramCache"]


class ProgramCache:
    """Values built once per key and kept for the owner's lifetime.

    A value is built once: a thread asking for a key another thread is building waits for that build
    instead of repeating it (on a first run the start-point and warmup-init programs both need the
    model's digest at once: building it twice traced the model twice, ~0.1 s of GIL before the warmup
    program's trace). A build that raises leaves the key unbuilt; the next asker builds it again.
    Builds of other keys (a build may ask for them) proceed meanwhile.
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, Any] = {}
        self._building: dict[Hashable, threading.RLock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The value under ``key``, built by ``build()`` on first use."""
        with self._lock:
            if key in self._entries:
                return self._entries[key]
            building = self._building.setdefault(key, threading.RLock())
        with building:
            with self._lock:
                if key in self._entries:
                    return self._entries[key]
            value = build()
            with self._lock:
                self._building.pop(key, None)
                return self._entries.setdefault(key, value)

    def values(self) -> list[Any]:
        with self._lock:
            return list(self._entries.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
