"""Ctrl-C: sampling stops at the next chunk boundary, returns the draws so far, the store stays resumable."""

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
    from pytensor_blackjax.store import open_stored

    stored = open_stored(str(path))
    assert stored.resume_point.num_draws == draws


def test_ctrl_c_during_warmup_without_store_still_returns_one_chunk(monkeypatch):
    from pytensor_blackjax.run._layouts import ChainLayout

    model = make_model()
    warmup = ChainLayout.warmup

    def press_ctrl_c_in_first_warmup_chunk(self, start, n_valid, rows):
        out = warmup(self, start, n_valid, rows)
        if start == 0:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(ChainLayout, "warmup", press_ctrl_c_in_first_warmup_chunk)
    with pytest.warns(RuntimeWarning, match=r"returning the 50 draws per chain .*Warmup was cut short"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=pbj.SamplingWarning)  # 50 draws: not the point here
            tree = pbj.sample(model, **KW)
    assert tree["posterior"]["x"].shape == (2, 50, 3)
    assert np.isfinite(tree["posterior"]["x"].values).all() and tree.attrs["interrupted"] == 1
