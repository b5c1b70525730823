"""NUTS's resonant step sizes: the leapfrog period behind them, the band `clear_of_resonance` moves a
step out of, a 10-dimensional Gaussian whose adapted step lands on one, and the measure of how nearly
Gaussian a posterior is that ``avoid_resonance="auto"`` asks before moving a step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytensor.tensor as pt
import pytest
from conftest import moment_z

import pytensor_blackjax as pbj
from pytensor_blackjax.samplers._adaptation import (
    RESONANCE_BAND,
    clear_of_resonance,
    resonant_step_sizes,
)
from pytensor_blackjax.samplers._metric import LowRankBuffer, gradient_nonlinearity
from pytensor_blackjax.samplers._windowed import NEARLY_GAUSSIAN

DIMS = 10
_A = np.random.default_rng(0).normal(size=(DIMS, DIMS))
COV = _A @ _A.T / DIMS + 0.5 * np.eye(DIMS)


def leapfrog_unit_gaussian(x, p, step, n):
    for _ in range(n):
        p = p - 0.5 * step * x
        x = x + step * p
        p = p - 0.5 * step * x
    return x, p


def test_each_resonant_step_closes_one_period_in_2k_minus_1_steps():
    steps = resonant_step_sizes(12)
    for k, step in zip(range(3, 13), steps, strict=True):
        assert (2**k - 1) * np.arccos(1 - step**2 / 2) == pytest.approx(2 * np.pi, rel=1e-9)
        x, p = leapfrog_unit_gaussian(0.3, 1.1, step, 2**k - 1)
        assert (x, p) == (pytest.approx(0.3, abs=1e-9), pytest.approx(1.1, abs=1e-9))
    # the largest, 2 sin(pi / 3), is left out (its band's top would near leapfrog's limit of 2)
    assert steps[0] == pytest.approx(2 * np.sin(np.pi / 7))


def test_a_step_inside_a_band_moves_to_its_top_and_others_stay():
    low, high = RESONANCE_BAND
    e3, e4 = resonant_step_sizes()[:2]
    inside = [low * e3, e3, 0.999 * high * e3, low * e4, 1.05 * e4]
    outside = [0.99 * low * e3, high * e3, 1.5, 0.6, 0.99 * low * e4, 0.3]
    for step in inside:
        top = high * (e3 if step > 0.6 else e4)
        assert clear_of_resonance(np.float64(step)) == pytest.approx(top, rel=1e-12)
    for step in outside:
        assert clear_of_resonance(np.float64(step)) == step
    # traced (the warmup's last program), in float32 too: the same choice
    traced = jax.jit(clear_of_resonance)
    for step in inside + outside:
        expected = clear_of_resonance(np.float64(step))
        assert float(traced(jnp.asarray(step, jnp.float32))) == pytest.approx(expected, rel=1e-6)
        assert traced(jnp.asarray(step, jnp.float32)).dtype == jnp.float32


@pytest.fixture(scope="module")
def gaussian10():
    m = pbj.ModelBuilder(name="gaussian10")
    x = m.param("x", shape=(DIMS,))
    precision = m.data("precision", np.linalg.inv(COV))
    m.add_logp(-0.5 * pt.dot(x, pt.dot(precision, x)))
    return pbj.compile(m.build())


def _buffer(x, g, rows=None, xp=np):
    n = len(x) if rows is None else rows
    return LowRankBuffer(xp.asarray(x), xp.asarray(g), xp.asarray(n, np.int32))


def test_gradient_nonlinearity_is_zero_for_any_gaussian_and_large_for_skewed_or_heavy_tails():
    rng = np.random.default_rng(3)
    x = rng.multivariate_normal(np.ones(DIMS), COV, size=200)
    g = -(x - 1.0) @ np.linalg.inv(COV)
    assert gradient_nonlinearity(_buffer(x, g)) < 1e-5
    # traced in float32, from the first 150 rows of the buffer
    f32 = jax.jit(gradient_nonlinearity)(_buffer(x.astype(np.float32), g.astype(np.float32), 150, jnp))
    assert f32.dtype == jnp.float32 and float(f32) < 1e-4
    # Student-t with 5 degrees of freedom in every coordinate: the gradient bends in the tails
    t = rng.standard_t(5, size=(200, DIMS))
    heavy = gradient_nonlinearity(_buffer(t, -6.0 * t / (5.0 + t**2)))
    assert heavy > 2 * NEARLY_GAUSSIAN
    # affine invariant: draws A x + b have gradients A^-T g
    a = rng.normal(size=(DIMS, DIMS)) + 3 * np.eye(DIMS)
    moved = gradient_nonlinearity(_buffer(t @ a.T + 2.0, (-6.0 * t / (5.0 + t**2)) @ np.linalg.inv(a)))
    assert moved == pytest.approx(heavy, rel=1e-4)  # to the regularisation gamma
    # no more rows than dimensions + 1: nothing measured, the largest value
    assert gradient_nonlinearity(_buffer(x, g, DIMS + 1)) == 1.0


def test_a_resonant_step_is_moved_and_its_trajectories_stop_doubling(gaussian10):
    def run(avoid):
        nuts = pbj.samplers.NUTS(avoid_resonance=avoid)
        return pbj.sample(gaussian10, draws=1000, tune=500, chains=4, seed=2, sampler=nuts, progressbar=False)

    kept, moved = run(False)["sample_stats"], run(True)
    adapted = kept["step_size"].values[:, 0]
    # seed 2: dual averaging leaves three chains' steps in the band above 2 sin(pi / 7)
    band = RESONANCE_BAND[0] * resonant_step_sizes()[0], RESONANCE_BAND[1] * resonant_step_sizes()[0]
    assert np.sum((adapted >= band[0]) & (adapted < band[1])) == 3
    # the warmup is unchanged: the sampling step is the adapted one, moved out of its band or kept
    np.testing.assert_allclose(
        moved["sample_stats"]["step_size"].values[:, 0], [clear_of_resonance(s) for s in adapted], rtol=1e-6
    )
    # the chain whose step sat on the resonance spent ~49 gradients a draw; moved, every chain < 6
    assert kept["n_steps"].values.mean(axis=1).max() > 20
    assert moved["sample_stats"]["n_steps"].values.mean(axis=1).max() < 6
    x = moved["posterior"]["x"].values
    assert moment_z(x, np.zeros(DIMS), what="mean") < 4
    # 4 MCSE: the same draws put a variance 10% off at 4.7 MCSE, a mean 0.1 sd off at 9.1
    assert moment_z(x**2, np.diag(COV), what="variance") < 4


@pytest.mark.filterwarnings("ignore::pytensor_blackjax.SamplingWarning")  # 20 draws: only the steps count
def test_auto_moves_the_step_of_a_gaussian_and_keeps_that_of_a_skewed_posterior(gaussian10):
    def steps(compiled, avoid, seed):
        nuts = pbj.samplers.NUTS(avoid_resonance=avoid)
        tree = pbj.sample(compiled, draws=20, tune=1000, chains=4, seed=seed, sampler=nuts, progressbar=False)
        return tree["sample_stats"]["step_size"].values[:, 0]

    np.testing.assert_array_equal(steps(gaussian10, "auto", 2), steps(gaussian10, True, 2))
    # a normal model's mean and log sd from 6 observations (`gradient_nonlinearity` about 0.4): at this
    # seed a chain's step lies in a band, which True moves and "auto" keeps
    m = pbj.ModelBuilder(name="skewed")
    mu, sigma = m.param("mu"), m.param("sigma", transform="positive")
    y = m.data("y", np.array([0.3, -1.2, 2.1, 0.8, 0.1, -0.4]))
    m.add_logp(pt.sum(-0.5 * ((y - mu) / sigma) ** 2 - pt.log(sigma)))
    skewed = pbj.compile(m.build())
    kept, auto, moved = (steps(skewed, avoid, 9) for avoid in (False, "auto", True))
    assert np.any(moved != kept)
    np.testing.assert_array_equal(auto, kept)


@pytest.mark.parametrize("bad", [1, "yes", None, "Auto"])
def test_avoid_resonance_takes_true_false_or_auto(bad):
    with pytest.raises(ValueError, match=rf"NUTS\(avoid_resonance={bad!r}\): give True, False or 'auto'"):
        pbj.samplers.NUTS(avoid_resonance=bad)
