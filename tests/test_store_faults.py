"""kill -9 during warmup and at random moments of sampling, then resume: the draws equal those of an
uninterrupted run, bit for bit."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import pytensor_blackjax as pbj

SETTINGS = dict(draws=3000, tune=300, chains=2, seed=11, chunk_size=50)

MODEL = """
import pytensor.tensor as pt
import pytensor_blackjax as pbj
m = pbj.ModelBuilder()
x = m.param("x", shape=(4,))
s = m.param("s", transform="positive")
m.add_logp(-0.5 * pt.sum((x - 1.0) ** 2) - 0.5 * (pt.log(s)) ** 2)
model = m.build()
"""


def make_model():
    namespace: dict = {}
    exec(MODEL, namespace)
    return namespace["model"]


@pytest.fixture(scope="module")
def reference():
    return pbj.sample(make_model(), progressbar=False, **SETTINGS)


def _status(path):
    try:
        return json.loads((path / "zarr.json").read_text())["attributes"]
    except (OSError, ValueError, KeyError):
        return {}


def start_run(path):
    code = MODEL + f"pbj.sample(model, progressbar=False, store={str(path)!r}, **{SETTINGS!r})\n"
    with open(path.with_suffix(".err"), "wb") as err:  # the child keeps its own handle
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=err)


def wait_for(proc, path, ready, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready(_status(path)):
        time.sleep(0.02)
    if proc.poll() is not None and proc.returncode != 0:
        raise AssertionError(path.with_suffix(".err").read_text()[-2000:])


def kill(proc):
    """kill -9; returns False when the run had already finished."""
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def assert_resumes_to(path, reference):
    resumed = pbj.resume(str(path), progressbar=False)
    for group in ("posterior", "sample_stats"):
        for name in reference[group].data_vars:
            np.testing.assert_array_equal(
                resumed[group][name].values, reference[group][name].values, err_msg=f"{group}/{name}"
            )


def test_kill_during_warmup_then_resume_equals_uninterrupted(tmp_path, reference):
    path = tmp_path / "run.zarr"
    proc = start_run(path)
    wait_for(proc, path, lambda s: s.get("status") == "warmup")
    assert kill(proc), "the run finished before it could be killed"
    assert _status(path).get("status") == "warmup"
    assert_resumes_to(path, reference)


@pytest.mark.parametrize("trial", range(3))
def test_kill_at_a_random_moment_after_the_first_commit_then_resume(tmp_path, reference, trial):
    # the moment comes from a seeded RNG: a committed draw count to wait for, then a pause of up to a
    # chunk's worth of sampling, so the kill lands anywhere in a chunk (its writes, its commit, or the
    # steps between); the slow test below spreads 20 kills over the whole run by wall-clock time
    rng = random.Random(100 + trial)
    after = rng.randrange(SETTINGS["chunk_size"], SETTINGS["draws"] // 2)
    path = tmp_path / "run.zarr"
    proc = start_run(path)
    wait_for(proc, path, lambda s: s.get("num_draws_completed", 0) >= after)
    time.sleep(rng.uniform(0.0, 0.05))
    assert kill(proc), "the run finished before it could be killed"
    assert _status(path).get("status") == "sampling"
    assert_resumes_to(path, reference)


@pytest.mark.slow
def test_kill_at_random_moments_then_resume(tmp_path, reference):
    rng = random.Random(20)
    # how long a run lasts once its store exists, to spread the kills over warmup and sampling
    path = tmp_path / "timing.zarr"
    proc = start_run(path)
    wait_for(proc, path, lambda s: bool(s))
    t0 = time.time()
    proc.wait()
    span = time.time() - t0
    killed, phases = 0, set()
    for trial in range(40):
        path = tmp_path / f"run{trial}.zarr"
        proc = start_run(path)
        wait_for(proc, path, lambda s: bool(s))
        time.sleep(rng.uniform(0.0, span))
        if not kill(proc) or _status(path).get("status") == "complete":
            proc.wait()
            continue  # finished (or committed its last chunk) before the kill
        status = _status(path)
        phases.add(status.get("status"))
        assert_resumes_to(path, reference)
        killed += 1
        if killed >= 20:
            break
    assert killed >= 20 and {"warmup", "sampling"} <= phases, (killed, phases)


def test_fault_model_matches_reference_truth(reference):
    import arviz_stats

    x = reference["posterior"]["x"].values
    mcse = x.std(axis=(0, 1)) / np.sqrt(arviz_stats.ess(x, method="mean"))
    assert np.all(np.abs(x.mean(axis=(0, 1)) - 1.0) < 5 * mcse)
