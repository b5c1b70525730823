"""The live page of ``pytensor-blackjax watch``: its screenshot for the docs, and what it costs the sampler.

Each run samples the rat-tumour model (4 chains, NUTS) into a store in a fresh process; the page is
loaded in headless Chromium (Debian's package, driven over the DevTools protocol with tornado's websocket
client, which comes with Bokeh).

    python benchmarks/watch.py screenshot   # docs/img/watch.png, taken while a run samples
    python benchmarks/watch.py overhead     # sampling time with and without a page reloaded every second

``overhead`` writes benchmarks/results/watch.md (with the commit, date and load average: timings on a
shared machine are noisy) and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CLI = str(Path(sys.executable).parent / "pytensor-blackjax")
RUN = """
import pytensor_blackjax as pbj
pbj.sample(pbj.examples.rat_tumors(), draws={draws}, tune=1000, chains=4, seed=1, progressbar=False,
           store={store!r})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def committed(store: Path) -> int:
    try:
        return int(json.loads((store / "zarr.json").read_text())["attributes"]["num_draws_completed"])
    except (OSError, ValueError, KeyError):
        return 0


def start_run(store: Path, draws: int) -> subprocess.Popen:
    code = RUN.format(draws=draws, store=str(store))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)


def start_watch(store: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    watch = subprocess.Popen([CLI, "watch", str(store), "--port", str(port)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return watch, url
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("watch did not start")


class Chromium:
    """One headless tab, driven over the DevTools protocol."""

    def __init__(self, width=1400, height=1100):
        self.profile = tempfile.mkdtemp()
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--window-size={width},{height}", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        port = None
        while port is None:
            found = re.search(r"ws://[^:]+:(\d+)/", self.process.stderr.readline())
            port = int(found.group(1)) if found else None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
            self.ws_url = next(t for t in json.load(r) if t["type"] == "page")["webSocketDebuggerUrl"]
        self.loop = asyncio.new_event_loop()
        self.ws = self.loop.run_until_complete(self._connect())
        self.ids = iter(range(1, 10**9))

    async def _connect(self):
        from tornado.websocket import websocket_connect

        return await websocket_connect(self.ws_url, max_message_size=2**28)

    def call(self, method, **params):
        async def go():
            ident = next(self.ids)
            self.ws.write_message(json.dumps({"id": ident, "method": method, "params": params}))
            while True:
                message = json.loads(await self.ws.read_message())
                if message.get("id") == ident:
                    return message.get("result", {})

        # a reply can be lost while the page is torn down for a reload: never wait on one for long
        try:
            return self.loop.run_until_complete(asyncio.wait_for(go(), 10))
        except TimeoutError:
            return {}

    def screenshot(self, url: str, path: Path, wait: float = 6.0) -> None:
        self.call("Page.navigate", url=url)
        time.sleep(wait)
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self):
        self.ws.close()
        self.process.kill()
        self.process.communicate()
        shutil.rmtree(self.profile, ignore_errors=True)


def screenshot(out: Path) -> None:
    work = Path(tempfile.mkdtemp())
    store = work / "rats.zarr"
    run = start_run(store, draws=20_000)
    watch, browser = None, None
    try:
        while committed(store) < 1500:
            if run.poll() is not None:
                raise RuntimeError("the run stopped")
            time.sleep(0.5)
        watch, url = start_watch(store)
        browser = Chromium()
        time.sleep(3)  # a few commits seen by the watcher: draws per second and ETA
        out.parent.mkdir(parents=True, exist_ok=True)
        browser.screenshot(url, out)
        print(f"wrote {out}")
    finally:
        for p in (run, watch):
            if p is not None:
                p.kill()
                p.wait()
        if browser is not None:
            browser.close()
        shutil.rmtree(work, ignore_errors=True)


def one_run(draws: int, watched: bool) -> float:
    """Sampling seconds (from the store) of one run; with a page reloaded every second if ``watched``."""
    work = Path(tempfile.mkdtemp())
    store = work / "rats.zarr"
    run = start_run(store, draws)
    watch, browser = None, None
    try:
        if watched:
            while not (store / "zarr.json").exists():
                time.sleep(0.2)
            watch, url = start_watch(store)
            browser = Chromium()
            while run.poll() is None:
                browser.call("Page.navigate", url=url)
                time.sleep(1.0)
        run.wait()
        return float(json.loads((store / "zarr.json").read_text())["attributes"]["sampling_time"])
    finally:
        for p in (run, watch):
            if p is not None:
                p.kill()
                p.wait()
        if browser is not None:
            browser.close()
        shutil.rmtree(work, ignore_errors=True)


def overhead(draws: int, repeats: int) -> str:
    plain, watched = [], []
    for _ in range(repeats):  # alternate, so that load drifts hit both alike
        plain.append(one_run(draws, watched=False))
        watched.append(one_run(draws, watched=True))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    lines = [
        "# The live page's cost to the sampler",
        "",
        f"`python benchmarks/watch.py overhead` at commit {commit.stdout.strip()}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}.",
        f"Rat tumours, NUTS, 4 chains x (1000 warmup + {draws} draws), store=; sampling time from the store.",
        "Watched: `pytensor-blackjax watch` on the store, headless Chromium reloading the page every second.",
        "",
        "| run | sampling seconds (each run) | median |",
        "|---|---|---|",
        f"| not watched | {', '.join(f'{t:.2f}' for t in plain)} | {sorted(plain)[len(plain) // 2]:.2f} |",
        f"| watched | {', '.join(f'{t:.2f}' for t in watched)} | {sorted(watched)[len(watched) // 2]:.2f} |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["screenshot", "overhead"])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "watch.png")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.what == "screenshot":
        screenshot(args.out)
    else:
        table = overhead(args.draws, args.repeats)
        (ROOT / "benchmarks" / "results" / "watch.md").write_text(table)
        print(table)


if __name__ == "__main__":
    main()
