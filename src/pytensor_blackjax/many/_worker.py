"""A helper process for local ``sample_many``: ``python -m pytensor_blackjax.many._worker PARENT_PID``.

JAX runs the programs of one CPU device one after the other, whatever the Python threads, so fits in
threads of one process share one core (measured: two threads running a jitted loop took as much CPU
time as their wall time). Fits on several cores need several processes. These are started with
``subprocess`` rather than ``multiprocessing`` so that the user's script is never imported again in
them (``spawn`` re-runs an unguarded ``__main__``; ``fork`` copies a multithreaded JAX).

Protocol on the pipes (pickles between this package's own processes, never read from a file):
the parent sends ``(model_payload, FitOptions)`` once; the worker answers `READY` once the model is
compiled; then the parent sends one `FitJob` per fit and ``None`` to stop, and the worker answers each job
with its `FitOutcome`. Messages are length-prefixed. Until `READY` a helper holds no fit, so one that
is still starting when the fits run out is simply ended. A helper also ends by itself as soon as its
parent is gone, even in the middle of a fit (its pipes alone would tell it only at the fit's end).
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import threading
import time
from typing import IO, Any

__all__ = ["READY", "receive", "send"]

READY = "ready"
_HEADER = struct.Struct("<Q")


def send(stream: IO[bytes], message: Any) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """The next message, or raises EOFError when the other side has gone."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the other process closed the pipe")
    size = _HEADER.unpack(header)[0]
    body = stream.read(size)
    if len(body) < size:
        raise EOFError("the other process closed the pipe mid-message")
    return pickle.loads(body)


def _end_with_parent(parent: int) -> None:
    """End this helper once the process that started it is gone (killed in any way, SIGKILL included),
    rather than finish a fit nobody will read: it is then reparented, so its parent id changes."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def main() -> None:
    # the parent's id comes as the argument: it may already be gone by the time the imports are done
    parent = int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid()
    threading.Thread(target=_end_with_parent, args=(parent,), daemon=True).start()
    # messages go out on a private copy of stdout; anything printed by libraries goes to stderr
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    source = sys.stdin.buffer
    payload, options = receive(source)

    from pytensor_blackjax.compile import compile
    from pytensor_blackjax.many._fit import run_fit

    compiled = compile(pickle.loads(payload))
    send(out, READY)
    while (job := receive(source)) is not None:
        send(out, run_fit(compiled, job, options))


if __name__ == "__main__":
    try:
        main()
    except (EOFError, BrokenPipeError):  # the parent ended this helper's work: nothing left to say
        sys.exit(1)
