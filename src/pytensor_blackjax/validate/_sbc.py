"""Simulation-based calibration (Talts et al. 2018): are the posterior draws calibrated on average?

Draw parameters from the prior, data from the model given them, fit the posterior to those data, and
rank each true value among the (thinned) posterior draws. When the sampler and the model agree, each
rank is uniform on ``0..L``.

Every fit is a call of ``pbj.sample`` on one compiled model with the simulated data passed as
``data=``: the same driver, warmup, starting points and programs as any other run, compiled once
(data of the same shape reuse the programs). The study is three steps, each a plain function:
`simulate_all` (truths, data and a fit seed per simulation), `fit_all` (the posterior of each
simulated data set: ``pbj.sample_many``, one ``sample`` call per simulation) and `rank_all`. The
verdict, `SBCResult.check`, compares each scalar's rank ECDF with a simultaneous band (Säilynoja et
al. 2022, `validate._ecdf_band`), Bonferroni over the scalars.

References:
    Talts, Betancourt, Simpson, Vehtari, Gelman (2018), Validating Bayesian inference algorithms
    with simulation-based calibration. arXiv:1804.06788.
    Säilynoja, Bürkner, Vehtari (2022), Graphical test for discrete uniformity and its applications
    in goodness-of-fit evaluation and multiple sample comparison. Statistics and Computing 32, 32.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from pytensor_blackjax._sample import sample
from pytensor_blackjax._validate import check_count
from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.many._fit import fit_seed
from pytensor_blackjax.results import SamplingWarning
from pytensor_blackjax.run._layouts import available_cores
from pytensor_blackjax.run._until import Until
from pytensor_blackjax.samplers import NUTS, Sampler
from pytensor_blackjax.validate._ecdf_band import ECDFBand, ecdf_counts, uniformity_test

__all__ = [
    "FitSettings",
    "Fits",
    "SBCResult",
    "SBCVerdict",
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

    @property
    def num_simulations(self) -> int:
        return len(self.divergences)

    def check(self, alpha: float = 0.01, *, max_divergent_share: float = 0.05, seed: int = 0) -> SBCVerdict:
        """Judge the ranks: each scalar's ECDF against a simultaneous band, Bonferroni over the scalars.

        Args:
            alpha: family-wise level: a calibrated sampler fails with probability at most ``alpha``.
                Each of the ``m`` scalar quantities (every component of every ranked name) is tested
                at ``alpha / m`` (`UniformityTest.pvalue`).
            max_divergent_share: the study also fails when more of its fits than this diverged.
            seed: seed of the simulated null distribution.

        Returns:
            An `SBCVerdict`.
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha={alpha!r} is not valid: give a level in (0, 1), e.g. alpha=0.01.")
        scalars = sum(int(np.prod(r.shape[1:])) for r in self.ranks.values())
        threshold = alpha / max(scalars, 1)
        test = uniformity_test(self.num_simulations, self.num_draws, alpha=threshold, seed=seed)
        pvalues = {name: test.pvalue(ranks) for name, ranks in self.ranks.items()}
        counts = {name: ecdf_counts(ranks, self.num_draws) for name, ranks in self.ranks.items()}
        share = float(np.mean(self.divergences > 0)) if self.num_simulations else 0.0
        return SBCVerdict(
            alpha, threshold, pvalues, counts, test.band(1.0 - threshold), share, max_divergent_share
        )


@dataclass(frozen=True)
class SBCVerdict:
    """The judgement of an SBC study.

    Attributes:
        alpha: the family-wise level.
        threshold: the per-scalar level, ``alpha`` over the number of scalars.
        pvalues: name -> p-value of each component's ranks (shape of the quantity).
        counts: name -> ECDF counts ``(L, *shape)``: ranks below ``k``, ``k = 1..L`` (for plots).
        band: the simultaneous band at level ``1 - threshold`` (counts; the ECDF of a component is
            inside it exactly when its p-value is above ``threshold``, up to the null's resolution).
        divergent_share: share of fits with a divergent transition.
        max_divergent_share: the largest share that passes.
    """

    alpha: float
    threshold: float
    pvalues: Mapping[str, np.ndarray]
    counts: Mapping[str, np.ndarray] = field(repr=False)
    band: ECDFBand = field(repr=False)
    divergent_share: float
    max_divergent_share: float

    @property
    def passed(self) -> bool:
        """No scalar's ranks rejected and few enough divergent fits."""
        return not self.failures()

    def failures(self) -> list[str]:
        """One line per rejected scalar (and for too many divergent fits); empty when it passed."""
        lines = []
        for name, p in self.pvalues.items():
            for index in zip(*np.nonzero(np.atleast_1d(p) <= self.threshold), strict=True):
                label = name if np.ndim(p) == 0 else f"{name}[{', '.join(map(str, index))}]"
                lines.append(
                    f"{label}: ranks not uniform, p = {np.atleast_1d(p)[index]:.2g} <= {self.threshold:.2g}"
                )
        if self.divergent_share > self.max_divergent_share:
            lines.append(
                f"{self.divergent_share:.1%} of the fits diverged (more than {self.max_divergent_share:.0%})"
            )
        return lines

    def smallest_pvalue(self) -> float:
        return min(float(np.min(p)) for p in self.pvalues.values())


@dataclass(frozen=True)
class Simulations:
    """The simulated side of a study, every array with the simulations first.

    Attributes:
        truth: reported name -> true values ``(simulations, *shape)``.
        data: data name -> simulated data ``(simulations, *shape)``.
        seed: the study's seed; fit ``i`` samples with ``pbj.many.fit_seed(seed, i)``, as
            ``sample_many(..., seed=seed)`` does.
    """

    truth: Mapping[str, np.ndarray]
    data: Mapping[str, np.ndarray]
    seed: int

    def __len__(self) -> int:
        arrays = [*self.truth.values(), *self.data.values()]
        return len(arrays[0]) if arrays else 0

    @property
    def seeds(self) -> tuple[int, ...]:
        """The ``pbj.sample`` seed of each simulation's fit."""
        return tuple(fit_seed(self.seed, i) for i in range(len(self)))

    def datasets(self) -> list[dict[str, np.ndarray]]:
        """Every simulation's data, as ``sample_many`` takes them."""
        return [self.data_of(i) for i in range(len(self))]

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

    Simulation ``i`` draws from the ``i``-th key of ``jax.random.split(jax.random.key(seed), n)``; its
    fit's seed is ``fit_seed(seed, i)``. ``simulate`` runs vmapped, ``batch_size`` simulations per call.

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
    return Simulations(truth, data, seed)


def fit_all(
    compiled: CompiledModel, simulations: Simulations, settings: FitSettings, *, workers: int | None = None
) -> Fits:
    """Fit every simulated data set with ``pbj.sample`` (one compiled model, data swapped in).

    Fits of a fixed length run through ``pbj.sample_many`` (each fit one ``sample`` call; up to
    ``workers`` at a time, default one per core, in helper processes once that pays off). Fits with
    ``until`` run in this process, ``workers`` at a time in threads, the first alone (it compiles).
    Fit ``i`` samples with seed ``simulations.seeds[i]`` either way, so the result depends on neither
    ``workers`` nor the route. The post-sampling `SamplingWarning` of each fit is silenced (process-wide,
    for the duration of the call): one chain of ``L`` thinned draws is what SBC asks for, and the study
    judges the fits by their ranks (divergences are returned).

    Raises:
        RuntimeError: a fit failed (SBC needs every one); the message names it and its error.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        if settings.until is None:
            return _fit_many(compiled, simulations, settings, workers)
        return _fit_until(compiled, simulations, settings, workers)


def _fit_many(
    compiled: CompiledModel, simulations: Simulations, settings: FitSettings, workers: int | None
) -> Fits:
    from pytensor_blackjax.many import sample_many

    kwargs = settings.sample_kwargs()
    del kwargs["progressbar"]
    tree = sample_many(
        compiled,
        simulations.datasets(),
        seed=simulations.seed,
        progressbar=False,
        fits_at_once=workers,
        **kwargs,
    )
    status = np.asarray(tree["fits"]["status"].values)
    failed = np.flatnonzero(status != "ok")
    if failed.size:
        raise RuntimeError(
            f"{failed.size} of {len(status)} SBC fits failed, e.g. fit {failed[0]}: {status[failed[0]]}; "
            "every simulated data set must be fitted (check the simulator's data and the sampler settings)."
        )
    posterior, stats = tree["posterior"], tree["sample_stats"]
    draws = {k: np.asarray(posterior[k].values)[:, 0] for k in simulations.truth}  # (fit, L, *shape)
    diverging = stats["diverging"] if "diverging" in stats.data_vars else None
    divergences = (
        np.zeros(len(simulations), dtype=int)
        if diverging is None
        else np.asarray(diverging.values).reshape(len(simulations), -1).sum(axis=1).astype(int)
    )
    sizes = np.full(len(simulations), posterior.sizes["draw"])
    return Fits(draws, divergences, sizes)


def _fit_until(
    compiled: CompiledModel, simulations: Simulations, settings: FitSettings, workers: int | None
) -> Fits:
    names = list(simulations.truth)
    kwargs = settings.sample_kwargs()
    seeds = simulations.seeds

    def fit(i: int) -> tuple[dict[str, np.ndarray], int, int]:
        tree = sample(compiled, data=simulations.data_of(i), seed=seeds[i], **kwargs)
        posterior, stats = tree["posterior"], tree["sample_stats"]
        size = posterior.sizes["draw"]
        # L draws evenly spaced over the chains, one after the other
        pick = np.linspace(0, posterior.sizes["chain"] * size - 1, settings.draws).round().astype(int)
        draws = {k: np.asarray(posterior[k].values).reshape(-1, *posterior[k].shape[2:])[pick] for k in names}
        divergent = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats.data_vars else 0
        return draws, divergent, size

    fitted = [fit(0)] if len(simulations) else []
    pool = ThreadPoolExecutor(max_workers=workers or available_cores(), thread_name_prefix="pbj-sbc")
    try:
        fitted += pool.map(fit, range(1, len(simulations)))
    finally:
        pool.shutdown(cancel_futures=True)  # Ctrl-C: finish the running fits, start no more
    draws = {k: np.stack([f[0][k] for f in fitted]) for k in names}
    return Fits(draws, np.asarray([f[1] for f in fitted], dtype=int), np.asarray([f[2] for f in fitted]))


def rank_all(simulations: Simulations, fits: Fits) -> dict[str, np.ndarray]:
    """Rank of each truth among its fit's draws: ``(simulations, *shape)`` in ``0..L``."""
    return {k: np.sum(fits.draws[k] < truth[:, None], axis=1) for k, truth in simulations.truth.items()}


def simulation_based_calibration(
    compiled: CompiledModel,
    simulate: Simulator,
    *,
    num_simulations: int = 1000,
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
        An `SBCResult`; its ``check()`` gives the verdict (`SBCVerdict`).

    Raises:
        ValueError: ``simulate`` returns a name that is not reported or not declared data; a count
            below 1.
        RuntimeError: a fit failed.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> from pytensor_blackjax.examples import sbc
        >>> from pytensor_blackjax.validate import simulation_based_calibration
        >>> case = sbc.conjugate_normal()
        >>> result = simulation_based_calibration(
        ...     pbj.compile(case.build()), case.simulate, num_simulations=1000
        ... )  # doctest: +SKIP
        >>> result.check().passed  # doctest: +SKIP
        True
    """
    check_count("num_simulations", num_simulations)
    check_count("batch_size", batch_size)
    simulations = simulate_all(compiled, simulate, num_simulations, seed, batch_size=batch_size)
    fits = fit_all(compiled, simulations, FitSettings(num_draws, tune, thin, sampler or NUTS(), until=until))
    return SBCResult(rank_all(simulations, fits), num_draws, fits.divergences, fits.sizes)


def _names(simulate: Simulator) -> tuple[list[str], list[str]]:
    truth, data = jax.eval_shape(simulate, jax.random.key(0))
    return list(truth), list(data)
