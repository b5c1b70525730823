"""Simulation-based calibration (Talts et al. 2018): are the posterior draws calibrated on average?

Draw parameters from the prior, data from the model given them, fit the posterior to those data, and
rank each true value among the (thinned) posterior draws. When the sampler and the model agree, each
rank is uniform on ``0..L``. Every fit runs the package's own NUTS kernels (the same warmup as
``pbj.sample``), one chain per simulated data set, and all fits are vectorised with ``jax.vmap``.

References:
    Talts, Betancourt, Simpson, Vehtari, Gelman (2018), Validating Bayesian inference algorithms
    with simulation-based calibration. arXiv:1804.06788.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.samplers import NUTS, RunSize
from pytensor_blackjax.samplers._start import uniform_point

__all__ = ["SBCResult", "simulation_based_calibration"]

Simulator = Callable[[jax.Array], tuple[Mapping[str, jax.Array], Mapping[str, jax.Array]]]


@dataclass(frozen=True)
class SBCResult:
    """Ranks of the true values, per quantity, shaped ``(simulations, *shape)``, in ``0..num_draws``.

    Attributes:
        ranks: name -> ranks.
        num_draws: posterior draws each rank is taken among (L).
        divergences: divergent transitions per simulation (after warmup).
    """

    ranks: Mapping[str, np.ndarray]
    num_draws: int
    divergences: np.ndarray

    def chi_square(self, bins: int = 10) -> dict[str, np.ndarray]:
        """Chi-square p-value of the uniformity of the ranks, per quantity and component.

        Ranks ``0..L`` fall into ``bins`` equal-width bins; ``L + 1`` should be divisible by ``bins``
        for the bins to be exactly equally likely.
        """
        from scipy.stats import chi2

        out = {}
        for name, ranks in self.ranks.items():
            flat = ranks.reshape(ranks.shape[0], -1)
            which = (flat * bins) // (self.num_draws + 1)
            counts = np.stack([(which == b).sum(axis=0) for b in range(bins)])
            expected = flat.shape[0] / bins
            stat = ((counts - expected) ** 2 / expected).sum(axis=0)
            out[name] = chi2.sf(stat, bins - 1).reshape(ranks.shape[1:])
        return out


def simulation_based_calibration(
    compiled: CompiledModel,
    simulate: Simulator,
    *,
    num_simulations: int = 256,
    num_draws: int = 99,
    thin: int = 4,
    tune: int = 400,
    sampler: NUTS | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> SBCResult:
    """Run SBC for one model.

    Args:
        compiled: the compiled model; its declared data are replaced by each simulated data set.
        simulate: ``key -> (truth, data)``: ``truth`` maps reported names (parameters or
            deterministics) to their true values, ``data`` maps data names to simulated values of
            the declared shapes (names left out keep their declared values). Written in JAX.
        num_simulations: simulated data sets.
        num_draws: posterior draws per fit that each truth is ranked among (L); the ranks run over
            ``0..L``.
        thin: keep every ``thin``-th NUTS step, so that kept draws are close to independent.
        tune: warmup steps per fit.
        sampler: the NUTS settings (default ``NUTS()``).
        seed: the seed of the whole study.
        batch_size: simulations fitted together in one vmapped program.

    Returns:
        An `SBCResult`.

    Raises:
        ValueError: ``simulate`` returns a name that is not reported or not declared data.

    Example:
        >>> # see tests/test_sbc.py for two complete studies
        >>> from pytensor_blackjax.validate import simulation_based_calibration  # doctest: +SKIP
    """
    sampler = sampler or NUTS()
    size = RunSize(draws=num_draws * thin, tune=tune, chains=1).only(sampler.size_fields)
    schedule = jnp.asarray(sampler.schedule(tune))
    data_names = compiled.data_names
    defaults = compiled.default_data

    def fit(key, data):
        data_args = tuple(jnp.asarray(data.get(n, defaults[n])) for n in data_names)
        kernel = sampler.build(
            lambda flat: compiled.flat_logdensity(flat, data_args), compiled.num_dims, size
        )
        key_init, key_start, key_warm, key_draw = jax.random.split(key, 4)
        start = uniform_point(key_start, compiled.num_dims, sampler.init_radius)
        warm = kernel.warmup_init(key_init, start)
        if tune:
            warm, _ = jax.lax.scan(
                lambda s, x: (kernel.warmup_step(x[0], s, x[1])[0], None),
                warm,
                (jax.random.split(key_warm, tune), schedule),
            )
        state, params = kernel.warmup_finish(warm)

        def one(state, step_key):
            state, stats = kernel.step(step_key, state, params)
            return state, (kernel.position(state), stats["diverging"])

        _, (positions, diverging) = jax.lax.scan(one, state, jax.random.split(key_draw, num_draws * thin))
        kept = positions[thin - 1 :: thin]
        outputs = jax.vmap(lambda p: compiled.flat_constrain(p, data_args))(kept)
        return outputs, jnp.sum(diverging)

    def study(key):
        key_sim, key_fit = jax.random.split(key)
        truth, data = simulate(key_sim)
        outputs, divergences = fit(key_fit, dict(data))
        ranks = {k: jnp.sum(outputs[k] < jnp.asarray(v), axis=0) for k, v in truth.items()}
        return ranks, divergences

    truth_names, data_keys = _names(simulate)
    unknown = [n for n in truth_names if n not in compiled.output_shapes]
    bad_data = [n for n in data_keys if n not in data_names]
    if unknown or bad_data:
        raise ValueError(
            f"simulate returns truth {unknown} not reported by the model (reported: "
            f"{list(compiled.output_shapes)}) or data {bad_data} not declared (declared: {list(data_names)})."
        )
    batched = jax.jit(jax.vmap(study))
    keys = jax.random.split(jax.random.key(seed), num_simulations)
    results = [batched(keys[i : i + batch_size]) for i in range(0, num_simulations, batch_size)]
    ranks = {k: np.concatenate([np.asarray(r[0][k]) for r in results]) for k in truth_names}
    divergences = np.concatenate([np.asarray(r[1]) for r in results])
    return SBCResult(ranks, num_draws, divergences)


def _names(simulate: Simulator) -> tuple[list[str], list[str]]:
    truth, data = jax.eval_shape(simulate, jax.random.key(0))
    return list(truth), list(data)
