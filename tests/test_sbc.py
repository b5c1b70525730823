"""Simulation-based calibration of NUTS on two small models: ranks of the truth must be uniform."""

import jax
import jax.numpy as jnp
import numpy as np
import pytensor.tensor as pt
import pytest

import pytensor_blackjax as pbj
from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.validate import simulation_based_calibration
from pytensor_blackjax.validate._sbc import (
    Fits,
    FitSettings,
    SBCResult,
    Simulations,
    fit_all,
    rank_all,
    simulate_all,
)

NUM_SIMULATIONS = 256
ALPHA = 1e-3  # family-wise, split over the quantities tested (Bonferroni)


def normal_model(size: int = 10):
    """mu ~ Normal(0, 1), sigma ~ half-Normal(0, 1), y ~ Normal(mu, sigma)."""
    m = pbj.ModelBuilder(name="normal")
    y = m.data("y", np.zeros(size), observed=True)
    mu = m.param("mu")
    sigma = m.param("sigma", transform="positive")
    m.add_logp(-0.5 * mu**2 - 0.5 * sigma**2)
    m.add_logp(pt.sum(-0.5 * ((y - mu) / sigma) ** 2 - pt.log(sigma)))
    return m.build()


def simulate_normal(key, size: int = 10):
    k_mu, k_sigma, k_y = jax.random.split(key, 3)
    mu = jax.random.normal(k_mu)
    sigma = jnp.abs(jax.random.normal(k_sigma))
    y = mu + sigma * jax.random.normal(k_y, (size,))
    return {"mu": mu, "sigma": sigma}, {"y": y}


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


def assert_uniform(result):
    pvalues = result.chi_square(bins=10)
    tested = sum(p.size for p in pvalues.values())
    for name, p in pvalues.items():
        assert np.all(p > ALPHA / tested), f"{name}: ranks not uniform, chi-square p-values {p}"
    assert np.mean(result.divergences > 0) < 0.05, "too many fits diverged"


@pytest.mark.slow
def test_sbc_normal_mean_and_scale():
    result = simulation_based_calibration(
        pbj.compile(normal_model()), simulate_normal, num_simulations=NUM_SIMULATIONS, seed=11
    )
    assert result.ranks["mu"].shape == (NUM_SIMULATIONS,)
    assert result.ranks["mu"].max() <= result.num_draws
    assert_uniform(result)


@pytest.mark.slow
def test_sbc_hierarchical_noncentered():
    result = simulation_based_calibration(
        pbj.compile(hierarchical_model()),
        simulate_hierarchical,
        num_simulations=NUM_SIMULATIONS,
        seed=12,
        sampler=pbj.samplers.NUTS(target_accept=0.9),
    )
    assert result.ranks["theta"].shape == (NUM_SIMULATIONS, 6)
    assert_uniform(result)


def test_sbc_detects_a_wrong_model(monkeypatch):
    """A model whose likelihood scale is off by 2 must fail calibration: the test has power.

    Every fit is a ``pbj.sample`` call on the one compiled model: after the first, new simulated data
    of the same shape never retrace the log-density."""
    traces = []
    original = CompiledModel.flat_logdensity

    def counting(self, flat, data):
        traces.append(1)  # runs only while JAX traces; compiled programs do not call back into Python
        return original(self, flat, data)

    monkeypatch.setattr(CompiledModel, "flat_logdensity", counting)
    m = pbj.ModelBuilder(name="wrong")
    y = m.data("y", np.zeros(10), observed=True)
    mu = m.param("mu")
    m.add_logp(-0.5 * mu**2 + pt.sum(-0.5 * ((y - mu) / 0.5) ** 2))

    def simulate(key):
        k_mu, k_y = jax.random.split(key)
        mu = jax.random.normal(k_mu)
        return {"mu": mu}, {"y": mu + jax.random.normal(k_y, (10,))}

    compiled = pbj.compile(m.build())
    settings = {"num_draws": 49, "thin": 1, "tune": 150, "batch_size": 128}
    simulation_based_calibration(compiled, simulate, num_simulations=1, seed=2, **settings)
    traced = len(traces)
    result = simulation_based_calibration(compiled, simulate, num_simulations=128, seed=3, **settings)
    assert len(traces) == traced, "a fit with new simulated data retraced the log-density"
    assert result.chi_square(bins=10)["mu"] < 1e-4
    # fits run several at a time; each depends only on its data and seed
    sims = simulate_all(compiled, simulate, 128, seed=3)
    first = Simulations({"mu": sims.truth["mu"][:6]}, {"y": sims.data["y"][:6]}, sims.seeds[:6])
    alone = fit_all(
        compiled, first, FitSettings(draws=49, tune=150, thin=1, sampler=pbj.samplers.NUTS()), workers=1
    )
    np.testing.assert_array_equal(rank_all(first, alone)["mu"], result.ranks["mu"][:6])


def test_sbc_rejects_unknown_names():
    with pytest.raises(ValueError, match="not reported by the model"):
        simulation_based_calibration(
            pbj.compile(normal_model()), lambda key: ({"nope": jnp.zeros(())}, {"y": jnp.zeros(10)})
        )


def test_simulations_and_fit_seeds_follow_from_the_study_seed():
    compiled = pbj.compile(normal_model())
    first, again = (simulate_all(compiled, simulate_normal, 4, seed=5) for _ in range(2))
    other = simulate_all(compiled, simulate_normal, 4, seed=6)
    assert first.seeds == again.seeds and len(set(first.seeds)) == 4 and first.seeds != other.seeds
    np.testing.assert_array_equal(first.data["y"], again.data["y"])
    assert first.data["y"].shape == (4, 10) and first.truth["mu"].shape == (4,)


def test_sbc_rejects_no_simulations():
    with pytest.raises(ValueError, match="num_simulations=0 is not valid"):
        simulation_based_calibration(pbj.compile(normal_model()), simulate_normal, num_simulations=0)


# -- until-runs: does stopping when the targets are met bias the posterior? ---------------------------
UNTIL = pbj.Until(ess_bulk=150, rhat=1.02, max_draws=5000)
UNTIL_SIMULATIONS = 256


def conjugate_model(size: int = 10):
    """mu ~ Normal(0, 1), y ~ Normal(mu, 1): the posterior is Normal(sum(y) / (size + 1), 1 / (size + 1))."""
    m = pbj.ModelBuilder(name="conjugate")
    y = m.data("y", np.zeros(size), observed=True)
    mu = m.param("mu")
    m.add_logp(-0.5 * mu**2 - 0.5 * pt.sum((y - mu) ** 2))
    return m.build()


def simulate_conjugate(key, size: int = 10):
    k_mu, k_y = jax.random.split(key)
    mu = jax.random.normal(k_mu)
    return {"mu": mu}, {"y": mu + jax.random.normal(k_y, (size,))}


def until_study(model, simulate, seed):
    compiled = pbj.compile(model)
    simulations = simulate_all(compiled, simulate, UNTIL_SIMULATIONS, seed)
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


def min_p(result):
    return min(float(np.min(p)) for p in result.chi_square(bins=10).values())


@pytest.mark.slow
@pytest.mark.parametrize(
    "model, simulate, seed",
    [(conjugate_model, simulate_conjugate, 21), (hierarchical_model, simulate_hierarchical, 22)],
    ids=["conjugate", "hierarchical"],
)
def test_sbc_of_until_runs_shows_no_stopping_bias(model, simulate, seed):
    simulations, fits = until_study(model(), simulate, seed)
    result = SBCResult(rank_all(simulations, fits), 99, fits.divergences, fits.sizes)
    assert len(set(fits.sizes.tolist())) > 1, "every fit stopped at the same length: no optional stopping"
    assert_uniform(result)
    # the power the study has: the same fits made 25% too narrow are caught (figures in docs/until.md)
    tested = sum(p.size for p in result.chi_square().values())
    assert min_p(distorted(simulations, fits, scale=0.75)) < ALPHA / tested
