"""Simulation-based calibration (Talts et al. 2018): are the posterior draws calibrated on average?

Draw parameters from the prior, data from the model given them, fit the posterior to those data, and
rank each true value among the (thinned) posterior draws. When the sampler and the model agree, each
rank is uniform on ``0..L``.

Every fit is a call of ``pbj.sample`` on one compiled model with the simulated data passed as
``data=``: the same driver, warmup, starting points and programs as any other run, compiled once
(data of the same shape reuse the programs). The study is three steps, each a plain function:
`simulate_all` (truths, data and a fit seed per simulation), `fit_all` (the posterior of each
simulated data set, one ``sample`` call per simulation, a few at a time in threads) and `rank_all`.

References:
    Talts, Betancourt, Simpson, Vehtari, Gelman (2018), Validating Bayesian inference algorithms
    with simulation-based calibration. arXiv:1804.06788.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from pytensor_blackjax._sample import sample
from pytensor_blackjax._validate import check_count
from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.results import SamplingWarning
from pytensor_blackjax.run._until import Until
from pytensor_blackjax.samplers import NUTS, Sampler

__all__ = [
    "FitSettings",
    "Fits",
    "SBCResult",
    "Simulations",
    "fit_all",
    "rank_all",
    "simulate_all",
    "simulation_based_calibration",
]

Simulator = Callable[[jax.Array], tuple[Mapping[str, jax.Array], Mapping[str, jax.Array]]]


@dataclass(frozen=True)
class SBCResult:
    """Ranks of the true values, per quantity, shaped ``(simulations, *shape)``, in ``0..num_draws``.

    Attributes:
        ranks: name -> ranks.
        num_draws: posterior draws each rank is taken among (L).
        divergences: divergent transitions per simulation (after warmup).
        sizes: draws per chain of each fit (they differ between fits sampled with ``until=``).
    """

    ranks: Mapping[str, np.ndarray]
    num_draws: int
    divergences: np.ndarray
    sizes: np.ndarray | None = None

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


@dataclass(frozen=True)
class Simulations:
    """The simulated side of a study, every array with the simulations first.

    Attributes:
        truth: reported name -> true values ``(simulations, *shape)``.
        data: data name -> simulated data ``(simulations, *shape)``.
        seeds: the ``pbj.sample`` seed of each simulation's fit.
    """

    truth: Mapping[str, np.ndarray]
    data: Mapping[str, np.ndarray]
    seeds: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.seeds)

    def data_of(self, index: int) -> dict[str, np.ndarray]:
        """The data of simulation ``index``, as ``sample(..., data=)`` takes them."""
        return {name: values[index] for name, values in self.data.items()}


@dataclass(frozen=True)
class FitSettings:
    """How each simulated data set is fitted: the ``pbj.sample`` arguments shared by every fit.

    One chain per fit, as SBC wants ``L`` near-independent draws of one posterior. The fixed cost of a
    ``sample`` call matters when each fit takes milliseconds, so: no progress bar, the whole warmup and
    the whole sampling phase each one chunk (one program call), and the "vectorized" layout, one program
    call per phase, rather than a worker thread per chain (a 2-parameter model, 400 + 396 NUTS steps,
    2 busy cores: 37 ms per fit against 73 ms threaded; 22 ms once library versions were read once
    per process). What remains is mostly the DataTree that ``sample`` returns (about 15 ms).

    With ``until``, each fit samples ``until_chains`` chains until the targets are met (``pbj.sample(...,
    until=)``, chunks of ``until_chunk`` draws) and the truth is ranked among ``draws`` draws evenly
    spaced over its chains: the calibration of until-runs, whose length depends on the draws.

    Attributes:
        draws: kept posterior draws per fit (L).
        tune: warmup steps per fit.
        thin: keep every ``thin``-th step.
        sampler: the sampler settings.
        until: sample each fit until these targets are met instead of for ``draws`` draws.
        until_chains: chains per fit with ``until``.
        until_chunk: draws per chunk with ``until`` (checks happen at chunk boundaries).
    """

    draws: int
    tune: int
    thin: int
    sampler: Sampler
    until: Until | None = None
    until_chains: int = 2
    until_chunk: int = 50

    def sample_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``pbj.sample`` (without ``data`` and ``seed``)."""
        if self.until is not None:
            return {
                "until": self.until,
                "tune": self.tune,
                "thin": self.thin,
                "chains": self.until_chains,
                "sampler": self.sampler,
                "chain_method": "vectorized",
                "chunk_size": self.until_chunk,
                "progressbar": False,
            }
        return {
            "draws": self.draws,
            "tune": self.tune,
            "thin": self.thin,
            "chains": 1,
            "sampler": self.sampler,
            "chain_method": "vectorized",
            "chunk_size": max(self.draws, self.tune),
            "progressbar": False,
        }


@dataclass(frozen=True)
class Fits:
    """The posteriors of a study: reported name -> draws ``(simulations, L, *shape)``, divergences, and
    the draws per chain each fit made."""

    draws: Mapping[str, np.ndarray]
    divergences: np.ndarray
    sizes: np.ndarray | None = None


def simulate_all(
    compiled: CompiledModel, simulate: Simulator, num_simulations: int, seed: int, *, batch_size: int = 64
) -> Simulations:
    """Draw every simulation's truth and data, and its fit seed, deterministically from ``seed``.

    Simulation ``i`` draws from the ``i``-th key of ``jax.random.split(jax.random.key(seed), n)``; fit
    seeds come from ``numpy.random.SeedSequence(seed)``. ``simulate`` runs vmapped, ``batch_size``
    simulations per call.

    Raises:
        ValueError: ``simulate`` returns a name that is not reported or not declared data.
    """
    truth_names, data_names = _names(simulate)
    unknown = [n for n in truth_names if n not in compiled.output_shapes]
    bad_data = [n for n in data_names if n not in compiled.data_names]
    if unknown or bad_data:
        raise ValueError(
            f"simulate returns truth {unknown} not reported by the model (reported: "
            f"{list(compiled.output_shapes)}) or data {bad_data} not declared (declared: "
            f"{list(compiled.data_names)})."
        )
    keys = jax.random.split(jax.random.key(seed), num_simulations)
    batched = jax.jit(jax.vmap(simulate))
    parts = [jax.device_get(batched(keys[i : i + batch_size])) for i in range(0, num_simulations, batch_size)]
    truth = {k: np.concatenate([np.asarray(p[0][k]) for p in parts]) for k in truth_names}
    data = {k: np.concatenate([np.asarray(p[1][k]) for p in parts]) for k in data_names}
    seeds = np.random.SeedSequence(seed).generate_state(num_simulations, dtype=np.uint64)
    return Simulations(truth, data, tuple(int(s) for s in seeds))


def fit_all(
    compiled: CompiledModel, simulations: Simulations, settings: FitSettings, *, workers: int | None = None
) -> Fits:
    """Fit every simulated data set with ``pbj.sample`` (one compiled model, data swapped in).

    The first fit runs alone (it compiles the programs, or loads them from the program store); the
    others reuse them, ``workers`` at a time (default: one per available core) - JAX releases the GIL
    while a fit samples. Every fit depends only on its data and seed, so the result does not depend on
    ``workers``. The post-sampling `SamplingWarning` of each fit is silenced (process-wide, for the
    duration of the call): one chain of ``L`` thinned draws is what SBC asks for, and the study judges
    the fits by their ranks (divergences are returned).
    """
    names = list(simulations.truth)
    kwargs = settings.sample_kwargs()

    def fit(i: int) -> tuple[dict[str, np.ndarray], int, int]:
        tree = sample(compiled, data=simulations.data_of(i), seed=simulations.seeds[i], **kwargs)
        posterior, stats = tree["posterior"], tree["sample_stats"]
        size = posterior.sizes["draw"]
        if settings.until is None:
            draws = {k: np.asarray(posterior[k].values)[0] for k in names}  # the one chain: (L, *shape)
        else:  # L draws evenly spaced over the chains, one after the other
            pick = np.linspace(0, posterior.sizes["chain"] * size - 1, settings.draws).round().astype(int)
            draws = {
                k: np.asarray(posterior[k].values).reshape(-1, *posterior[k].shape[2:])[pick] for k in names
            }
        divergent = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats.data_vars else 0
        return draws, divergent, size

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        fitted = [fit(0)] if len(simulations) else []
        pool = ThreadPoolExecutor(max_workers=workers or _cores(), thread_name_prefix="pbj-sbc")
        try:
            fitted += pool.map(fit, range(1, len(simulations)))
        finally:
            pool.shutdown(cancel_futures=True)  # Ctrl-C: finish the running fits, start no more
    draws = {k: np.stack([f[0][k] for f in fitted]) for k in names}
    return Fits(draws, np.asarray([f[1] for f in fitted], dtype=int), np.asarray([f[2] for f in fitted]))


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def rank_all(simulations: Simulations, fits: Fits) -> dict[str, np.ndarray]:
    """Rank of each truth among its fit's draws: ``(simulations, *shape)`` in ``0..L``."""
    return {k: np.sum(fits.draws[k] < truth[:, None], axis=1) for k, truth in simulations.truth.items()}


def simulation_based_calibration(
    compiled: CompiledModel,
    simulate: Simulator,
    *,
    num_simulations: int = 256,
    num_draws: int = 99,
    thin: int = 4,
    tune: int = 400,
    sampler: Sampler | None = None,
    seed: int = 0,
    batch_size: int = 64,
    until: Until | None = None,
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
        thin: keep every ``thin``-th sampler step, so that kept draws are close to independent.
        tune: warmup steps per fit.
        sampler: the sampler settings (default ``NUTS()``).
        seed: the seed of the whole study.
        batch_size: simulations drawn together in one vmapped call of ``simulate``.
        until: sample each fit (2 chains) until these targets are met, and rank each truth among
            ``num_draws`` draws evenly spaced over them (see `FitSettings`).

    Returns:
        An `SBCResult`.

    Raises:
        ValueError: ``simulate`` returns a name that is not reported or not declared data; a count
            below 1.

    Example:
        >>> # see tests/test_sbc.py for two complete studies
        >>> from pytensor_blackjax.validate import simulation_based_calibration  # doctest: +SKIP
    """
    check_count("num_simulations", num_simulations)
    check_count("batch_size", batch_size)
    simulations = simulate_all(compiled, simulate, num_simulations, seed, batch_size=batch_size)
    fits = fit_all(compiled, simulations, FitSettings(num_draws, tune, thin, sampler or NUTS(), until=until))
    return SBCResult(rank_all(simulations, fits), num_draws, fits.divergences, fits.sizes)


def _names(simulate: Simulator) -> tuple[list[str], list[str]]:
    truth, data = jax.eval_shape(simulate, jax.random.key(0))
    return list(truth), list(data)
