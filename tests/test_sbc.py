"""Simulation-based calibration: the uniformity band, its power, and SBC of NUTS through ``pbj.sample``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytensor.tensor as pt
import pytest
from scipy.stats import binom

import pytensor_blackjax as pbj
from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.examples import sbc
from pytensor_blackjax.validate import sbc_power, simulation_based_calibration, uniformity_test
from pytensor_blackjax.validate._ecdf_band import ecdf_counts
from pytensor_blackjax.validate._sbc import (
    Fits,
    FitSettings,
    SBCResult,
    Simulations,
    fit_all,
    rank_all,
    simulate_all,
)
from pytensor_blackjax.validate._sbc_power import conjugate_ranks

ALPHA = 0.01  # family-wise, split over the scalars of a study (Bonferroni) by SBCResult.check


# -- the band ------------------------------------------------------------------------------------------
def test_band_rejects_uniform_ranks_at_its_nominal_rate():
    test = uniformity_test(1000, 99, alpha=0.05, seed=1)
    ranks = np.random.default_rng(2).integers(0, 100, size=(1000, 1000))  # 1000 studies of 1000 ranks
    rejected = int(np.sum(test.pvalue(ranks) <= 0.05))
    low, high = binom.ppf([0.0005, 0.9995], 1000, 0.05)  # 99.9% binomial interval around 50
    assert low <= rejected <= high, f"{rejected} of 1000 uniform studies rejected at 5%"
    # the band at 95% is the same decision, study by study
    outside = ~test.band(0.95).contains(ecdf_counts(ranks, 99))
    assert np.mean(outside != (test.pvalue(ranks) <= 0.05)) < 0.005


def test_band_agrees_with_arviz_stats_simulation_method():
    from arviz_stats.ecdf_utils import simulate_confidence_bands

    points = np.arange(1, 20) / 20
    test = uniformity_test(200, 19, alpha=0.05, num_simulations=20_000)
    ours = test.band(0.95).pointwise
    theirs = 1.0 - simulate_confidence_bands(200, 1, points, 0.95, 4000, np.random.default_rng(0))
    assert ours == pytest.approx(theirs, rel=0.2)


def test_band_catches_a_posterior_15_percent_too_narrow_at_1000_simulations():
    """At 1000 simulations, a posterior 15% too narrow is rejected in nearly every study."""
    test = uniformity_test(1000, 99, alpha=ALPHA)
    ranks = conjugate_ranks(np.random.default_rng(3), 1000, 99, scale=0.85, studies=50)
    assert np.mean(test.pvalue(ranks) <= ALPHA) >= 0.9


def test_power_grid_is_monotone_and_calibrated():
    power = sbc_power(200, 99, studies=100, scales=(0.95, 0.7), shifts=(0.05, 0.5))
    assert power.false_alarms <= 0.05
    assert power.narrow[0.7] >= 0.9 > power.narrow[0.95]
    assert power.shifted[0.5] >= 0.9 > power.shifted[0.05]
    assert power.smallest_narrowing() == pytest.approx(0.3) and power.smallest_shift() == 0.5


def test_uniformity_test_names_a_mismatch():
    test = uniformity_test(10, 9, alpha=0.05)
    with pytest.raises(ValueError, match=r"uniformity_test\(num_ranks=11, num_draws=L\)"):
        test.pvalue(np.zeros(11, dtype=int))
    with pytest.raises(ValueError, match="alpha=2 is not valid"):
        uniformity_test(10, 9, alpha=2)


# -- SBC through pbj.sample, in CI ---------------------------------------------------------------------
CI_SIMULATIONS = 200
CI_SETTINGS = {"num_draws": 99, "thin": 2, "tune": 200}


def ci_study(case, seed):
    compiled = pbj.compile(case.build())
    return simulation_based_calibration(
        compiled,
        case.simulate,
        num_simulations=CI_SIMULATIONS,
        seed=seed,
        sampler=case.sampler,
        **CI_SETTINGS,
    )


def test_sbc_passes_nuts_on_the_conjugate_model():
    result = ci_study(sbc.conjugate_normal(), seed=4)
    assert result.ranks["mu"].shape == (CI_SIMULATIONS,) and result.ranks["mu"].max() <= 99
    verdict = result.check(ALPHA)
    assert verdict.passed, verdict.failures()


def test_sbc_fails_a_posterior_28_percent_too_narrow():
    """The power that the CI study has: the model that misstates the noise (sd 0.7 for 1) fails."""
    verdict = ci_study(sbc.conjugate_normal_wrong_noise(), seed=4).check(ALPHA)
    assert not verdict.passed
    assert verdict.failures()[0].startswith("mu: ranks not uniform")


def test_sbc_fits_reuse_the_programs_and_do_not_depend_on_workers(monkeypatch):
    """Every fit is a ``pbj.sample`` call on the one compiled model: after the first, new simulated data
    of the same shape never retrace the log-density; and each fit depends only on its data and seed."""
    traces = []
    original = CompiledModel.flat_logdensity

    def counting(self, flat, data):
        traces.append(1)  # runs only while JAX traces; compiled programs do not call back into Python
        return original(self, flat, data)

    monkeypatch.setattr(CompiledModel, "flat_logdensity", counting)
    case = sbc.conjugate_normal()
    compiled = pbj.compile(case.build())
    settings = FitSettings(draws=49, tune=100, thin=1, sampler=pbj.samplers.NUTS())
    sims = simulate_all(compiled, case.simulate, 8, seed=3)
    first = Simulations({"mu": sims.truth["mu"][:1]}, {"y": sims.data["y"][:1]}, sims.seed)
    fit_all(compiled, first, settings, workers=1)
    traced = len(traces)
    in_order = fit_all(compiled, sims, settings, workers=1)
    assert len(traces) == traced, "a fit with new simulated data retraced the log-density"
    together = fit_all(compiled, sims, settings, workers=2)
    np.testing.assert_array_equal(rank_all(sims, in_order)["mu"], rank_all(sims, together)["mu"])
    alone = pbj.sample(compiled, data=sims.data_of(5), seed=sims.seeds[5], **settings.sample_kwargs())
    np.testing.assert_array_equal(alone["posterior"]["mu"].values[0], in_order.draws["mu"][5])


def test_sbc_rejects_unknown_names():
    with pytest.raises(ValueError, match="not reported by the model"):
        simulation_based_calibration(
            pbj.compile(sbc.conjugate_normal().build()),
            lambda key: ({"nope": jnp.zeros(())}, {"y": jnp.zeros(10)}),
        )


def test_simulations_and_fit_seeds_follow_from_the_study_seed():
    case = sbc.normal_scale()
    compiled = pbj.compile(case.build())
    first, again = (simulate_all(compiled, case.simulate, 4, seed=5) for _ in range(2))
    other = simulate_all(compiled, case.simulate, 4, seed=6)
    assert first.seeds == again.seeds and len(set(first.seeds)) == 4 and first.seeds != other.seeds
    assert first.seeds[2] == pbj.many.fit_seed(5, 2)  # as sample_many(seed=5) seeds its fit 2
    np.testing.assert_array_equal(first.data["y"], again.data["y"])
    assert first.data["y"].shape == (4, 10) and first.truth["mu"].shape == (4,)


def test_sbc_rejects_no_simulations():
    with pytest.raises(ValueError, match="num_simulations=0 is not valid"):
        simulation_based_calibration(
            pbj.compile(sbc.conjugate_normal().build()), sbc.conjugate_normal().simulate, num_simulations=0
        )


def test_verdict_names_each_failing_component_and_divergences():
    rng = np.random.default_rng(0)
    good = rng.integers(0, 20, size=(300, 3))
    bad = good.copy()
    bad[:, 1] = rng.integers(0, 5, size=300)  # every truth below most draws: far too high a posterior
    result = SBCResult({"theta": bad}, 19, np.r_[np.ones(30), np.zeros(270)])
    verdict = result.check(0.01, max_divergent_share=0.05)
    assert verdict.threshold == pytest.approx(0.01 / 3)
    assert [line.split(":")[0] for line in verdict.failures()] == [
        "theta[1]",
        "10.0% of the fits diverged (more than 5%)",
    ]
    assert SBCResult({"theta": good}, 19, np.zeros(300)).check(0.01).passed


# -- the full study of the three models (docs/validation.md, section SBC; benchmarks/sbc.py) ------------
@pytest.mark.slow
@pytest.mark.parametrize("case", sbc.cases(), ids=lambda case: case.name)
def test_sbc_of_nuts_on_1000_simulations(case):
    result = simulation_based_calibration(
        pbj.compile(case.build()), case.simulate, num_simulations=1000, seed=12, sampler=case.sampler
    )
    verdict = result.check(ALPHA)
    assert verdict.passed, verdict.failures()


def normal_scale_without_jacobian(size: int = 10):
    """`sbc.normal_scale` with a planted bug: sigma = exp(log_sigma) without the log-Jacobian."""
    m = pbj.ModelBuilder(name="no_jacobian")
    y = m.data("y", np.zeros(size), observed=True)
    mu = m.param("mu")
    log_sigma = m.param("log_sigma")
    sigma = m.deterministic("sigma", pt.exp(log_sigma))  # the bug: no m.add_logp(log_sigma)
    m.add_logp(-0.5 * mu**2 - 0.5 * sigma**2)
    m.add_logp(pt.sum(-0.5 * ((y - mu) / sigma) ** 2 - pt.log(sigma)))
    return m.build()


@pytest.mark.slow
def test_sbc_of_1000_simulations_catches_a_missing_log_jacobian():
    """Measured: p = 5e-5 (the null's resolution) for sigma at 1000 simulations; at 200 (the CI size)
    p = 0.008, missed against its 0.005 threshold (docs/validation.md)."""
    case = sbc.normal_scale()
    result = simulation_based_calibration(
        pbj.compile(normal_scale_without_jacobian()), case.simulate, num_simulations=1000, seed=12
    )
    verdict = result.check(ALPHA)
    assert [line.split(":")[0] for line in verdict.failures()] == ["sigma"]


# -- until-runs: does stopping when the targets are met bias the posterior? ---------------------------
UNTIL = pbj.Until(ess_bulk=150, rhat=1.02, max_draws=5000)
UNTIL_SIMULATIONS = 256


def until_study(case, seed):
    compiled = pbj.compile(case.build())
    simulations = simulate_all(compiled, case.simulate, UNTIL_SIMULATIONS, seed)
    settings = FitSettings(
        draws=99, tune=300, thin=1, sampler=pbj.samplers.NUTS(target_accept=0.9), until=UNTIL
    )
    return simulations, fit_all(compiled, simulations, settings)


def distorted(simulations, fits, scale=1.0, shift=0.0):
    """SBC of the same fits with each posterior made ``scale`` times as wide around its mean and
    moved by ``shift`` posterior sds: what a miscalibration of that size would look like."""
    draws = {}
    for k, x in fits.draws.items():
        mean, sd = x.mean(axis=1, keepdims=True), x.std(axis=1, keepdims=True)
        draws[k] = mean + scale * (x - mean) + shift * sd
    result = Fits(draws, fits.divergences, fits.sizes)
    return SBCResult(rank_all(simulations, result), 99, fits.divergences, fits.sizes)


def hierarchical_model(groups: int = 6):
    """Non-centered: mu ~ N(0, 1), tau ~ half-N(0, 1), theta = mu + tau * z, y_j ~ N(theta_j, 1)."""
    m = pbj.ModelBuilder(name="hierarchical")
    y = m.data("y", np.zeros(groups), observed=True)
    mu = m.param("mu")
    tau = m.param("tau", transform="positive")
    z = m.param("z", shape=(groups,))
    theta = m.deterministic("theta", mu + tau * z)
    m.add_logp(-0.5 * mu**2 - 0.5 * tau**2 - 0.5 * pt.sum(z**2))
    m.add_logp(-0.5 * pt.sum((y - theta) ** 2))
    return m.build()


def simulate_hierarchical(key, groups: int = 6):
    k_mu, k_tau, k_z, k_y = jax.random.split(key, 4)
    mu = jax.random.normal(k_mu)
    tau = jnp.abs(jax.random.normal(k_tau))
    theta = mu + tau * jax.random.normal(k_z, (groups,))
    y = theta + jax.random.normal(k_y, (groups,))
    return {"mu": mu, "tau": tau, "theta": theta}, {"y": y}


HIERARCHICAL = sbc.SBCCase("hierarchical", hierarchical_model, simulate_hierarchical)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, seed", [(sbc.conjugate_normal(), 21), (HIERARCHICAL, 22)], ids=["conjugate", "hierarchical"]
)
def test_sbc_of_until_runs_shows_no_stopping_bias(case, seed):
    simulations, fits = until_study(case, seed)
    result = SBCResult(rank_all(simulations, fits), 99, fits.divergences, fits.sizes)
    assert len(set(fits.sizes.tolist())) > 1, "every fit stopped at the same length: no optional stopping"
    verdict = result.check(ALPHA)
    assert verdict.passed, verdict.failures()
    # the power the study has: the same fits made 25% too narrow are caught (figures in docs/until.md)
    assert not distorted(simulations, fits, scale=0.75).check(ALPHA).passed
