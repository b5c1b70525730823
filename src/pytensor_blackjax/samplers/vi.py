"""Variational approximations: Pathfinder, mean-field and full-rank Gaussian VI.

Each is fitted during warmup; every sampling step then draws ``chains`` independent points from the
fitted approximation, in the same DataTree layout as MCMC. These are approximations: results say so
in ``attrs["approximate"]``, and their errors do not shrink with more draws.

References:
    Zhang, Carpenter, Gelman & Vehtari (2022), Pathfinder: parallel quasi-Newton variational
    inference. JMLR 23.
    Kucukelbir, Tran, Ranganath, Gelman & Blei (2017), Automatic differentiation variational
    inference. JMLR 18.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.samplers._base import Kernel, RunSize, rename_info
from pytensor_blackjax.samplers._options import check_int, check_positive
from pytensor_blackjax.samplers._start import DEFAULT_RADIUS, check_start
from pytensor_blackjax.samplers._tuned import one_call_kernel, one_call_schedule

__all__ = ["FullRankVI", "MeanFieldVI", "Pathfinder"]


class ApproxDraws(NamedTuple):
    fit: Any  # the fitted approximation (a Blackjax VI state)
    draws: jax.Array  # the current draws, (chains, dims)


def _check_tune(owner: str, tune: int, minimum: int) -> None:
    if tune < minimum:
        raise ValueError(
            f"{owner} is fitted during warmup: tune={tune} is too short; give tune >= {minimum} "
            "(the default 1000 is a good start)."
        )


def _draw_kernel(sample_fn, logdensity_fn, chains: int):
    """``step`` and ``position`` for samplers that draw ``chains`` points per step from a fit."""

    def step(key, state, params):
        del params
        x = sample_fn(key, state.fit, chains)
        return state._replace(draws=x), {"lp": jax.vmap(logdensity_fn)(x)}

    return step, lambda state: state.draws


@dataclass(frozen=True)
class Pathfinder:
    """Pathfinder: Gaussian approximations along an L-BFGS path; the one with the best ELBO is kept.

    One L-BFGS run per chain, each from that chain's start point; the approximation with the highest
    ELBO over all of them is used for every draw. Fast, and good for initialising or for a quick
    look; it underestimates the spread of skewed or heavy-tailed posteriors.

    Args:
        maxiter: L-BFGS iterations at most.
        num_elbo_draws: draws used to estimate the ELBO of each candidate on the path.
        init_radius: the chains' start points are uniform in (-init_radius, init_radius) in
            unconstrained space.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.Pathfinder(maxiter=200)
    """

    maxiter: int = 100
    num_elbo_draws: int = 200
    init_radius: float = DEFAULT_RADIUS
    name: ClassVar[str] = "pathfinder"
    ensemble = True
    approximate = True
    size_fields = ("chains",)

    def __post_init__(self):
        check_int("Pathfinder", "maxiter", self.maxiter, 1)
        check_int("Pathfinder", "num_elbo_draws", self.num_elbo_draws, 1)
        check_start("Pathfinder", self.init_radius)

    def schedule(self, tune: int) -> np.ndarray:
        return one_call_schedule(tune)

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        _check_tune("Pathfinder", tune, 1)

    def build(self, logdensity_fn, num_dims: int, size: RunSize) -> Kernel:
        from blackjax.vi import pathfinder

        chains = size.chains

        def fit_one(key, start):
            state, _ = pathfinder.approximate(
                key, logdensity_fn, start, self.num_elbo_draws, maxiter=self.maxiter
            )
            return state

        def init(key, positions):
            del key
            shapes = jax.eval_shape(fit_one, jax.random.key(0), positions[0])
            return ApproxDraws(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes), positions)

        def tune(key, state):
            fits = jax.vmap(fit_one)(jax.random.split(key, chains), state.draws)
            elbo = jnp.where(jnp.isfinite(fits.elbo), fits.elbo, -jnp.inf)
            best = jax.tree.map(lambda x: x[jnp.argmax(elbo)], fits)
            return ApproxDraws(best, state.draws), {"elbo": best.elbo}

        def sample(key, fit, n):
            return pathfinder.sample(key, fit, n)[0]

        step, position = _draw_kernel(sample, logdensity_fn, chains)
        return one_call_kernel(init=init, tune=tune, step=step, position=position)


class _Optimised(NamedTuple):
    fit: Any  # Blackjax MFVIState / FRVIState
    mean_fit: Any  # running average of (mu, scale parameters) over the second half of warmup
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count


def _gaussian_vi(module, learning_rate: float, num_elbo_draws: int, logdensity_fn, chains):
    import optax

    optimizer = optax.adam(learning_rate)

    def params_of(fit):
        return fit[0], fit[1]

    def warmup_init(key, positions):
        del key
        fit = module.init(positions[0], optimizer)
        return ApproxDraws(_Optimised(fit, params_of(fit), jnp.asarray(0.0)), positions)

    def warmup_step(key, state, row):
        opt = state.fit
        fit, info = module.step(key, opt.fit, logdensity_fn, optimizer, num_elbo_draws)
        # Polyak averaging over the second half of warmup removes most of the optimiser's noise
        count = opt.count + row[0]
        weight = jnp.where(row[0] == 1, 1.0 / jnp.maximum(count, 1.0), 1.0)
        mean_fit = jax.tree.map(lambda m, p: m + weight * (p - m), opt.mean_fit, params_of(fit))
        return state._replace(fit=_Optimised(fit, mean_fit, count)), rename_info(info)

    def warmup_finish(state):
        opt = state.fit
        fit = opt.fit._replace(**dict(zip(opt.fit._fields[:2], opt.mean_fit, strict=True)))
        return ApproxDraws(fit, state.draws), jnp.zeros(())

    step, position = _draw_kernel(lambda key, fit, n: module.sample(key, fit, n), logdensity_fn, chains)
    return Kernel(warmup_init, warmup_step, warmup_finish, step, position)


def _averaging_schedule(tune: int) -> np.ndarray:
    rows = np.zeros((tune, 1), dtype=np.int32)
    rows[tune // 2 :, 0] = 1
    return rows


@dataclass(frozen=True)
class _GaussianVI:
    """Gaussian VI fitted by stochastic ELBO ascent with Adam during warmup; the subclass's ``name`` is
    the family (the Blackjax module ``blackjax.vi.<name>``).

    Args:
        learning_rate: Adam learning rate.
        num_elbo_draws: draws per ELBO gradient estimate.
        init_radius: the fit starts from the first chain's point, uniform in (-init_radius,
            init_radius) in unconstrained space.
    """

    name: ClassVar[str]
    learning_rate: float = 0.02
    num_elbo_draws: int = 10
    init_radius: float = DEFAULT_RADIUS
    ensemble = True
    approximate = True
    size_fields = ("chains",)

    def __post_init__(self):
        owner = type(self).__name__
        check_positive(owner, "learning_rate", self.learning_rate)
        check_int(owner, "num_elbo_draws", self.num_elbo_draws, 1)
        check_start(owner, self.init_radius)

    def schedule(self, tune: int) -> np.ndarray:
        return _averaging_schedule(tune)

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        _check_tune(type(self).__name__, tune, 100)

    def build(self, logdensity_fn, num_dims: int, size: RunSize) -> Kernel:
        module = importlib.import_module(f"blackjax.vi.{self.name}")
        return _gaussian_vi(module, self.learning_rate, self.num_elbo_draws, logdensity_fn, size.chains)


@dataclass(frozen=True)
class MeanFieldVI(_GaussianVI):
    """Mean-field (diagonal) Gaussian VI fitted by stochastic ELBO ascent with Adam during warmup.

    Ignores correlations and underestimates variances when the posterior is correlated; use
    `FullRankVI` for moderate dimensions, or MCMC when accuracy matters. Its options are
    `_GaussianVI`'s.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.MeanFieldVI(learning_rate=0.02)
    """

    name: ClassVar[str] = "meanfield_vi"


@dataclass(frozen=True)
class FullRankVI(_GaussianVI):
    """Full-rank Gaussian VI (Cholesky-parameterised covariance) fitted with Adam during warmup.

    Captures linear correlations; costs O(dims**2) parameters, so it suits up to a few hundred
    unconstrained dimensions. Its options are `_GaussianVI`'s.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.FullRankVI(learning_rate=0.01)
    """

    name: ClassVar[str] = "fullrank_vi"
