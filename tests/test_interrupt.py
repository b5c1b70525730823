"""Ctrl-C: sampling stops at the next chunk boundary and returns the draws so far; during warmup it skips
sampling and raises; a second Ctrl-C raises at once; the store stays resumable."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytensor.tensor as pt
import pytest

import pytensor_blackjax as pbj
from pytensor_blackjax.store._sink import StoreSink

KW = dict(draws=600, tune=500, chains=2, seed=5, chunk_size=50, progressbar=False)

MODEL = """
import pytensor.tensor as pt
import pytensor_blackjax as pbj
m = pbj.ModelBuilder()
x = m.param("x", shape=(3,))
m.add_logp(-0.5 * pt.sum((x - 1.0) ** 2))
model = m.build()
"""


def make_model():
    m = pbj.ModelBuilder()
    x = m.param("x", shape=(3,))
    m.add_logp(-0.5 * pt.sum((x - 1.0) ** 2))
    return m.build()


def test_ctrl_c_keeps_draws_and_store_resumes_to_the_same_draws(tmp_path, monkeypatch):
    model = make_model()
    reference = pbj.sample(model, **KW)
    path = tmp_path / "run.zarr"
    chunk = StoreSink.chunk

    def press_ctrl_c_after_100(self, start, arrays, runner):
        chunk(self, start, arrays, runner)
        if start == 100:  # a real SIGINT to this process, handled by the driver's handler
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(StoreSink, "chunk", press_ctrl_c_after_100)
    with pytest.warns(RuntimeWarning, match=r"interrupted: returning the 150 draws per chain .*of 600"):
        with warnings.catch_warnings():
            # 150 draws may be too few for the R-hat/ESS thresholds; not what this test is about
            warnings.filterwarnings("ignore", category=pbj.SamplingWarning)
            partial = pbj.sample(model, store=str(path), **KW)
    monkeypatch.undo()
    assert partial["posterior"]["x"].shape == (2, 150, 3) and partial.attrs["interrupted"] == 1
    first = reference["posterior"]["x"].values[:, :150]
    np.testing.assert_array_equal(partial["posterior"]["x"].values, first)
    record = json.loads((path / "zarr.json").read_text())["attributes"]
    assert record["status"] == "sampling" and record["num_draws_completed"] == 150
    resumed = pbj.resume(str(path), progressbar=False)
    for group in ("posterior", "sample_stats"):
        for name in reference[group].data_vars:
            np.testing.assert_array_equal(resumed[group][name].values, reference[group][name].values)


def _status(path):
    try:
        return json.loads((path / "zarr.json").read_text())["attributes"]
    except (OSError, ValueError, KeyError):
        return {}


def test_sigint_from_outside_returns_draws_and_leaves_store_resumable(tmp_path):
    path = tmp_path / "run.zarr"
    code = (
        MODEL
        + f"""
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    tree = pbj.sample(model, draws=10**7, tune=100, chains=2, seed=1, chunk_size=50, progressbar=False,
                      store={str(path)!r})
print("DRAWS", tree["posterior"]["x"].shape[1])
print("WARNING", [str(w.message) for w in caught if w.category is RuntimeWarning])
"""
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 240
    while (
        time.time() < deadline and proc.poll() is None and _status(path).get("num_draws_completed", 0) < 100
    ):
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    draws = int(next(line for line in out.splitlines() if line.startswith("DRAWS")).split()[1])
    warning = next(line for line in out.splitlines() if line.startswith("WARNING"))
    assert draws >= 100 and f"returning the {draws} draws per chain" in warning
    record = _status(path)
    assert record["status"] == "sampling" and record["num_draws_completed"] == draws
    # resumable: the store validates and its chain state loads (finishing 10**7 draws is not the point here)
    from pytensor_blackjax.run import RunSettings
    from pytensor_blackjax.store import open_stored

    stored = open_stored(str(path), settings_type=RunSettings)
    assert stored.resume_point.phase == "sampling" and stored.resume_point.num_draws == draws
    assert stored.resume_point.state_leaves and stored.resume_point.layout == "threaded"


class Calls:
    """Counts the driver's calls of the layout's phases, and presses Ctrl-C in the first warmup chunk
    (``presses`` times: a second press raises at once)."""

    def __init__(self, monkeypatch, presses=1):
        from pytensor_blackjax.run._layouts import ChainLayout

        self.warmup_chunks, self.finish, self.sample = 0, 0, 0
        warmup, finish, sample = ChainLayout.warmup, ChainLayout.finish_warmup, ChainLayout.sample

        def warmup_and_press(layout, start, n_valid, rows):
            out = warmup(layout, start, n_valid, rows)
            self.warmup_chunks += 1
            if start == 0:
                for _ in range(presses):
                    signal.raise_signal(signal.SIGINT)
            return out

        def count_finish(layout):
            self.finish += 1
            return finish(layout)

        def count_sample(layout, start, n_valid):
            self.sample += 1
            return sample(layout, start, n_valid)

        monkeypatch.setattr(ChainLayout, "warmup", warmup_and_press)
        monkeypatch.setattr(ChainLayout, "finish_warmup", count_finish)
        monkeypatch.setattr(ChainLayout, "sample", count_sample)


def test_ctrl_c_during_warmup_skips_sampling_and_raises(monkeypatch):
    calls = Calls(monkeypatch)
    with pytest.raises(KeyboardInterrupt, match=r"before the first draw: there are no draws to return"):
        pbj.sample(make_model(), **KW)
    # the warmup chunk running when Ctrl-C came ends; adaptation is not finished, nothing is sampled
    assert (calls.warmup_chunks, calls.finish, calls.sample) == (1, 0, 0)


def test_ctrl_c_during_warmup_with_a_store_stays_resumable(tmp_path, monkeypatch):
    model = make_model()
    reference = pbj.sample(model, **KW)
    path = tmp_path / "run.zarr"
    calls = Calls(monkeypatch)
    with pytest.raises(KeyboardInterrupt, match=r"stays resumable: pbj.resume\(.*run.zarr"):
        pbj.sample(model, store=str(path), **KW)
    monkeypatch.undo()
    assert (calls.warmup_chunks, calls.finish, calls.sample) == (1, 0, 0)
    record = json.loads((path / "zarr.json").read_text())["attributes"]
    assert record["status"] == "warmup" and record["num_draws_completed"] == 0
    resumed = pbj.resume(str(path), progressbar=False)  # repeats the warmup
    np.testing.assert_array_equal(resumed["posterior"]["x"].values, reference["posterior"]["x"].values)


def test_a_second_ctrl_c_raises_at_once(monkeypatch):
    calls = Calls(monkeypatch, presses=2)
    with pytest.raises(KeyboardInterrupt) as info:
        pbj.sample(make_model(), **KW)
    assert "first draw" not in str(info.value)  # raised by the handler itself, not after the run
    assert (calls.warmup_chunks, calls.finish, calls.sample) == (1, 0, 0)


def test_ctrl_c_while_the_sampling_programs_compile_does_not_wait_for_them(monkeypatch):
    import threading

    from pytensor_blackjax.run._layouts import ChainLayout

    calls = Calls(monkeypatch, presses=0)
    warmup_over, release = threading.Event(), threading.Event()

    def slow_compile():  # stands in for an XLA compilation that outlasts the warmup
        warmup_over.wait(60)
        signal.raise_signal(signal.SIGINT)  # Ctrl-C while the driver waits for this "compilation"
        release.wait(60)

    def prepare(layout, start_shape, chunk, rows, *, with_log_likelihood=False):
        layout._prepared = threading.Thread(target=slow_compile, daemon=True)
        layout._prepared.start()

    warmup = ChainLayout.warmup

    def warmup_then_signal(layout, start, n_valid, rows):
        out = warmup(layout, start, n_valid, rows)
        if start + n_valid == KW["tune"]:
            warmup_over.set()
        return out

    monkeypatch.setattr(ChainLayout, "prepare", prepare)
    monkeypatch.setattr(ChainLayout, "warmup", warmup_then_signal)
    try:
        with pytest.raises(KeyboardInterrupt, match="before the first draw"):
            pbj.sample(make_model(), **KW)
        assert not release.is_set() and (calls.finish, calls.sample) == (0, 0)
    finally:
        release.set()
