"""``pytensor-blackjax watch``: the committed-draws reader, the page's numbers, and the page itself in
headless Chromium (Debian's package) - for a finished, an interrupted and a running store."""

import asyncio
import base64
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest

import pytensor_blackjax as pbj
from pytensor_blackjax.cli import main
from pytensor_blackjax.cli._watch_stats import Rate, build_view
from pytensor_blackjax.store._watch_read import STALE_AFTER, CommittedDraws, read_status

BIN = Path(sys.executable).parent / "pytensor-blackjax"
CHROMIUM = Path("/usr/bin/chromium")
MODEL = """
import pytensor.tensor as pt
import pytensor_blackjax as pbj
m = pbj.ModelBuilder(name="toy")
x = m.param("x", shape=(5,))
s = m.param("s", transform="positive")
m.add_logp(-0.5 * pt.sum((x / s) ** 2) - 5 * pt.log(s) - s)
model = m.build()
"""
LABELS = ["s"] + [f"x[{i}]" for i in range(5)]  # by variable name, whatever the file system lists first


def _toy_model():
    namespace: dict = {}
    exec(textwrap.dedent(MODEL), namespace)
    return namespace["model"]


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


def _set_attrs(store: Path, **attrs) -> None:
    meta = json.loads((store / "zarr.json").read_text())
    meta["attributes"].update(attrs)
    (store / "zarr.json").write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("watch") / "run.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short run: its diagnostics warnings are not the subject here
        pbj.sample(_toy_model(), draws=200, tune=200, chains=2, seed=1, progressbar=False, store=str(store))
    return store


@pytest.fixture()
def interrupted(finished, tmp_path) -> Path:
    """The finished store as a killed run leaves it: 100 draws committed, the writer gone."""
    store = tmp_path / "cut.zarr"
    shutil.copytree(finished, store)
    (store / "_pbj" / "progress.json").unlink()
    _set_attrs(store, status="sampling", num_draws_completed=100, writer_pid=_dead_pid())
    return store


# -- the reader -----------------------------------------------------------------------------------


def test_a_finished_store_reads_complete_with_its_warmup_note(finished):
    status = read_status(finished)
    assert (status.phase, status.num_draws, status.draws, status.chains) == ("complete", 200, 200, 2)
    note = json.loads((finished / "_pbj" / "progress.json").read_text())
    assert (note["phase"], note["steps_done"], note["tune"]) == ("warmup", 200, 200)
    assert note["step_size"] > 0


def test_only_committed_draws_are_read(interrupted):
    status = read_status(interrupted)
    assert status.phase == "interrupted" and status.writer_alive is False
    assert "pytensor-blackjax resume" in status.resume_hint
    draws = CommittedDraws(interrupted)
    assert draws.advance(status.num_draws)
    assert draws.arrays["posterior"]["x"].shape == (2, 100, 5)
    assert not draws.advance(100)  # nothing new: nothing read
    # the draws past the commit exist on disk but are not part of the run
    assert draws.advance(150) and draws.arrays["posterior"]["x"].shape == (2, 150, 5)


def test_a_live_writer_a_stale_one_and_a_stopped_one(interrupted):
    import os
    import socket as sock

    _set_attrs(interrupted, writer_pid=os.getpid(), writer_host=sock.gethostname())
    assert read_status(interrupted).phase == "sampling"
    assert read_status(interrupted, now=time.time() + STALE_AFTER + 1).phase == "interrupted"
    _set_attrs(interrupted, writer_host="another-node")  # no pid to check there: only staleness counts
    assert read_status(interrupted).writer_alive is None
    assert read_status(interrupted).phase == "sampling"
    stopped = {
        "phase": "stopped",
        "time": time.time(),
        "writer_pid": os.getpid(),
        "writer_host": sock.gethostname(),
    }
    time.sleep(0.01)
    (interrupted / "_pbj" / "progress.json").write_text(json.dumps(stopped))
    assert read_status(interrupted).phase == "interrupted"


def test_view_has_a_row_per_component_and_the_usual_thresholds(finished):
    status = read_status(finished)
    draws = CommittedDraws(finished)
    draws.advance(status.num_draws)
    view = build_view(status, draws, version=1, rate=Rate())
    assert [d.label for d in view.diagnostics] == LABELS
    assert all(np.isfinite(d.rhat) and d.ess_bulk > 0 and d.ess_tail > 0 for d in view.diagnostics)
    assert view.columns.shape == (2, 200, 6) and view.diverging.shape == (2, 200)
    assert len(view.chains) == 2 and all(c.step_size > 0 and 0 < c.acceptance <= 1 for c in view.chains)
    assert view.ess_min == 200  # 100 per chain


def test_the_pages_diagnostics_are_arvizs():
    """R-hat, bulk and tail ESS of every component equal ``arviz_stats``' on the same draws."""
    import arviz_stats
    import xarray as xr

    from pytensor_blackjax.cli._watch_stats import _diagnostics
    from pytensor_blackjax.results import TAIL_PROB

    rng = np.random.default_rng(5)
    columns = np.cumsum(rng.normal(size=(3, 150, 4)), axis=1) * [1.0, 0.1, 0.0, 0.0] + rng.normal(
        size=(3, 150, 4)
    )
    rows = _diagnostics(["a", "b", "c", "d"], columns)
    data = xr.Dataset({"x": (("chain", "draw", "component"), columns)})
    expected = {
        "rhat": arviz_stats.rhat(data)["x"].values,
        "ess_bulk": arviz_stats.ess(data, method="bulk")["x"].values,
        "ess_tail": arviz_stats.ess(data, method="tail", prob=TAIL_PROB)["x"].values,
    }
    for name, values in expected.items():
        np.testing.assert_allclose([getattr(r, name) for r in rows], values, rtol=1e-8, err_msg=name)


def test_rate_gives_an_eta_from_two_observations(finished):
    status = read_status(finished)
    running = type(status)(**{**status.__dict__, "phase": "sampling", "num_draws": 100})
    later = type(status)(**{**status.__dict__, "phase": "sampling", "num_draws": 150})
    rate = Rate()
    assert rate.observe(running, now=0.0) == (None, None)
    per_second, left = rate.observe(later, now=10.0)
    assert per_second == pytest.approx(5.0) and left == pytest.approx(10.0)


# -- bad input ------------------------------------------------------------------------------------


def _cli(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop:
        main([*map(str, args)])
    out = capsys.readouterr()
    return stop.value.code, out.out + out.err


def test_watch_refuses_a_missing_path(capsys, tmp_path):
    code, text = _cli(capsys, "watch", tmp_path / "nowhere.zarr", "--port", _free_port())
    assert code == 1 and "nowhere.zarr" in text and "does not exist" in text


def test_watch_refuses_a_folder_that_is_no_store(capsys, tmp_path):
    code, text = _cli(capsys, "watch", tmp_path, "--port", _free_port())
    assert code == 1 and "is not a pytensor-blackjax store" in text and "store=" in text


def test_watch_refuses_a_zarr_store_of_another_kind(capsys, tmp_path):
    import xarray as xr

    xr.Dataset({"a": ("x", np.arange(3.0))}).to_zarr(
        tmp_path / "results.zarr", zarr_format=3, consolidated=False
    )
    code, text = _cli(capsys, "watch", tmp_path / "results.zarr", "--port", _free_port())
    assert code == 1 and "not a run store" in text and "report" in text


def test_watch_refuses_another_format_version(capsys, interrupted):
    _set_attrs(interrupted, pbj_store_format=99)
    code, text = _cli(capsys, "watch", interrupted, "--port", _free_port())
    assert code == 1 and "format 99" in text


def test_watch_refuses_a_port_in_use(capsys, finished):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code, text = _cli(capsys, "watch", finished, "--port", port)
    assert code == 1 and f"port {port}" in text and "in use" in text and "--port" in text


def test_run_watch_needs_a_store(capsys, tmp_path):
    (tmp_path / "m.py").write_text(MODEL)
    code, text = _cli(capsys, "run", tmp_path / "m.py", "--watch")
    assert code == 1 and "--store" in text


def test_sample_watch_needs_a_store_and_a_known_value():
    with pytest.raises(ValueError, match="store="):
        pbj.sample(_toy_model(), watch=True, progressbar=False)
    assert pbj.WatchOptions().open_browser and pbj.WatchOptions().host == "127.0.0.1"
    with pytest.raises(TypeError, match="watch='yes'"):
        pbj.sample(_toy_model(), watch="yes", store="x.zarr", progressbar=False)


# -- the page in headless Chromium ----------------------------------------------------------------

# Bokeh draws into shadow roots, which the DOM dump leaves out: collect the text through them.
PAGE_TEXT = """(() => {
  const out = [];
  const walk = (node) => {
    if (node.nodeName === 'STYLE' || node.nodeName === 'SCRIPT') return;
    if (node.nodeType === Node.TEXT_NODE) { out.push(node.textContent); return; }
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(document.body);
  return out.join(' ').replace(/\\s+/g, ' ');
})()"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """Headless Chromium driven over the DevTools protocol (tornado's websocket client, from Bokeh)."""

    def __init__(self, width: int = 1400, height: int = 1200):
        if not CHROMIUM.exists():
            pytest.fail(
                "the live page is tested in Debian's chromium at /usr/bin/chromium: install it with "
                "apt-get install -y chromium"
            )
        self.profile = tempfile.mkdtemp(prefix="pbj-chromium-")
        # --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start.
        command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
        command += [f"--window-size={width},{height}", "--remote-debugging-port=0"]
        command += [f"--user-data-dir={self.profile}", "about:blank"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.port = None
        deadline = time.monotonic() + 60
        while self.port is None and time.monotonic() < deadline:
            line = self.process.stderr.readline()
            found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            self.port = int(found.group(1)) if found else None
            if not line and self.process.poll() is not None:
                break
        if self.port is None:
            self.close()
            pytest.fail("headless chromium did not start (no DevTools port)")

    def visit(self, url: str, shot: Path, wait: float = 5.0) -> tuple[str, str, list[str]]:
        """(title, text, console errors) of the page ``wait`` seconds after loading it; a screenshot."""
        return asyncio.run(self._visit(url, shot, wait))

    async def _visit(self, url, shot, wait):
        from tornado.websocket import websocket_connect

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list") as r:
            target = next(t for t in json.load(r) if t["type"] == "page")
        ws = await websocket_connect(target["webSocketDebuggerUrl"], max_message_size=2**28)
        errors: list[str] = []
        counter = iter(range(1, 1_000_000))

        async def call(method, **params):
            ident = next(counter)
            ws.write_message(json.dumps({"id": ident, "method": method, "params": params}))
            while True:
                message = json.loads(await ws.read_message())
                if message.get("id") == ident:
                    return message.get("result", {})
                event, p = message.get("method"), message.get("params", {})
                if event == "Runtime.exceptionThrown":
                    details = p["exceptionDetails"]
                    errors.append(
                        f"{details.get('text')} {details.get('exception', {}).get('description', '')}"
                    )
                elif event == "Runtime.consoleAPICalled" and p["type"] == "error":
                    errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
                elif event == "Log.entryAdded" and p["entry"]["level"] == "error":
                    errors.append(p["entry"]["text"])

        for domain in ("Runtime", "Log", "Page"):
            await call(f"{domain}.enable")
        await call("Page.navigate", url=url)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:  # keep reading events (errors) while the page settles
            await call("Runtime.evaluate", expression="1")
            await asyncio.sleep(0.25)
        title = (await call("Runtime.evaluate", expression="document.title", returnByValue=True))["result"]
        text = (await call("Runtime.evaluate", expression=PAGE_TEXT, returnByValue=True))["result"]
        image = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        shot.write_bytes(base64.b64decode(image["data"]))
        seen = list(errors)
        await call("Page.navigate", url="about:blank")  # leave before the server goes
        ws.close()
        while await asyncio.wait_for(ws.read_message(), 5) is not None:  # until the socket is closed
            pass
        return title["value"], text["value"], seen

    def close(self):
        self.process.kill()
        self.process.communicate()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture()
def browser():
    b = Browser()
    yield b
    b.close()


class Server:
    """``pytensor-blackjax watch STORE`` on a free loopback port, in its own process."""

    def __init__(self, store: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        command = [str(BIN), "watch", str(store), "--port", str(self.port)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    assert r.status == 200
                    return
            except OSError:
                if self.process.poll() is not None:
                    pytest.fail(f"watch exited: {self.process.communicate()[1][-2000:]}")
                time.sleep(0.3)
        self.close()
        pytest.fail("watch did not serve its page within 120 s")

    def close(self) -> str:
        """Stop the server; its log (stderr)."""
        self.process.kill()
        return self.process.communicate()[1]


def read_committed(store: Path) -> int:
    try:
        return int(json.loads((store / "zarr.json").read_text())["attributes"]["num_draws_completed"])
    except (OSError, ValueError, KeyError):
        return 0


def _committed_on_page(text: str) -> int:
    found = re.search(r"(\d+) of (\d+) draws per chain committed", text)
    assert found, text[:500]
    return int(found.group(1))


def _no_blank(shot: Path) -> None:
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    coloured = np.count_nonzero(pixels.max(axis=2) - pixels.min(axis=2) > 0.3)  # chain lines, badges
    assert coloured > 5_000, coloured


def _assert_page(text: str, errors: list[str], phase: str) -> None:
    assert not errors, errors
    assert f" {phase} " in text
    for label in LABELS:  # the R-hat table lists every variable, with its R-hat
        assert re.search(rf" {re.escape(label)} \d\.\d+ ", text), label
    for part in (
        "R-hat",
        "bulk ESS",
        "tail ESS",
        "step size",
        "acceptance",
        "E-BFMI",
        "Pair plot",
        "Trace and rank of",
    ):
        assert part in text, part


def test_page_of_a_finished_and_an_interrupted_store(finished, interrupted, browser, tmp_path):
    for store, phase, committed in ((finished, "complete", 200), (interrupted, "interrupted", 100)):
        server = Server(store)
        try:
            title, text, errors = browser.visit(server.url, tmp_path / f"{phase}.png")
        finally:
            log = server.close()
        assert "ERROR" not in log, log[-2000:]
        _assert_page(text, errors, phase)
        assert title.startswith(f"{phase} · {committed}/200 draws")
        assert _committed_on_page(text) == committed
        _no_blank(tmp_path / f"{phase}.png")
    assert f"resume with pytensor-blackjax resume {interrupted}" in text


@pytest.mark.slow
def test_page_follows_a_running_store_then_sees_it_interrupted(browser, tmp_path):
    store = tmp_path / "live.zarr"
    options = f"draws=400_000, tune=500, chains=2, seed=1, progressbar=False, store={str(store)!r}"
    code = textwrap.dedent(MODEL) + f"pbj.sample(model, {options})"
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and read_committed(store) == 0:
            assert writer.poll() is None, writer.communicate()[1][-2000:]
            time.sleep(0.3)
        server = Server(store)
        seen = []
        for moment in ("first", "second"):
            _, text, errors = browser.visit(server.url, tmp_path / f"live-{moment}.png", wait=6.0)
            seen.append(_committed_on_page(text))
            assert not errors, errors
        assert seen[1] > seen[0] > 0, seen
        _assert_page(text, errors, "sampling")
        assert writer.poll() is None  # the reader did not stop the writer
        writer.kill()
        writer.wait()
        _, text, errors = browser.visit(server.url, tmp_path / "live-killed.png", wait=4.0)
        assert " interrupted " in text and "pytensor-blackjax resume" in text
    finally:
        writer.kill()
        writer.communicate()
        if server is not None:
            server.close()


def test_start_watch_serves_the_store_from_a_separate_process(finished, capsys):
    from pytensor_blackjax._watching import start_watch

    port = _free_port()
    process = start_watch(finished, pbj.WatchOptions(port=port, open_browser=False))
    try:
        assert f"http://127.0.0.1:{port}/" in capsys.readouterr().err
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    assert "complete" in r.read().decode()  # the page title
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
    finally:
        process.kill()
        process.wait()


def test_page_data_before_the_first_commit_has_a_column_per_chain(interrupted):
    from pytensor_blackjax.cli import _watch_page

    _set_attrs(interrupted, status="warmup", num_draws_completed=0)
    status = read_status(interrupted)
    draws = CommittedDraws(interrupted)
    draws.advance(0)
    view = build_view(status, draws, version=1, rate=Rate())
    assert view.labels == () and view.diagnostics == ()
    assert set(_watch_page.trace_data(view, "")) == {"draw", "c0", "c1"}  # the glyphs' columns exist, empty
    assert set(_watch_page.rank_data(view, "")) == {"bin", "c0", "c1"}
