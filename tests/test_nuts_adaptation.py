"""NUTS mass-matrix adaptations and starts: each recovers a correlated Gaussian with known moments."""

from types import SimpleNamespace

import numpy as np
import pytensor.tensor as pt
import pytest
from arviz_stats import ess
from conftest import moment_z

import pytensor_blackjax as pbj
from pytensor_blackjax.samplers._metric import (
    dense_factors,
    dense_metric,
    low_rank_buffer_init,
    low_rank_buffer_push,
    low_rank_parts,
)

DIMS = 6
SCALES = np.array([0.1, 0.5, 1.0, 2.0, 5.0, 10.0])
CORR = 0.9 * np.ones((DIMS, DIMS)) + 0.1 * np.eye(DIMS)
COV = CORR * np.outer(SCALES, SCALES)
MEAN = np.arange(DIMS, dtype=float)


def gaussian_model():
    m = pbj.ModelBuilder(name="correlated_gaussian")
    x = m.param("x", shape=(DIMS,))
    precision = m.data("precision", np.linalg.inv(COV))
    d = x - MEAN
    m.add_logp(-0.5 * pt.dot(d, pt.dot(precision, d)))
    return m.build()


@pytest.fixture(scope="module")
def compiled():
    return pbj.compile(gaussian_model())


@pytest.mark.parametrize(
    "sampler",
    [
        pbj.samplers.NUTS(adaptation="dense"),
        pbj.samplers.NUTS(adaptation="low_rank", max_rank=3),
        pbj.samplers.NUTS(adaptation="dense", init="pathfinder"),
    ],
    ids=["dense", "low_rank", "dense-pathfinder"],
)
def test_recovers_correlated_gaussian(compiled, sampler):
    tree = pbj.sample(compiled, draws=500, tune=500, chains=4, seed=3, sampler=sampler, progressbar=False)
    draws = tree["posterior"]["x"].values.reshape(-1, DIMS)
    n_eff = np.asarray(ess(tree["posterior"].to_dataset(), method="mean")["x"].values)
    mcse = SCALES / np.sqrt(n_eff)
    assert np.all(np.abs(draws.mean(0) - MEAN) < 5 * mcse)
    assert np.allclose(draws.std(0), SCALES, rtol=0.2)


def test_step_jitter_varies_only_the_sampling_steps_and_keeps_the_posterior(compiled):
    def run(jitter):
        nuts = pbj.samplers.NUTS(adaptation="dense", step_jitter=jitter)
        return pbj.sample(compiled, draws=800, tune=500, chains=4, seed=3, sampler=nuts, progressbar=False)

    fixed, jittered = run(0.0), run(0.25)
    # the warmup is the same to the bit: the adapted step size, and with it every stat's record of it
    np.testing.assert_array_equal(jittered["sample_stats"]["step_size"], fixed["sample_stats"]["step_size"])
    # the sampling steps are not: trajectories of other lengths, other draws
    assert not np.array_equal(jittered["sample_stats"]["n_steps"], fixed["sample_stats"]["n_steps"])
    x = jittered["posterior"]["x"].values
    assert moment_z(x, MEAN, what="mean") < 5
    assert moment_z((x - MEAN) ** 2, SCALES**2, what="variance") < 5


def test_dense_metric_factors_give_the_mass_matrix():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    imm = a @ a.T + 5 * np.eye(5)
    factors = dense_factors(imm)
    np.testing.assert_allclose(factors.mass_sqrt @ factors.mass_sqrt.T, np.linalg.inv(imm), rtol=1e-8)
    metric = dense_metric(imm, factors)
    p = rng.normal(size=5)
    np.testing.assert_allclose(metric.kinetic_energy(p), 0.5 * p @ imm @ p, rtol=1e-10)


def test_low_rank_estimate_finds_the_correlated_direction():
    # draws from N(0, COV): the exact gradient is -COV^-1 x; the estimate must whiten the target
    rng = np.random.default_rng(1)
    x = rng.multivariate_normal(np.zeros(DIMS), COV, size=400)
    grads = -x @ np.linalg.inv(COV)
    buffer = low_rank_buffer_init(512, DIMS, np.float64)
    for xi, gi in zip(x, grads, strict=True):
        buffer = low_rank_buffer_push(buffer, xi, gi)
    sigma, u, lam = (np.asarray(a) for a in low_rank_parts(buffer, max_rank=DIMS, cutoff=1.0))
    imm = np.diag(sigma) @ (np.eye(DIMS) + u @ np.diag(lam - 1) @ u.T) @ np.diag(sigma)
    # the inverse mass matrix recovers the covariance (condition number of the whitened target near 1)
    whitened = np.linalg.solve(np.linalg.cholesky(imm), np.linalg.cholesky(COV))
    assert np.linalg.cond(whitened @ whitened.T) < 1.5


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"adaptation": "full"}, r"adaptation='full'.*'low_rank'"),
        ({"init": "map"}, r"init='map'.*'pathfinder'"),
        ({"max_rank": 0}, r"max_rank=0"),
        ({"step_jitter": 1.0}, r"NUTS\(step_jitter=1.0\).*from 0 \(off\) up to, not including, 1"),
        ({"step_jitter": -0.1}, r"step_jitter=-0.1"),
        ({"step_jitter": True}, r"step_jitter=True"),
    ],
)
def test_bad_options_name_the_fix(bad, match):
    with pytest.raises(ValueError, match=match):
        pbj.samplers.NUTS(**bad)


def test_auto_picks_dense_for_small_and_diagonal_for_large_models():
    nuts = pbj.samplers.NUTS()
    assert nuts.metric_kind(20) == "dense" and nuts.metric_kind(1000) == "diag"


def test_start_variances_shrink_only_steep_coordinates():
    import jax.numpy as jnp

    from pytensor_blackjax.samplers._windowed import start_variances

    var = np.asarray(start_variances(jnp.array([1e4, -100.0, 0.5, 0.0, jnp.nan, -jnp.inf])))
    np.testing.assert_allclose(var, [1e-2, 0.1, 1.0, 1.0, 1.0, 1.0])


def window_estimate(draws, cov, kind="dense"):
    """An estimator's inverse mass matrix after one window of ``draws`` from N(0, cov)."""
    import jax.numpy as jnp

    from pytensor_blackjax.samplers._windowed import _estimator

    dims = cov.shape[0]
    est = _estimator(kind, dims, jnp.float64, max_rank=10)
    grads = -draws @ np.linalg.inv(cov)
    state, _, _ = est.init(jnp.asarray(grads[0]))
    for x, g in zip(draws, grads, strict=True):
        state = est.update(state, SimpleNamespace(position=jnp.asarray(x), logdensity_grad=jnp.asarray(g)))
    return np.asarray(est.final(state)[1])


def whitened_condition(imm, cov):
    whitened = np.linalg.solve(np.linalg.cholesky(imm), np.linalg.cholesky(cov))
    return np.linalg.cond(whitened @ whitened.T)


def test_a_short_dense_window_uses_the_draws_gradients():
    # 26 dimensions, scales over 3 decades, correlation 0.99: 25 draws cannot estimate 351 covariances,
    # but with their gradients they pin down the scales and the correlated direction
    dims = 26
    scales = np.geomspace(0.01, 10.0, dims)
    cov = (0.99 * np.ones((dims, dims)) + 0.01 * np.eye(dims)) * np.outer(scales, scales)
    draws = np.random.default_rng(2).multivariate_normal(np.zeros(dims), cov, size=25)
    assert whitened_condition(np.diag(np.diag(cov)), cov) > 1000  # even the exact diagonal is poor
    # the sample covariance shrunk half-way to its diagonal (the estimate before) gave 486
    assert whitened_condition(window_estimate(draws, cov), cov) < 20


def test_a_long_dense_window_keeps_its_sample_covariance():
    draws = np.random.default_rng(3).multivariate_normal(MEAN, COV, size=400)
    np.testing.assert_allclose(window_estimate(draws, COV), np.cov(draws.T), rtol=0.05, atol=1e-3)


def test_nuts_dense_windows_recover_a_gaussian_covariance_exactly():
    # the draws' sample covariance is off by sampling noise (5% here); with the gradients the
    # Fisher-divergence estimate is the covariance itself, at every scale (no shrinkage to 1e-3 I)
    draws = np.random.default_rng(3).multivariate_normal(MEAN, COV, size=400)
    assert np.max(np.abs(np.cov(draws.T) / COV - 1)) > 0.02
    np.testing.assert_allclose(window_estimate(draws - MEAN, COV, "fisher"), COV, rtol=1e-6)
    tiny = COV * 1e-8  # variances 1e-10 .. 1e-6: Stan's shrinkage would add 1e-5 to each
    np.testing.assert_allclose(window_estimate((draws - MEAN) * 1e-4, tiny, "fisher"), tiny, rtol=1e-6)
    # a short window (fewer draws than dimensions) too, as the old estimate's short windows did
    dims = 26
    scales = np.geomspace(0.01, 10.0, dims)
    cov = (0.99 * np.ones((dims, dims)) + 0.01 * np.eye(dims)) * np.outer(scales, scales)
    short = np.random.default_rng(2).multivariate_normal(np.zeros(dims), cov, size=25)
    assert whitened_condition(window_estimate(short, cov, "fisher"), cov) < 20


def test_stan_schedule_matches_blackjax_for_every_length():
    from blackjax.adaptation.window_adaptation import build_schedule

    from pytensor_blackjax.samplers._adaptation import stan_schedule

    for tune in range(0, 1200):
        expected = np.asarray(build_schedule(tune), dtype=np.int32).reshape(tune, 2)
        np.testing.assert_array_equal(stan_schedule(tune), expected, err_msg=f"tune={tune}")


def test_the_schedule_updates_the_metric_twice_in_the_initial_buffer():
    from pytensor_blackjax.samplers._adaptation import window_schedule

    rows = window_schedule(1000)
    np.testing.assert_array_equal(np.flatnonzero(rows[:, 1]), [39, 74, 99, 149, 249, 449, 949])
    assert not rows[:15, 0].any() and rows[15:950, 0].all() and not rows[950:, 0].any()
    # a shortened initial buffer (fewer than 150 warmup steps) keeps Stan's schedule
    assert np.flatnonzero(window_schedule(100)[:, 1]).tolist() == [89]
    assert not window_schedule(19).any()


def _window_state(kind, window, dtype):
    """A warmup state after a window of ``window`` draws from N(MEAN, COV), with their gradients."""
    import jax
    import jax.numpy as jnp

    from pytensor_blackjax.samplers._adaptation import Welford
    from pytensor_blackjax.samplers._metric import LowRankBuffer
    from pytensor_blackjax.samplers._windowed import windowed_hmc_kernel

    kernel = windowed_hmc_kernel(
        None, lambda x: -0.5 * jnp.sum(x**2), DIMS, target_accept=0.8, stats_fn=None, adaptation=kind
    )
    ws = jax.tree.map(
        np.asarray, jax.device_get(jax.jit(kernel.warmup_init)(jax.random.key(0), jnp.zeros(DIMS)))
    )
    draws = np.random.default_rng(4).multivariate_normal(MEAN, COV, size=window).astype(dtype)
    grads = (-(draws - MEAN) @ np.linalg.inv(COV)).astype(dtype)

    def filled(state):
        if isinstance(state, np.ndarray):  # the fisher estimator's `gradient_nonlinearity`: kept
            return state
        if isinstance(state, LowRankBuffer):  # a ring: draw k in row k % capacity
            d, g = np.zeros_like(state.draws), np.zeros_like(state.grads)
            for k in range(window):
                d[k % len(d)], g[k % len(g)] = draws[k], grads[k]
            return LowRankBuffer(d, g, np.asarray(window, np.int32))
        dev = draws - draws.mean(0)
        m2 = dev.T @ dev if state.m2.ndim == 2 else np.sum(dev**2, 0)
        return Welford(draws.mean(0).astype(dtype), m2.astype(dtype), np.asarray(window, np.int32))

    mm = ws.mass_matrix_state
    mm = tuple(filled(m) for m in mm) if isinstance(mm, tuple) and not hasattr(mm, "_fields") else filled(mm)
    ws = ws._replace(mass_matrix_state=mm)
    ws = ws._replace(step_size_state=ws.step_size_state._replace(log_step_size_avg=np.asarray(-1.3)))
    return jax.tree.map(lambda x: x.astype(dtype) if x.dtype.kind == "f" else x, ws)


@pytest.mark.parametrize("kind", ["diag", "dense", "fisher", "low_rank"])
@pytest.mark.parametrize("window", [25, 400], ids=["short", "long"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_window_ends_on_the_host_as_it_does_traced(kind, window, dtype):
    """Chains on this host end their windows in NumPy, sharded ones in a JAX program: the same
    estimate to rounding, and the state keeps its types (else the next warmup call compiles again)."""
    import jax

    from pytensor_blackjax.run._program_keys import signature
    from pytensor_blackjax.samplers._windowed import end_window

    ws = _window_state(kind, window, dtype)
    with jax.enable_x64(dtype == "float64"):
        traced = jax.jit(lambda w: end_window(w, adaptation=kind, num_dims=DIMS, max_rank=10))(ws)
        host = end_window(ws, adaptation=kind, num_dims=DIMS, max_rank=10)
        assert signature((host,)) == signature((traced,)) == signature((ws,))
    tol = 1e-9 if dtype == "float64" else 1e-3
    for a, b in zip(jax.tree.leaves(host), jax.tree.leaves(traced), strict=True):
        a, b = np.asarray(a, float), np.asarray(b, float)
        if kind == "low_rank" and a.ndim == 2:  # eigenvectors: up to sign
            a, b = np.abs(a), np.abs(b)
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.max(np.abs(b), initial=1.0))
