"""``sample_many(client=...)`` on a two-process Dask LocalCluster: the same draws as on this machine,
and a worker SIGKILLed mid-fit loses nothing (its fit resumes from its store, no draw made twice)."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_many import datasets, normal_model  # tests/ is on sys.path under pytest

import pytensor_blackjax as pbj
from pytensor_blackjax.many import read_attempts

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.filterwarnings("ignore::pytensor_blackjax.SamplingWarning")
KW = dict(draws=300, tune=300, chains=2, seed=21, progressbar=False)


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def compiled():
    return pbj.compile(normal_model())


def test_fits_on_dask_equal_the_local_fits(client, compiled):
    sets = datasets(8)
    on_dask = pbj.sample_many(compiled, sets, client=client, **KW)
    local = pbj.sample_many(compiled, sets, **KW)
    assert list(on_dask["fits"]["status"].values) == ["ok"] * 8
    np.testing.assert_array_equal(on_dask["posterior"]["mu"].values, local["posterior"]["mu"].values)
    np.testing.assert_array_equal(on_dask["fits"]["seed"].values, local["fits"]["seed"].values)


def _partial_store(store_dir: Path, draws: int):
    """A store with some committed draws, well before its end, and the worker pid that is writing it."""
    for store in sorted(store_dir.glob("fit-*.zarr")):
        try:
            attrs = json.loads((store / "zarr.json").read_text()).get("attributes", {})
        except (OSError, ValueError):
            continue
        if attrs.get("status") == "sampling" and 0 < int(attrs.get("num_draws_completed", 0)) < draws // 3:
            attempts = read_attempts(store)
            if attempts:
                return store, attempts[-1]["pid"]
    return None, None


def test_a_killed_worker_loses_no_fit_and_its_fit_resumes(client, compiled, tmp_path):
    sets = datasets(8)
    sets[5] = {"y": sets[5]["y"] * np.nan}  # bad data for one fit only
    kw = dict(KW, draws=6000, tune=200, chunk_size=50)
    box = {}
    runner = threading.Thread(
        target=lambda: box.update(
            tree=pbj.sample_many(compiled, sets, client=client, store_dir=tmp_path, **kw)
        )
    )
    runner.start()
    deadline, victim, pid = time.time() + 120, None, None
    while time.time() < deadline and runner.is_alive() and victim is None:
        victim, pid = _partial_store(tmp_path, kw["draws"])
        time.sleep(0.02)
    assert victim is not None, "no fit was caught mid-run"
    os.kill(pid, signal.SIGKILL)  # one worker process; its nanny starts a new one
    runner.join(300)
    tree = box["tree"]
    status = [str(s) for s in tree["fits"]["status"].values]
    assert status[5].startswith("ValueError: data['y'] contains NaN")
    assert [s for i, s in enumerate(status) if i != 5] == ["ok"] * 7

    index = int(victim.name[4:9])
    attempts = read_attempts(victim)
    assert len(attempts) == 2 and attempts[0]["pid"] == pid != attempts[1]["pid"]
    resumed_from = int(tree["fits"]["resumed_from"].values[index])
    assert (
        attempts[1]["store_status"] == "sampling" and resumed_from == attempts[1]["num_draws_completed"] > 0
    )
    assert int(tree["fits"]["attempts"].values[index]) == 2
    # no redone draws: every chunk committed before the kill was left as it was written
    resumed_at = attempts[1]["time"]
    kept = [
        p
        for p in (victim / "posterior").rglob("*")
        if p.is_file() and p.parent.name == "0" and p.name.isdigit() and int(p.name) < resumed_from // 50
    ]
    assert kept and all(p.stat().st_mtime < resumed_at for p in kept)

    # and the draws equal an undisturbed run of the same fit on this machine
    alone = pbj.sample(compiled, data=sets[index], **dict(kw, seed=int(tree["fits"]["seed"].values[index])))
    np.testing.assert_array_equal(tree["posterior"]["mu"].values[index], alone["posterior"]["mu"].values)
