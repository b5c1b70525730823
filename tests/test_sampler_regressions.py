"""Regression checks for sampler failures seen on posteriordb posteriors.

Each statistical check samples a target with a known answer (closed form, or the posteriordb
reference means, whose Monte Carlo error is far below ours) with fixed seeds and several chains and
asks for |mean - truth| < 5 MCSE.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytensor.tensor as pt
import pytest
from conftest import mcse_z, moment_z
from scipy.special import digamma

import pytensor_blackjax as pbj
from pytensor_blackjax.examples import posteriordb
from pytensor_blackjax.samplers._metric import dense_factors, dense_metric

Z_MAX = 5.0
EIGHT_SCHOOLS = {"J": 8, "y": [28, 8, -3, 7, -1, 1, 18, 12], "sigma": [15, 10, 16, 11, 9, 11, 10, 18]}
# posteriordb reference (10 chains x 1000 draws): MCSE about 0.03 for mu and tau
EIGHT_SCHOOLS_MEANS = {"mu": 4.411, "tau": 3.602}


def _sample(model, sampler, *, seed, chains=4, draws=1000, tune=1000):
    # sampling warnings stay errors: a statistical check must not pass over the diagnostics that say
    # its draws cannot be trusted
    return pbj.sample(
        model, sampler=sampler, draws=draws, tune=tune, chains=chains, seed=seed, progressbar=False
    )


def test_dense_kinetic_energy_is_never_negative_when_the_momentum_overflows():
    imm = jnp.array([[1.0, -0.6, 0.2], [-0.6, 1.0, -0.5], [0.2, -0.5, 1.0]])
    metric = dense_metric(imm, dense_factors(imm))
    # far in a tail a leapfrog step gives momenta whose squares overflow: the quadratic form's terms
    # of both signs then summed to -inf, a total energy of -inf and a certain acceptance
    big = float(np.sqrt(jnp.finfo(imm.dtype).max))
    momentum = jnp.array([3.0, -2.0, 1.0], imm.dtype) * big
    assert float(metric.kinetic_energy(momentum)) == np.inf
    p = jnp.array([0.3, -1.2, 0.7])
    np.testing.assert_allclose(float(metric.kinetic_energy(p)), 0.5 * float(p @ imm @ p), rtol=1e-5)
    assert bool(jax.jit(lambda m: metric.kinetic_energy(m) >= 0)(momentum))


@pytest.mark.parametrize("seed", [0, 1])
def test_mala_mixes_on_noncentered_eight_schools(seed):
    # a large warmup step once threw a chain to tau ~ 1e44, where the dense kinetic energy came out
    # as -inf, the impossible proposal was accepted and the chain never moved again
    model = posteriordb.model("eight_schools-eight_schools_noncentered", EIGHT_SCHOOLS)
    # About 1% of MALA's proposals here have an energy error over 1000 (at every target_accept tried,
    # 0.57 to 0.9): rejected for certain, not divergences (MALA.flags_divergences says why), so no
    # warning; at 6000 draws R-hat and ESS meet their lines
    tree = _sample(model, "mala", seed=seed, draws=6000)
    assert int(tree["sample_stats"]["diverging"].sum()) == 0
    assert float((tree["sample_stats"]["acceptance_rate"] < 1e-300).mean()) > 0.001  # the rejections
    step = np.asarray(tree["sample_stats"]["step_size"].values)
    assert step.min() > 0.1, f"a chain's step size collapsed: {step.min(axis=1)}"
    for name, truth in EIGHT_SCHOOLS_MEANS.items():
        z = mcse_z(tree, name, truth)
        assert z < Z_MAX, f"{name}: |mean - truth| = {z:.2f} MCSE"


@pytest.mark.parametrize("name", ["mala", "mclmc", "smc"])
def test_every_mcmc_sampler_reports_its_integration_steps(name):
    m = pbj.ModelBuilder()
    x = m.param("x", shape=(2,))
    m.add_logp(-0.5 * pt.sum(x**2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pbj.SamplingWarning)  # 100 draws; step counts are the point
        tree = _sample(pbj.compile(m.build()), name, seed=3, draws=100, tune=100)
    steps = np.asarray(tree["sample_stats"]["n_steps"].values)
    assert steps.shape == (4, 100)
    if name == "smc":
        # each draw is a particle; it carries the leapfrog steps of the whole tempering run: at least
        # the fewest moves at the reference and at the posterior
        sampler = pbj.samplers.SMC()
        fewest = 2 * sampler.num_mcmc_steps * sampler.num_integration_steps
        assert np.all(steps == steps.flat[0]) and steps.flat[0] % sampler.num_integration_steps == 0
        assert steps.flat[0] >= fewest
    else:
        assert np.all(steps == 1)


def _regression_with_unknown_scale():
    """A kidiq-like regression: intercept and slope correlated at about -0.99, sigma 18.

    Flat priors on the coefficients and on log sigma: the coefficients' posterior mean is the least
    squares fit, and RSS / sigma**2 is chi-squared with n - 2 degrees of freedom.
    """
    rng = np.random.default_rng(7)
    n = 400
    x = 100 + 15 * rng.standard_normal(n)
    y = 26 + 0.6 * x + 18 * rng.standard_normal(n)
    coef, rss = np.linalg.lstsq(np.column_stack([np.ones(n), x]), y, rcond=None)[:2]
    truth = {"coef": coef, "log_sigma": 0.5 * (np.log(rss[0]) - np.log(2) - digamma((n - 2) / 2))}
    m = pbj.ModelBuilder()
    c = m.param("coef", shape=(2,))
    log_sigma = m.param("log_sigma")
    m.add_logp(-n * log_sigma - 0.5 * pt.sum((y - c[0] - c[1] * x) ** 2) * pt.exp(-2 * log_sigma))
    return pbj.compile(m.build()), truth


# MEADS does not converge here: with its warnings no longer silenced, 32 chains x 1000 draws give R-hat
# 1.09 and bulk ESS 274, and 32 x 4000 still R-hat 1.016-1.024 and ESS 1127-1653 (below 100 per chain).
# A known failure, kept visible (strict: a fix shows as XPASS), not a pass bought by silencing. It is
# the method, not its tuning: one leapfrog step per draw with a diagonal scale crawls along a ridge.
# On a unit-scale 2-d Gaussian with correlation 0.9, 32 x 1000 draws give ESS ~40 per chain and R-hat
# 1.02 after 1000 or 4000 warmup steps alike (docs/samplers.md).
MEADS_DOES_NOT_MIX = pytest.mark.xfail(
    raises=pbj.SamplingWarning,
    strict=True,
    reason="MEADS (diagonal scale, one step per draw): R-hat > 1.01 on the -0.99 correlated regression",
)


@pytest.mark.parametrize("name", ["chees", pytest.param("meads", marks=MEADS_DOES_NOT_MIX)])
@pytest.mark.parametrize("seed", [0, 1])
def test_ensemble_samplers_recover_a_correlated_regression_from_the_default_start(name, seed):
    # from the driver's uniform(-2, 2) points (sigma about 1) a few chains never moved, and the pooled
    # statistics put every chain's means 7 (ChEES) to 150 (MEADS) MCSE away; they start from
    # Pathfinder draws now
    model, truth = _regression_with_unknown_scale()
    tree = _sample(model, name, seed=seed, chains=32)
    for var, value in truth.items():
        z = mcse_z(tree, var, value)
        assert z < Z_MAX, f"{var}: |mean - truth| = {z:.2f} MCSE"


# kidiq-like: coefficients correlated at -0.99 on scales 100x apart, a third correlated with both
KIDIQ_MEAN = np.array([26.0, 0.6, -3.0])
KIDIQ_SD = np.array([9.0, 0.09, 0.9])
KIDIQ_CORR = np.array([[1.0, -0.99, 0.5], [-0.99, 1.0, -0.5], [0.5, -0.5, 1.0]])


def test_smc_recovers_a_strongly_correlated_gaussian_on_scales_100x_apart():
    # SMC moved its particles with a fixed 10 HMC moves per tempering step on a diagonal mass matrix:
    # here (4 chains x 500 particles) the means came out 7.1 MCSE off, as on posteriordb kidiq (1.36 sd
    # off, sds 28% too small). The particles' covariance as the mass matrix, and moves until the
    # particles decorrelate, recover it.
    cov = KIDIQ_CORR * np.outer(KIDIQ_SD, KIDIQ_SD)
    m = pbj.ModelBuilder()
    x = m.param("x", shape=(3,))
    d = x - KIDIQ_MEAN
    m.add_logp(-0.5 * pt.dot(d, pt.dot(np.linalg.inv(cov), d)))
    tree = pbj.sample(
        pbj.compile(m.build()), sampler="smc", draws=500, tune=200, chains=4, seed=5, progressbar=False
    )
    draws = tree["posterior"]["x"].values
    assert moment_z(draws, KIDIQ_MEAN, what="means") < Z_MAX
    assert moment_z((draws - KIDIQ_MEAN) ** 2, KIDIQ_SD**2, what="variances") < Z_MAX
