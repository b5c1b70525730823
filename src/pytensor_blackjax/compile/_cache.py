"""The one cache of compiled programs: owned by a `CompiledModel`, so programs live exactly as long as
the model they run (the on-disk program store, `run._stored`, is a layer beneath it)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["ProgramCache"]


class ProgramCache:
    """Values built once per key and kept for the owner's lifetime.

    Two threads asking for the same key at once may both build it; the first result is kept and
    returned to both (building is pure: tracing and compiling).
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The value under ``key``, built by ``build()`` on first use."""
        with self._lock:
            if key in self._entries:
                return self._entries[key]
        value = build()
        with self._lock:
            return self._entries.setdefault(key, value)

    def values(self) -> list[Any]:
        with self._lock:
            return list(self._entries.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
