"""The benchmark's models are the same posterior in every system: at random unconstrained points the
log-densities of ours, NumPyro's and PyMC's versions differ only by a constant."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import pytensor_blackjax as pbj

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import models  # noqa: E402

POINTS = 4


def _points(compiled, seed=0):
    rng = np.random.default_rng(seed)
    flats = rng.uniform(-1.0, 1.0, size=(POINTS, compiled.num_dims))
    return [{k: np.asarray(v) for k, v in compiled.unravel(f).items()} for f in flats]


def _ours(compiled, points):
    return np.array([float(compiled.logdensity_fn(p)) for p in points])


def _numpyro(name, points):
    from numpyro.infer.util import potential_energy

    assert jax.config.jax_enable_x64  # pbj.compile switched it on: float64 in every system
    model = models.numpyro_model(name)
    return np.array([-float(potential_energy(model, (), {}, models.numpyro_point(name, p))) for p in points])


def _pymc(name, points):
    pm_model = models.pymc_model(name)
    logp = pm_model.compile_logp(jacobian=True, mode="FAST_COMPILE")
    return np.array([float(logp(models.pymc_point(name, p))) for p in points])


def _agree(a, b):
    """Equal up to a constant: differences to the first point agree."""
    np.testing.assert_allclose(a - a[0], b - b[0], rtol=1e-7, atol=1e-6)


@pytest.mark.parametrize("name", models.TUNED)
def test_hand_written_models_agree_across_systems(name):
    compiled = pbj.compile(models.ours(name))
    points = _points(compiled)
    ours = _ours(compiled, points)
    assert np.all(np.isfinite(ours)) and np.ptp(ours) > 1e-3  # the points tell the densities apart
    _agree(ours, _numpyro(name, points))
    _agree(ours, _pymc(name, points))


@pytest.mark.parametrize("name", models.UNTUNED)
def test_untuned_posteriors_give_peers_our_density(name):
    compiled = pbj.compile(models.ours(name))
    points = _points(compiled, seed=1)
    flats = np.stack([np.asarray(compiled.ravel(p)) for p in points])
    logp = models.pymc_model(name).compile_logp(jacobian=True, mode="FAST_COMPILE")
    _agree(_ours(compiled, points), np.array([float(logp({"flat": f})) for f in flats]))


def test_a_wrong_model_is_caught():
    """The check has power: eight schools with the prior scale of tau changed from 5 to 4 disagrees."""
    compiled = pbj.compile(models.ours("eight_schools"))
    points = _points(compiled)
    ours = _ours(compiled, points)
    wrong = ours + np.array([np.log1p((np.exp(p["tau_log__"]) / 5) ** 2) for p in points])
    wrong -= np.array([np.log1p((np.exp(p["tau_log__"]) / 4) ** 2) for p in points])
    with pytest.raises(AssertionError):
        _agree(wrong, _numpyro("eight_schools", points))
