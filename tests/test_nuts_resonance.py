"""NUTS's resonant step sizes: the leapfrog period behind them, the band `clear_of_resonance` moves a
step out of, and a 10-dimensional Gaussian whose adapted step lands on one."""

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


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_avoid_resonance_takes_true_or_false(bad):
    with pytest.raises(ValueError, match=rf"NUTS\(avoid_resonance={bad!r}\): give True or False"):
        pbj.samplers.NUTS(avoid_resonance=bad)
