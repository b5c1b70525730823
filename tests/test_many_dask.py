"""``sample_many(client=...)`` on a two-worker ``pbj.many.local_cluster``: the same draws as on this machine,
and a worker SIGKILLed mid-fit loses nothing (its fit resumes from its store, no draw made twice); a plain
script (no ``__main__`` guard) can start such a cluster, and its workers end with it."""

import json
import os
import signal
import subprocess
import sys
import textwrap
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
def cluster():
    with pbj.many.local_cluster(2) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def compiled():
    return pbj.compile(normal_model())


def test_fits_on_dask_equal_the_local_fits(cluster, compiled):
    sets = datasets(8)
    on_dask = pbj.sample_many(
        compiled, sets, client=cluster, **KW
    )  # a cluster: a client is made for the call
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


def test_local_cluster_arguments_are_checked():
    with pytest.raises(ValueError, match=r"workers=0 is not valid"):
        pbj.many.local_cluster(0)
    with pytest.raises(ValueError, match=r"threads_per_worker=1.5 is not valid"):
        pbj.many.local_cluster(1, threads_per_worker=1.5)


PLAIN_SCRIPT = """
    import os, sys
    print("top level ran", flush=True)  # once: a worker never imports this script
    import numpy as np, psutil, pytensor_blackjax as pbj
    from test_many import datasets, normal_model
    cluster = pbj.many.local_cluster(2)
    tree = pbj.sample_many(normal_model(), datasets(2), seed=1, draws=50, tune=50, chains=1,
                           progressbar=False, client=cluster)
    print("status", *tree["fits"]["status"].values, flush=True)
    print("children", *(p.pid for p in psutil.Process().children(recursive=True)), flush=True)
    sys.stdin.read()  # until killed
"""


@pytest.mark.slow
def test_a_plain_script_runs_local_cluster_once_and_leaves_no_worker(tmp_path):
    import psutil

    script = tmp_path / "plain.py"
    script.write_text(textwrap.dedent(PLAIN_SCRIPT))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), *sys.path]))
    with subprocess.Popen(
        [sys.executable, "-W", "ignore", str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line.split())
            if line.startswith("children"):
                break
        assert lines[0] == ["top", "level", "ran"] and lines[1] == ["status", "ok", "ok"], lines
        children = [psutil.Process(int(pid)) for pid in lines[2][1:]]
        assert len(children) >= 4  # per worker: its program (nanny) and its worker process
        process.kill()  # SIGKILL: no clean-up runs in the script
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, [p.cmdline()[:3] for p in alive]
