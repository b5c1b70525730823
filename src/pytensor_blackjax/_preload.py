"""Loading the results side (xarray, pandas) in the background while a run compiles and samples.

Sampling itself needs JAX, Blackjax and PyTensor only; the DataTree at the end needs xarray and pandas,
whose import costs about half a second. ``sample`` calls `preload` first: a daemon thread imports them
and builds a tiny DataTree while the main thread waits on XLA (compilation and the chains release the
GIL), and `results` returns the module once it is there. Python's per-module import locks make the two
threads agree on one import.

The import is GIL-bound Python, as tracing and lowering a run's programs are: on a first run the two
shared one core's worth of GIL and the longest compilation started ~0.75 s later (rat tumors and arK on
2 cores). So the thread starts importing only at `release`: the chain layout calls it once its programs
are loaded from the program store or traced and lowered, when XLA compiles or the chains run without
the GIL; `results` releases it too, so a run that never gets that far still gets its module.

Beside running chains the import must not slow them: it runs at the lowest CPU priority (on Linux,
where a thread has its own nice value), so it takes the cores only when the chains leave them idle, and
with a short GIL switch interval (`SWITCH_INTERVAL`, Python's is 5 ms; restored afterwards), so a
chain's thread that needs the GIL between two programs gets it back at once instead of waiting out
the importing thread's turn. Threads the import starts inherit the priority (pyarrow's memory purge
thread, where pyarrow is installed). Warm runs, 4 chains on 2 cores, paired fresh processes: arK 0.80x,
rat tumors 0.89x the time to draws (docs/performance.md).

A caller that knows what it will do with the result (the command line prints ArviZ's summary) asks for
that too with `also`: the steps run in the same thread after the results side, and `results` waits for
them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from importlib import import_module
from types import ModuleType

__all__ = ["RESULTS", "also", "preload", "release", "results"]

RESULTS = "pytensor_blackjax.results"
LOWEST_PRIORITY = 19  # the nice value of the importing thread
SWITCH_INTERVAL = 1e-4  # seconds: the GIL switch interval while the import runs
_LOCK = threading.Lock()
_THREAD: threading.Thread | None = None
_GO = threading.Event()
_ALSO: list[Callable[[], object]] = []  # what the caller will need after the run (`also`), after RESULTS


def _load() -> None:
    _GO.wait()
    _lowest_priority()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    ours = sys.getswitchinterval()  # as Python stores it (whole microseconds)
    try:
        results = import_module(RESULTS)
        # the first DataTree imports what xarray loads on first use and reads the library versions;
        # here, not after the draws are in
        import numpy as np

        results.make_datatree({"posterior": {"x": np.zeros((1, 1))}})
        while _ALSO:
            with contextlib.suppress(Exception):  # where the caller uses it, it fails in the open
                _ALSO.pop(0)()
    except Exception:  # noqa: BLE001 - the main thread's own import reports the error
        pass
    finally:
        if sys.getswitchinterval() == ours:  # unless changed meanwhile
            sys.setswitchinterval(interval)


def _lowest_priority() -> None:
    """Give the calling thread the lowest CPU priority, where a thread has one of its own (Linux: the
    nice value is per thread; elsewhere it is the process's, which is left alone)."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
        except OSError:  # not permitted here: the import runs at the priority it has
            pass


def preload() -> None:
    """Start importing the results side in a background thread (once per process)."""
    global _THREAD
    with _LOCK:
        if _THREAD is None:
            _THREAD = threading.Thread(target=_load, name="pbj-preload", daemon=True)
            _THREAD.start()


def also(*steps: Callable[[], object]) -> None:
    """Have the background import run ``steps`` too, after the results side: imports (and first calls
    that import more) the caller will need once the draws are in - the command line's summary table
    needs ``arviz_stats``, ~0.7 s of imports. Call it before `sample`; a step asked for after the
    background import ended does not run (what it would load is loaded where it is used)."""
    with _LOCK:
        if _THREAD is None or _THREAD.is_alive():  # else nothing would run them: not kept
            _ALSO.extend(steps)


def release() -> None:
    """Let the background import begin: nothing on the run's critical path needs the GIL for now."""
    _GO.set()


def results() -> ModuleType:
    """The results module, waiting for a background import that is under way."""
    _GO.set()
    with _LOCK:
        thread = _THREAD
    if thread is not None:
        thread.join()
    return import_module(RESULTS)
