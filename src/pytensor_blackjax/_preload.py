"""Loading the results side (xarray, pandas) in the background while a run compiles and samples.

Sampling itself needs JAX, Blackjax and PyTensor only; the DataTree at the end needs xarray and pandas,
whose import costs about half a second. ``sample`` calls `preload` first: a daemon thread imports them
and builds a tiny DataTree while the main thread waits on XLA (compilation and the chains release the
GIL), and `results` returns the module once it is there. Python's per-module import locks make the two
threads agree on one import.

The import is GIL-bound Python, as tracing and lowering a run's programs are: on a first run the two
shared one core's worth of GIL and the longest compilation started ~0.75 s later (rat tumors and arK on
2 cores). So the thread starts importing only at `release`: the chain layout calls it once its programs
are loaded from the program store or traced and lowered, when XLA compiles without the GIL; `results`
releases it too, so a run that never gets that far still gets its module.
"""

from __future__ import annotations

import threading
from importlib import import_module
from types import ModuleType

__all__ = ["RESULTS", "preload", "release", "results"]

RESULTS = "pytensor_blackjax.results"
_LOCK = threading.Lock()
_THREAD: threading.Thread | None = None
_GO = threading.Event()


def _load() -> None:
    _GO.wait()
    try:
        results = import_module(RESULTS)
        # the first DataTree imports what xarray loads on first use and reads the library versions;
        # here, not after the draws are in
        import numpy as np

        results.make_datatree({"posterior": {"x": np.zeros((1, 1))}})
    except Exception:  # noqa: BLE001 - the main thread's own import reports the error
        pass


def preload() -> None:
    """Start importing the results side in a background thread (once per process)."""
    global _THREAD
    with _LOCK:
        if _THREAD is None:
            _THREAD = threading.Thread(target=_load, name="pbj-preload", daemon=True)
            _THREAD.start()


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
