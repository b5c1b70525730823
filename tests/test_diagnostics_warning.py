"""The post-sampling warning: it names the variables, counts divergences, and points at the user's line."""

import re

import numpy as np
import pytensor.tensor as pt
import pytest
import xarray as xr

import pytensor_blackjax as pbj
from pytensor_blackjax.results import diagnose

SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SCHOOLS_SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def tree_of(posterior: dict, diverging: np.ndarray | None = None) -> xr.DataTree:
    groups = {"posterior": xr.Dataset({k: (("chain", "draw"), v) for k, v in posterior.items()})}
    if diverging is not None:
        groups["sample_stats"] = xr.Dataset({"diverging": (("chain", "draw"), diverging)})
    return xr.DataTree.from_dict(groups)


def test_problems_name_their_variables():
    rng = np.random.default_rng(0)
    good = rng.normal(size=(4, 1000))
    stuck = rng.normal(size=(4, 1000)) + np.arange(4)[:, None]  # chains disagree
    sticky = np.repeat(rng.normal(size=(4, 20)), 50, axis=1)  # 20 distinct values per chain
    diverging = np.zeros((4, 1000), bool)
    diverging[2, 7] = True
    problems = diagnose(tree_of({"alpha": good, "tau": stuck, "sigma": sticky}, diverging))
    text = "; ".join(problems)
    assert "1 divergent transition (1 of 4000 draws)" in text
    assert "R-hat up to" in text and ("(tau, sigma;" in text or "(sigma, tau;" in text), text
    assert "bulk ESS as low as" in text and "alpha" not in text, text


def centered_eight_schools() -> pbj.Model:
    m = pbj.ModelBuilder(name="eight_schools_centered")
    mu = m.param("mu")
    tau = m.param("tau", transform="positive")
    theta = m.param("theta", shape=8)
    m.add_logp(-0.5 * (mu / 5) ** 2 - 0.5 * (tau / 5) ** 2)
    m.add_logp(pt.sum(-0.5 * ((theta - mu) / tau) ** 2 - pt.log(tau)))
    m.add_logp(pt.sum(-0.5 * ((SCHOOLS_Y - theta) / SCHOOLS_SIGMA) ** 2))
    return m.build()


def test_centered_eight_schools_warning_names_tau_at_the_callers_line():
    with pytest.warns(pbj.SamplingWarning) as caught:
        pbj.sample(centered_eight_schools(), draws=500, tune=500, chains=4, seed=2, progressbar=False)
    message = str(caught[0].message)
    assert caught[0].filename == __file__, caught[0].filename
    assert re.search(r"bulk ESS as low as \d+ \([^)]*tau", message), message
    assert "% of draws" not in message


@pytest.mark.parametrize("sampler", ["pathfinder", "meanfield_vi"])
def test_approximations_say_rhat_and_ess_are_not_meaningful(sampler):
    from pytensor_blackjax.cli._report import checks, summary_table

    m = pbj.ModelBuilder(name="normal")
    m.add_logp(-0.5 * pt.sum(m.param("x", shape=2) ** 2))
    with pytest.warns(pbj.ApproximationWarning) as caught:
        tree = pbj.sample(m.build(), sampler=sampler, draws=200, chains=2, seed=1, progressbar=False)
    assert len(caught) == 1 and "R-hat and ESS are not meaningful" in str(caught[0].message)
    assert caught[0].filename == __file__
    table = summary_table(tree)
    assert {"mean", "sd"} <= set(table.columns) and not {"r_hat", "ess_bulk"} & set(table.columns)
    found = {c.name: c for c in checks(tree)}
    assert found["R-hat and ESS"].shown == "not meaningful" and "ESS (bulk)" not in found


def test_resume_warning_points_at_the_callers_line(tmp_path):
    store = str(tmp_path / "schools.zarr")
    with pytest.warns(pbj.SamplingWarning):
        pbj.sample(
            centered_eight_schools(), draws=100, tune=100, chains=2, seed=2, progressbar=False, store=store
        )
    with pytest.warns((pbj.SamplingWarning, RuntimeWarning)) as caught:
        pbj.resume(store, progressbar=False)  # already complete: read back, checked again
    sampling = [w for w in caught if issubclass(w.category, pbj.SamplingWarning)]
    assert sampling and all(w.filename == __file__ for w in sampling), [w.filename for w in sampling]
