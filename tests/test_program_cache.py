"""The model's program cache builds each value once, also when threads ask for it together."""

from __future__ import annotations

import threading
import time

import pytest

from pytensor_blackjax.compile._cache import ProgramCache


def test_threads_asking_together_share_one_build():
    cache, builds, started = ProgramCache(), [], threading.Event()

    def build():
        builds.append(threading.get_ident())
        started.set()
        time.sleep(0.2)  # the other threads ask meanwhile
        return object()

    results = [None] * 4

    def ask(i):
        results[i] = cache.get("digest", build)

    first = threading.Thread(target=ask, args=(0,))
    first.start()
    started.wait()
    others = [threading.Thread(target=ask, args=(i,)) for i in range(1, 4)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join()
    assert len(builds) == 1
    assert all(r is results[0] for r in results)
    assert len(cache) == 1


def test_other_keys_build_while_one_builds():
    cache, release = ProgramCache(), threading.Event()
    slow = threading.Thread(target=lambda: cache.get("slow", lambda: release.wait(5)))
    slow.start()
    try:
        assert cache.get("fast", lambda: 1) == 1  # not held up by the slow build
    finally:
        release.set()
        slow.join()
    assert cache.get("slow", lambda: pytest.fail("built twice")) is True


def test_a_build_may_ask_for_other_keys_and_a_failed_build_is_retried():
    cache = ProgramCache()
    assert cache.get("outer", lambda: cache.get("inner", lambda: 2) + 1) == 3

    def broken():
        raise RuntimeError("no")

    with pytest.raises(RuntimeError, match="no"):
        cache.get("key", broken)
    assert cache.get("key", lambda: 5) == 5
    assert len(cache) == 3
