"""``pytensor-blackjax watch``: a live page of a run, served by Bokeh.

One `Watcher` per server reads the store once a second in a worker thread (off every document lock),
and rebuilds its `View` - diagnostics included - only when the commit count or the warmup note
changes. Each open page (`cli._watch_page`, which holds the rest of the Bokeh lines) polls the
watcher's version once a second and copies the new view into its data sources (streaming new points
of the trace when it can).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from pytensor_blackjax.cli._io import UserError
from pytensor_blackjax.cli._watch_page import REFRESH_MS, Page  # says how to install Bokeh when it is missing
from pytensor_blackjax.cli._watch_stats import Watcher
from pytensor_blackjax.store._watch_read import check_store

__all__ = ["serve"]


def _origins(host: str, port: int) -> list[str]:
    names = {host, "localhost", "127.0.0.1", socket.gethostname(), socket.getfqdn()}
    return sorted(f"{name}:{port}" for name in names if name and name != "0.0.0.0")


def _stop_with(pid: int | None, server) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        server.io_loop.stop()
    except PermissionError:
        pass


def _port_error(host: str, port: int, error: OSError) -> UserError:
    if error.errno == errno.EADDRINUSE:
        return UserError(
            f"port {port} on {host} is in use (another watch, or another server); pick a free one "
            f"with --port, e.g. --port {port + 1}."
        )
    return UserError(f"cannot listen on {host}:{port}: {error.strerror or error}; check --host and --port.")


def _check_port(host: str, port: int) -> None:
    """Fail before Bokeh binds: its failed bind leaves a socket unclosed."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as tornado binds
            probe.bind((host, port))
    except OSError as e:
        raise _port_error(host, port, e) from None


def serve(
    path: Path, *, port: int, host: str = "127.0.0.1", open_browser: bool = False, stop_with=None
) -> None:
    """Serve the live page of the store at ``path`` on http://host:port/ until Ctrl-C.

    Args:
        path: a store written by ``pbj.sample(..., store=path)``, finished, running or interrupted.
        port: TCP port to listen on.
        host: address to listen on; the default is this machine only (use an SSH port forward to see a
            remote run).
        open_browser: open the page in the default web browser.
        stop_with: a process id; the server stops when that process ends (used by ``sample(watch=True)``).

    Raises:
        FileNotFoundError, StoreError: ``path`` is not a store of this library.
        UserError: the port is in use or cannot be opened.
    """
    # imported here, not at the top: importing the page module has checked that Bokeh is installed
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.document import Document
    from bokeh.server.server import Server
    from tornado.ioloop import PeriodicCallback

    check_store(path)
    watcher = Watcher(path)
    watcher.refresh()

    def page(doc: Document) -> None:
        Page(doc, watcher)  # the document keeps the page alive through its callbacks

    app = Application(FunctionHandler(page))
    _check_port(host, port)
    try:
        server = Server({"/": app}, port=port, address=host, allow_websocket_origin=_origins(host, port))
    except OSError as e:
        raise _port_error(host, port, e) from None
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pbj-watch")

    async def refresh() -> None:  # PeriodicCallback waits for it: refreshes never overlap
        await asyncio.get_running_loop().run_in_executor(executor, watcher.refresh)
        _stop_with(stop_with, server)

    server.start()
    PeriodicCallback(refresh, REFRESH_MS).start()
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{server.port}/"
    print(f"Watching {path} at {url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        server.io_loop.add_callback(partial(server.show, "/"))
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
