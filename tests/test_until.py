"""Sampling until ESS and R-hat targets are met: the Until config, the check schedule, the diagnostics,
known-answer runs, caps, stop reasons, and kill -9 + resume of an until-run."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import arviz_stats
import numpy as np
import pytensor.tensor as pt
import pytest
from arviz_stats.base import array_stats

import pytensor_blackjax as pbj
from pytensor_blackjax.results import TAIL_PROB
from pytensor_blackjax.run import _until
from pytensor_blackjax.run._until import (
    FIRST_CHECK,
    Diagnosis,
    UntilCheck,
    diagnose,
    first_check,
    next_check,
)

SCALES = np.array([0.5, 1.0, 2.0, 4.0])
MODEL = f"""
import numpy as np, pytensor.tensor as pt
import pytensor_blackjax as pbj
m = pbj.ModelBuilder()
x = m.param("x", shape=(4,))
m.add_logp(-0.5 * pt.sum((x / np.array({SCALES.tolist()})) ** 2))
model = m.build()
"""


def gaussian():
    m = pbj.ModelBuilder()
    x = m.param("x", shape=(4,))
    m.add_logp(-0.5 * pt.sum((x / SCALES) ** 2))
    return m.build()


def worst_ess(tree, method):
    """The lowest ESS over every scalar; tail ESS at the 5% and 95% quantiles, as `Until` checks it
    (ArviZ 1.x without ``prob`` measures other quantiles: `test_the_summary_shows_the_tail_ess_checked`)."""
    prob = {"prob": TAIL_PROB} if method == "tail" else {}
    ess = arviz_stats.ess(tree["posterior"].to_dataset(), method=method, **prob)
    return min(float(np.min(ess[k].values)) for k in ess.data_vars)


# -- the config -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ess_bulk=-1), r"Until\(ess_bulk=-1\).*positive number"),
        (dict(ess_tail=0), r"Until\(ess_tail=0\)"),
        (dict(ess_bulk=float("nan")), r"ess_bulk=nan"),
        (dict(rhat=1.0), r"Until\(rhat=1.0\).*above 1, e.g. rhat=1.01"),
        (dict(rhat=0.99), r"rhat=0.99"),
        (dict(ess_bulk=100, max_draws=0), r"max_draws=0.*positive integer"),
        (dict(ess_bulk=100, max_draws=10.5), r"max_draws=10.5"),
        (dict(ess_bulk=100, max_seconds=-3), r"max_seconds=-3"),
        (dict(ess_bulk=100, var_names=[1]), r"var_names=\[1\]"),
        (dict(), r"Until\(\) has no target"),
    ],
)
def test_until_refuses_bad_targets(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pbj.Until(**kwargs)


def test_until_is_frozen_and_normalises():
    until = pbj.Until(ess_bulk=400, rhat=1.01, var_names="x")
    assert until.var_names == ("x",) and until.targets == {"ess_bulk": 400.0, "rhat": 1.01}
    with pytest.raises(AttributeError):
        until.ess_bulk = 1  # type: ignore[misc]
    assert pbj.Until(**until.to_json()) == until


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(until=pbj.Until(ess_bulk=100), draws=500), r"draws=500 and until= were both given"),
        (dict(until=pbj.Until(ess_bulk=100, max_draws=50)), r"max_draws=50\) is smaller than one chunk"),
        (dict(until=pbj.Until(ess_bulk=100, var_names=("y",))), r"names \['y'\].*variables are \['x'\]"),
        (dict(until=pbj.Until(ess_bulk=100), sampler="pathfinder"), r"'pathfinder' is an approximation"),
        (dict(until=pbj.Until(ess_bulk=100), sampler="smc"), r"'smc' is not"),
        (dict(until=pbj.Until(rhat=1.01), chains=1), r"needs chains >= 2"),
        (dict(until={"ess_bulk": 100}), r"give pbj.Until"),
    ],
)
def test_sample_refuses_bad_until(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        pbj.sample(gaussian(), progressbar=False, **{"tune": 100, **kwargs})


# -- the schedule and the diagnostics ---------------------------------------------------------------
def test_next_check_is_geometric_and_follows_the_shortfall():
    assert next_check(0, 100, None, 10_000) == 100
    assert next_check(0, 10, None, 10_000) == 50  # FIRST_CHECK draws before the first check
    near = Diagnosis(draws=1000, shortfall=1.01)
    far = Diagnosis(draws=1000, shortfall=50.0)
    middle = Diagnosis(draws=1000, shortfall=1.5)
    assert next_check(1000, 100, near, 10_000) == 1100  # at least 10% more
    assert next_check(1000, 100, far, 10_000) == 2000  # at most twice as many
    assert next_check(1000, 100, middle, 10_000) == 1500  # where the targets should be met
    assert next_check(1000, 30, middle, 10_000) == 1500  # rounded up to a chunk boundary
    assert next_check(9000, 100, far, 10_000) == 10_000  # never past the cap
    assert next_check(0, 100, None, 10_000, first=176) == 200  # the first check that can pass


def test_no_check_before_the_ess_targets_can_hold():
    # an ESS of N draws in all is at most N log10 N: 4 x 176 = 704 draws can reach 2000, 4 x 175 cannot
    assert 704 * np.log10(704) >= 2000 > 700 * np.log10(700)
    assert first_check(4, pbj.Until(ess_bulk=2000, ess_tail=100)) == 176
    assert first_check(1, pbj.Until(ess_tail=100)) == 58  # 57 would do, but split chains drop an odd middle
    assert first_check(4, pbj.Until(rhat=1.01)) == FIRST_CHECK  # no ESS target: no bound
    assert first_check(64, pbj.Until(ess_bulk=400)) == FIRST_CHECK


@pytest.mark.parametrize("scalars, calls", [(4, [[4], [4]]), (20, [[20], [8, 12]])])
def test_checks_focus_on_the_furthest_scalars_unless_that_is_every_scalar(monkeypatch, scalars, calls):
    """After a full check, a check looks at the 8 scalars furthest from their targets and, when they
    pass, at every other scalar (the focus's values are kept); with 8 scalars or fewer the focus is every
    scalar: one full check. The result is that of one check of every scalar, to the bit."""
    made: list[int] = []
    real = _until.scalar_diagnostics
    monkeypatch.setattr(
        _until, "scalar_diagnostics", lambda x, *a, **k: made.append(len(x)) or real(x, *a, **k)
    )
    x = np.random.default_rng(5).normal(size=(4, 600, scalars))
    until = pbj.Until(ess_bulk=400, max_draws=600)
    check = UntilCheck(until, 100, None)
    counts = []
    for start in range(0, 600, 100):
        check.add({"x": x[:, start : start + 100]})
        made.clear()
        stop = check.stop_reason()
        if made:
            counts.append(list(made))
        if stop:
            break
    assert stop == "targets_met" and counts == calls  # independent draws: ESS ~ 4 x draws
    draws = np.moveaxis(x[:, : check.done], -1, 0)
    assert check.last == _until.diagnose_scalars(draws, check.labels, until)


def test_diagnose_agrees_with_arviz():
    rng = np.random.default_rng(0)
    ar = np.zeros((4, 800, 3))
    for t in range(1, 800):  # autocorrelated chains of different strengths
        ar[:, t] = np.array([0.2, 0.6, 0.9]) * ar[:, t - 1] + rng.normal(size=(4, 3))
    posterior = {"a": ar, "b": rng.normal(size=(4, 800))}
    d = diagnose(posterior, pbj.Until(ess_bulk=10), everything=True)
    stacked = np.concatenate([np.moveaxis(ar, -1, 0), posterior["b"][None]])
    assert d.ess_bulk == pytest.approx(np.min(array_stats.ess(stacked, method="bulk")))
    assert d.ess_tail == pytest.approx(np.min(array_stats.ess(stacked, method="tail", prob=0.05)))
    assert d.rhat == pytest.approx(np.max(array_stats.rhat(stacked)))
    assert d.met and d.rhat_kind == "rank"
    strict = diagnose(posterior, pbj.Until(ess_bulk=3000))
    assert not strict.met and strict.worst == "a[2]"  # the most autocorrelated scalar
    assert strict.shortfall == pytest.approx(3000 / strict.ess_bulk)


def test_nested_rhat_with_many_chains_and_its_known_case():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 100))
    d = diagnose({"x": x}, pbj.Until(rhat=1.01))
    assert d.rhat_kind == "nested" and d.rhat < 1.01
    shifted = x + np.repeat([0.0, 0.0, 0.0, 3.0], 8)[:, None]  # one superchain elsewhere
    assert diagnose({"x": shifted}, pbj.Until(rhat=1.01)).rhat > 1.5
    # known case: one chain per superchain, nR-hat^2 - 1 = R-hat^2 - (N - 1) / N (Margossian et al. 2024)
    n = x.shape[1]
    nested = array_stats.rhat_nested(x, superchain_ids=np.arange(32), method="identity")
    plain = array_stats.rhat(x, method="identity")
    assert nested**2 - 1 == pytest.approx(plain**2 - (n - 1) / n)


# -- sampling ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("chain_method", ["parallel", "vectorized"])
def test_until_ess_1000_meets_it_and_is_right(chain_method):
    # with an R-hat target too: a run that stops on ESS alone may end with R-hat just above 1.01 (the
    # diagnostics' warning, an error here)
    until = pbj.Until(ess_bulk=1000, rhat=1.01, max_draws=20_000)
    tree = pbj.sample(gaussian(), until=until, chains=4, seed=2, tune=500, chain_method=chain_method,
                      progressbar=False)  # fmt: skip
    assert tree.attrs["stop_reason"] == "targets_met"
    assert worst_ess(tree, "bulk") >= 1000
    assert tree.attrs["until_ess_bulk"] == pytest.approx(worst_ess(tree, "bulk"))
    x = tree["posterior"]["x"].values.reshape(-1, 4)
    z = np.abs(x.mean(0)) / (SCALES / np.sqrt(worst_ess(tree, "bulk")))
    assert np.all(z < 5), z
    assert np.all(np.abs(x.std(0) / SCALES - 1) < 0.1)
    assert tree["posterior"].sizes["draw"] < 20_000 and tree["posterior"].sizes["draw"] % 100 == 0


def test_the_summary_shows_the_tail_ess_checked():
    # the summary table (CLI, report) shows the tail ESS the run stopped on, not ArviZ 1.x's default,
    # which measures the 11% and 89% quantiles and here differs by far more than rounding
    from pytensor_blackjax.cli._report import checks, summary_table

    until = pbj.Until(ess_bulk=400, ess_tail=400, rhat=1.01, max_draws=5_000)
    tree = pbj.sample(gaussian(), until=until, chains=4, seed=5, tune=300, progressbar=False)
    table = summary_table(tree)
    assert table["ess_tail"].min() == pytest.approx(tree.attrs["until_ess_tail"], rel=1e-8)
    assert table["ess_tail"].min() == pytest.approx(worst_ess(tree, "tail"), rel=1e-8)
    assert table["ess_bulk"].min() == pytest.approx(tree.attrs["until_ess_bulk"], rel=1e-8)
    arviz_default = arviz_stats.ess(tree["posterior"].to_dataset(), method="tail")
    assert abs(float(np.min(arviz_default["x"].values)) / tree.attrs["until_ess_tail"] - 1) > 1e-3
    tail = next(c for c in checks(tree) if c.name == "ESS (tail)")  # the report's diagnostics
    assert tail.value == pytest.approx(tree.attrs["until_ess_tail"], rel=1e-8)


@pytest.mark.filterwarnings("ignore:sampling diagnostics:pytensor_blackjax.SamplingWarning")  # x is unchecked
def test_var_names_restricts_the_check():
    m = pbj.ModelBuilder()
    x = m.param("x", shape=(2,))
    y = m.param("y")
    m.add_logp(-0.5 * pt.sum(x**2) - 0.5 * y**2)
    tree = pbj.sample(m.build(), until=pbj.Until(ess_bulk=300, var_names=["y"]), chains=2, seed=3,
                      tune=300, progressbar=False)  # fmt: skip
    assert tree.attrs["until_worst_variable"] == "y" and tree.attrs["stop_reason"] == "targets_met"


@pytest.mark.filterwarnings("ignore:sampling diagnostics:pytensor_blackjax.SamplingWarning")  # short runs
def test_caps_stop_short_with_a_warning():
    with pytest.warns(pbj.SamplingWarning, match=r"max_draws=300 after 300 draws.*ess_bulk"):
        tree = pbj.sample(gaussian(), until=pbj.Until(ess_bulk=1e7, max_draws=300), chains=2, seed=4,
                          tune=200, progressbar=False)  # fmt: skip
    assert tree.attrs["stop_reason"] == "max_draws" and tree["posterior"].sizes["draw"] == 300
    with pytest.warns(pbj.SamplingWarning, match=r"max_seconds=1e-06"):
        tree = pbj.sample(gaussian(), until=pbj.Until(ess_bulk=1e7, max_seconds=1e-6), chains=2, seed=4,
                          tune=200, progressbar=False)  # fmt: skip
    assert tree.attrs["stop_reason"] == "max_seconds" and tree["posterior"].sizes["draw"] == 100


@pytest.mark.filterwarnings("ignore:sampling diagnostics:pytensor_blackjax.SamplingWarning")  # short run
def test_until_run_in_a_store_is_complete_and_sized_to_its_draws(tmp_path):
    path = tmp_path / "run.zarr"
    tree = pbj.sample(gaussian(), until=pbj.Until(ess_bulk=500), chains=2, seed=5, tune=300,
                      progressbar=False, store=str(path))  # fmt: skip
    n = tree["posterior"].sizes["draw"]
    record = json.loads((path / "zarr.json").read_text())["attributes"]
    assert record["status"] == "complete" and record["num_draws_completed"] == n
    run = json.loads((path / "_pbj" / "run.json").read_text())
    assert run["until"]["ess_bulk"] == 500 and run["settings"]["draws"] == 100_000
    import xarray as xr

    stored = xr.open_datatree(str(path), engine="zarr")
    assert stored["posterior"].sizes["draw"] == n  # the arrays grew, then were cut to the draws
    np.testing.assert_array_equal(stored["posterior"]["x"].values, tree["posterior"]["x"].values)
    assert tree.attrs["store"] == str(path)


def test_ctrl_c_stops_an_until_run_as_interrupted(tmp_path, monkeypatch):
    from pytensor_blackjax.store._sink import StoreSink

    chunk = StoreSink.chunk

    def press_ctrl_c(self, start, arrays, checkpoint):
        chunk(self, start, arrays, checkpoint)
        if start == 100:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(StoreSink, "chunk", press_ctrl_c)
    path = tmp_path / "run.zarr"
    until = pbj.Until(ess_bulk=5000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        partial = pbj.sample(gaussian(), until=until, chains=2, seed=6, tune=200, progressbar=False,
                             store=str(path))  # fmt: skip
    monkeypatch.undo()
    assert partial.attrs["stop_reason"] == "interrupted" and partial["posterior"].sizes["draw"] == 200
    resumed = pbj.resume(str(path), progressbar=False)
    reference = pbj.sample(gaussian(), until=until, chains=2, seed=6, tune=200, progressbar=False)
    assert resumed.attrs["stop_reason"] == "targets_met"
    np.testing.assert_array_equal(resumed["posterior"]["x"].values, reference["posterior"]["x"].values)


def _committed(store):
    try:
        with open(os.path.join(store, "zarr.json")) as f:
            return int(json.load(f).get("attributes", {}).get("num_draws_completed", 0))
    except (OSError, ValueError):
        return 0


def test_kill_9_during_an_until_run_then_resume_stops_at_the_same_draw(tmp_path):
    store = str(tmp_path / "run.zarr")
    call = (
        "pbj.sample(model, until=pbj.Until(ess_bulk=8000), chains=2, seed=7, tune=300, progressbar=False, "
        f"store={store!r})"
    )
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(MODEL) + call],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and _committed(store) < 200 and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = pbj.resume(store, progressbar=False)
    reference = pbj.sample(gaussian(), until=pbj.Until(ess_bulk=8000), chains=2, seed=7, tune=300,
                           progressbar=False)  # fmt: skip
    assert resumed.attrs["stop_reason"] == reference.attrs["stop_reason"] == "targets_met"
    np.testing.assert_array_equal(resumed["posterior"]["x"].values, reference["posterior"]["x"].values)


# -- chain layouts ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(sampler="chees", chains=16, chunk_size=50),  # the ensemble layout: one program for all chains
        dict(sampler="nuts", chains=4, chain_method="vectorized"),
    ],
    ids=["ensemble-chees", "vectorized"],
)
def test_until_meets_its_targets_in_every_layout(kwargs):
    until = pbj.Until(ess_bulk=400, ess_tail=200, rhat=1.01, max_draws=5_000)
    tree = pbj.sample(gaussian(), until=until, seed=8, tune=300, progressbar=False, **kwargs)
    assert tree.attrs["stop_reason"] == "targets_met"
    assert worst_ess(tree, "bulk") >= 400 and worst_ess(tree, "tail") >= 200
    assert tree.attrs["until_rhat"] <= 1.01 and tree.attrs["until_rhat_kind"] == "rank"
    assert tree["posterior"].sizes["chain"] == kwargs["chains"]
