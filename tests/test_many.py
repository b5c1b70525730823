"""``sample_many`` on this machine: exact posteriors per fit, each fit equal to the same fit run alone,
one failing fit kept apart, stores read back, and the argument errors."""

import os
import subprocess
import sys
import time

import numpy as np
import pytensor.tensor as pt
import pytest
from conftest import moment_z

import pytensor_blackjax as pbj
from pytensor_blackjax.many import fit_seed, read_attempts

N = 20
PRIOR_SD = 10.0
# Under filterwarnings=error a diagnostics warning inside a fit would fail that fit; the short runs here
# test the plumbing, the exact-posterior test checks the draws themselves.
pytestmark = pytest.mark.filterwarnings("ignore::pytensor_blackjax.SamplingWarning")
KW = dict(draws=300, tune=300, chains=2, seed=21, progressbar=False)


def normal_model():
    """y_i ~ Normal(mu, 1), mu ~ Normal(0, 10): the posterior of mu is Normal, known exactly."""
    m = pbj.ModelBuilder()
    mu = m.param("mu")
    y = m.data("y", np.zeros(N))
    m.add_logp(-0.5 * (mu / PRIOR_SD) ** 2 - 0.5 * pt.sum((y - mu) ** 2))
    return m.build()


def datasets(count, seed=11):
    rng = np.random.default_rng(seed)
    return [{"y": rng.normal(rng.normal(0, 2), 1.0, size=N)} for _ in range(count)]


@pytest.fixture(scope="module")
def compiled():
    return pbj.compile(normal_model())


@pytest.fixture(scope="module")
def four_fits(compiled):
    sets = datasets(4)
    return sets, pbj.sample_many(compiled, sets, **KW)


# a statistical check: here a sampling warning is an error again, and the runs are long enough for it
@pytest.mark.filterwarnings("error::pytensor_blackjax.SamplingWarning")
def test_each_fit_matches_its_exact_posterior(compiled):
    sets = datasets(4)
    tree = pbj.sample_many(compiled, sets, **{**KW, "draws": 1000})
    post = tree["posterior"]["mu"]
    assert post.dims == ("fit", "chain", "draw") and post.shape == (4, 2, 1000)
    assert list(tree["fits"]["status"].values) == ["ok"] * 4
    assert tree["sample_stats"]["diverging"].dims[:3] == ("fit", "chain", "draw")
    data_group = "observed_data" if "observed_data" in tree.children else "constant_data"
    assert tree[data_group]["y"].dims == ("fit", "y_dim_0")
    np.testing.assert_array_equal(tree[data_group]["y"].values[2], sets[2]["y"])
    precision = N + 1 / PRIOR_SD**2
    for i, data in enumerate(sets):
        exact_mean, exact_var = data["y"].sum() / precision, 1 / precision
        x = post.values[i]
        assert moment_z(x, exact_mean, what=f"fit {i} mean") < 5
        assert moment_z((x - exact_mean) ** 2, exact_var, what=f"fit {i} variance") < 5


def test_each_fit_equals_the_same_fit_run_alone(compiled, four_fits):
    sets, tree = four_fits
    seeds = [int(s) for s in tree["fits"]["seed"].values]
    assert seeds == [fit_seed(21, i) for i in range(4)]
    assert len(set(seeds)) == 4
    for i in (0, 3):
        alone = pbj.sample(compiled, data=sets[i], **dict(KW, seed=seeds[i]))
        np.testing.assert_array_equal(tree["posterior"]["mu"].values[i], alone["posterior"]["mu"].values)
        np.testing.assert_array_equal(
            tree["sample_stats"]["lp"].values[i], alone["sample_stats"]["lp"].values
        )


def test_fit_seed_depends_on_seed_and_index_only():
    assert fit_seed(5, 2) == fit_seed(5, 2)
    assert len({fit_seed(5, i) for i in range(100)} | {fit_seed(6, 0)}) == 101
    assert 0 <= fit_seed(2**64 - 1, 7) < 2**64


def test_one_bad_fit_fails_alone_with_its_reason(compiled):
    sets = datasets(3)
    sets[1] = {"y": sets[1]["y"] * np.nan}
    tree = pbj.sample_many(compiled, sets, **KW)
    status = [str(s) for s in tree["fits"]["status"].values]
    assert status[0] == status[2] == "ok"
    assert status[1].startswith("ValueError: data['y'] contains NaN")
    assert np.all(np.isnan(tree["posterior"]["mu"].values[1]))
    assert np.all(np.isfinite(tree["posterior"]["mu"].values[[0, 2]]))
    assert tree.attrs["num_fits_failed"] == 1
    # boolean/integer stats become floating so that NaN marks the failed fit
    assert np.isnan(tree["sample_stats"]["diverging"].values[1]).all()


def test_labels_become_the_fit_coordinate(compiled):
    sets = datasets(2)
    tree = pbj.sample_many(compiled, {"north": sets[0], "south": sets[1]}, **dict(KW, draws=50, tune=50))
    assert list(tree["posterior"]["fit"].values) == ["north", "south"]
    assert list(tree["fits"]["fit"].values) == ["north", "south"]


def test_a_rerun_reads_complete_stores_back(compiled, tmp_path):
    sets = datasets(2)
    kw = dict(KW, draws=60, tune=60, chunk_size=20)
    first = pbj.sample_many(compiled, sets, store_dir=tmp_path, **kw)
    again = pbj.sample_many(compiled, sets, store_dir=tmp_path, **kw)
    assert sorted(p.name for p in tmp_path.glob("fit-*.zarr")) == ["fit-00000.zarr", "fit-00001.zarr"]
    np.testing.assert_array_equal(first["posterior"]["mu"].values, again["posterior"]["mu"].values)
    assert list(again["fits"]["attempts"].values) == [2, 2]
    assert list(again["fits"]["resumed_from"].values) == [60, 60]  # complete: read back, nothing redone
    attempts = read_attempts(tmp_path / "fit-00000.zarr")
    assert [a["store_status"] for a in attempts] == ["new", "complete"]


def test_a_store_of_another_call_is_refused(compiled, tmp_path):
    sets = datasets(1)
    kw = dict(KW, draws=20, tune=20)
    pbj.sample_many(compiled, sets, store_dir=tmp_path, **kw)
    tree = pbj.sample_many(compiled, sets, store_dir=tmp_path, **dict(kw, seed=22))
    assert "holds a fit with seed" in str(tree["fits"]["status"].values[0])


def test_argument_errors_name_the_fix(compiled):
    with pytest.raises(ValueError, match="datasets is empty"):
        pbj.sample_many(compiled, [], seed=1)
    with pytest.raises(TypeError, match="datasets must be a list of data dicts"):
        pbj.sample_many(compiled, {"y": np.zeros(N)}.values(), seed=1)
    with pytest.raises(ValueError, match="draws=0 is not valid"):
        pbj.sample_many(compiled, datasets(1), seed=1, draws=0)
    with pytest.raises(ValueError, match="fits_at_once=0 is not valid"):
        pbj.sample_many(compiled, datasets(1), seed=1, fits_at_once=0)


def test_client_without_dask_names_the_extra(compiled, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if dask.distributed were not installed
    with pytest.raises(ImportError, match=r"pip install 'pytensor-blackjax\[dask\]'"):
        pbj.sample_many(compiled, datasets(1), seed=1, client=object())


MODEL_FILE = f"""
import numpy as np
import pytensor.tensor as pt
import pytensor_blackjax as pbj

m = pbj.ModelBuilder()
mu = m.param("mu")
y = m.data("y", np.zeros({N}), observed=True)
m.add_logp(-0.5 * (mu / {PRIOR_SD}) ** 2 - 0.5 * pt.sum((y - mu) ** 2))
model = m.build()
"""


def test_run_many_command_over_a_folder_and_a_table(tmp_path):
    import pandas as pd
    import xarray as xr
    from typer.testing import CliRunner

    from pytensor_blackjax.cli import app

    (tmp_path / "model.py").write_text(MODEL_FILE)
    sets = datasets(3)
    folder = tmp_path / "sets"
    folder.mkdir()
    for label, data in zip(("a", "b", "c"), sets, strict=True):
        np.savez(folder / f"{label}.npz", **data)
    table = pd.concat(
        [pd.DataFrame({"fit": label, "y": d["y"]}) for label, d in zip("abc", sets, strict=True)]
    )
    table.to_csv(tmp_path / "sets.csv", index=False)
    common = ["--draws", "50", "--tune", "50", "--chains", "1", "--seed", "3", "--no-progress"]
    results = []
    for source, out in ((folder, tmp_path / "out1"), (tmp_path / "sets.csv", tmp_path / "out2")):
        result = CliRunner().invoke(
            app, ["run-many", str(tmp_path / "model.py"), str(source), "--out", str(out), *common]
        )
        assert result.exit_code == 0, result.output
        assert "3 of 3 fits ok" in result.output
        fits = pd.read_csv(out / "fits.csv")
        assert list(fits["fit"]) == ["a", "b", "c"] and list(fits["status"]) == ["ok"] * 3
        assert "mu_mean" in fits.columns
        results.append(xr.open_datatree(out / "results.zarr", engine="zarr", consolidated=False))
    np.testing.assert_array_equal(results[0]["posterior"]["mu"].values, results[1]["posterior"]["mu"].values)

    bad = CliRunner().invoke(
        app,
        [
            "run-many",
            str(tmp_path / "model.py"),
            str(tmp_path / "sets.csv").replace("sets.csv", "nothing.csv"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert bad.exit_code == 1 and "do not exist" in bad.output
    pd.DataFrame({"y": [1.0]}).to_csv(tmp_path / "nofit.csv", index=False)
    bad = CliRunner().invoke(
        app,
        ["run-many", str(tmp_path / "model.py"), str(tmp_path / "nofit.csv"), "--out", str(tmp_path / "o")],
    )
    assert bad.exit_code == 1 and "has no 'fit' column" in bad.output


def test_helper_processes_give_the_same_draws(compiled, tmp_path, monkeypatch):
    from pytensor_blackjax.many import _many

    monkeypatch.setattr(_many._HelperTimer, "at_once", lambda self, num_fits: True)  # a helper from the start
    monkeypatch.setattr(_many._HelperTimer, "worth_it", lambda self, seconds, remaining: True)
    run_here = _many.run_fit

    def helper_started() -> bool:
        stores = [str(log).removesuffix(".attempts.jsonl") for log in tmp_path.glob("*.attempts.jsonl")]
        try:
            return any(entry["pid"] != os.getpid() for store in stores for entry in read_attempts(store))
        except ValueError:  # a line being written
            return False

    calls = []

    def slow_here(*args):  # after its first fit, this process's lane waits until the helper takes one
        deadline = time.time() + 120
        while calls and time.time() < deadline and not helper_started():
            time.sleep(0.1)
        calls.append(1)
        return run_here(*args)

    monkeypatch.setattr(_many, "run_fit", slow_here)
    sets = datasets(6)
    kw = dict(KW, draws=100, tune=100)
    tree = pbj.sample_many(compiled, sets, store_dir=tmp_path, fits_at_once=2, **kw)
    assert list(tree["fits"]["status"].values) == ["ok"] * 6
    pids = {read_attempts(tmp_path / f"fit-{i:05d}.zarr")[0]["pid"] for i in range(6)}
    assert len(pids) == 2  # this process and one helper
    alone = pbj.sample(compiled, data=sets[5], **dict(kw, seed=fit_seed(21, 5)))
    np.testing.assert_array_equal(tree["posterior"]["mu"].values[5], alone["posterior"]["mu"].values)


def test_fits_keep_the_model_order():
    m = pbj.ModelBuilder()
    z, a = m.param("z"), m.param("a", transform="positive")
    m.deterministic("b", z + a)
    y = m.data("y", np.zeros(3))
    m.add_logp(-0.5 * z**2 - a - 0.5 * pt.sum((y - z) ** 2))
    tree = pbj.sample_many(m.build(), [{"y": np.ones(3)}, {"y": -np.ones(3)}], **KW)
    assert list(tree["posterior"].data_vars) == ["z", "a", "b"]


def test_a_helper_still_starting_when_the_fits_run_out_is_ended(compiled, monkeypatch):
    import psutil

    from pytensor_blackjax.many import _many

    monkeypatch.setattr(_many._HelperTimer, "at_once", lambda self, num_fits: True)
    pbj.sample(compiled, data=datasets(1)[0], **KW)  # the programs are in the store: fits here are quick
    before = set(psutil.Process().children())
    t0 = time.perf_counter()
    tree = pbj.sample_many(compiled, datasets(2), fits_at_once=2, **KW)
    seconds = time.perf_counter() - t0
    assert list(tree["fits"]["status"].values) == ["ok"] * 2
    assert set(psutil.Process().children()) == before  # the helper was ended with the call
    # it was ended, not awaited: the call took about what its two fits took here
    assert seconds < 2 * float(tree["fits"]["seconds"].values.sum()) + 1.0


HELPER_PARENT = """
import subprocess, sys, time
helper = subprocess.Popen([sys.executable, "-m", "pytensor_blackjax.many._worker", str(os.getpid())],
                          stdin=int(sys.argv[1]))
print(helper.pid, flush=True)
time.sleep(600)
"""


def test_a_helper_ends_when_its_parent_is_killed():
    import psutil

    # the helper's stdin stays open here, so that only its watch on its parent can end it
    read_end, write_end = os.pipe()
    try:
        with subprocess.Popen(
            [sys.executable, "-c", "import os\n" + HELPER_PARENT, str(read_end)],
            stdout=subprocess.PIPE,
            text=True,
            pass_fds=(read_end,),
        ) as parent:
            assert parent.stdout is not None
            helper = psutil.Process(int(parent.stdout.readline()))
            parent.kill()
        helper.wait(timeout=30)  # psutil.TimeoutExpired if it outlived its parent
    finally:
        os.close(read_end)
        os.close(write_end)
