"""``sample(..., store=..., watch=True)``: serve the live page of the run from a separate process.

The server is its own process (``pytensor-blackjax watch``), so its reads and diagnostics never take
the sampler's interpreter lock; it stops when the sampling process ends.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
import webbrowser
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WatchOptions", "check_watch", "start_watch"]

INSTALL_HINT = "pip install 'pytensor-blackjax[watch]'"


@dataclass(frozen=True)
class WatchOptions:
    """Where to serve the live page: ``port`` None picks a free one; ``open_browser`` opens it."""

    port: int | None = None
    host: str = "127.0.0.1"
    open_browser: bool = True


def check_watch(watch: bool | WatchOptions, store: str | os.PathLike | None) -> WatchOptions | None:
    """Validate ``watch=`` before anything is compiled; None when not watching.

    Raises:
        TypeError: ``watch`` is neither a bool nor `WatchOptions`.
        ValueError: watching without ``store=``.
        ImportError: the ``watch`` extra (Bokeh) is not installed.
    """
    if watch is False or watch is None:
        return None
    options = WatchOptions() if watch is True else watch
    if not isinstance(options, WatchOptions):
        raise TypeError(f"watch={watch!r}: pass True, or WatchOptions(port=..., host=..., open_browser=...).")
    if store is None:
        raise ValueError(
            "watch=True follows the run through its store; pass store='run.zarr' (a new path) as well."
        )
    if importlib.util.find_spec("bokeh") is None:
        raise ImportError(f"watch=True needs Bokeh for the live page; install it with {INSTALL_HINT}.")
    return options


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _open_when_ready(url: str, host: str, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            time.sleep(0.3)
            continue
        webbrowser.open(url)
        return


def start_watch(store: Path, options: WatchOptions) -> subprocess.Popen:
    """Start ``pytensor-blackjax watch store`` in the background; print where the page is."""
    port = options.port or _free_port(options.host)
    command = [
        sys.executable,
        "-c",
        "from pytensor_blackjax.cli import main; main()",
        "watch",
        str(store),
        "--port",
        str(port),
        "--host",
        options.host,
        "--stop-with",
        str(os.getpid()),
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    atexit.register(process.terminate)
    url = f"http://{options.host}:{port}/"
    print(f"Live page of {store}: {url}", file=sys.stderr, flush=True)
    if options.open_browser:
        threading.Thread(target=_open_when_ready, args=(url, options.host, port), daemon=True).start()
    return process
