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

        def paths(key, starts):
            return _best_path(key, logdensity_fn, starts, self.num_elbo_draws, self.maxiter)

        def init(key, positions):
            del key
            shapes = jax.eval_shape(paths, jax.random.key(0), positions)
            return ApproxDraws(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes), positions)

        def tune(key, state):
            best = paths(key, state.draws)
            return ApproxDraws(best, state.draws), {"elbo": best.elbo}

        def sample(key, fit, n):
            return pathfinder.sample(key, fit, n)[0]

        step, position = _draw_kernel(sample, logdensity_fn, chains)
        return one_call_kernel(init=init, tune=tune, step=step, position=position)


def _best_path(key, logdensity_fn, starts, num_elbo_draws: int, maxiter: int):
    """One Pathfinder path from each row of ``starts``: the fitted Gaussian (Blackjax's
    ``PathfinderState``) of the one with the best finite ELBO."""
    from blackjax.vi import pathfinder

    def one(k, start):
        return pathfinder.approximate(k, logdensity_fn, start, num_elbo_draws, maxiter=maxiter)[0]

    paths = jax.vmap(one)(jax.random.split(key, starts.shape[0]), starts)
    elbo = jnp.where(jnp.isfinite(paths.elbo), paths.elbo, -jnp.inf)
    return jax.tree.map(lambda x: x[jnp.argmax(elbo)], paths)


PATHFINDER_START_ITER = 200  # L-BFGS iterations of the Pathfinder run that starts Gaussian VI
PATHFINDER_START_ELBO_DRAWS = 100  # draws of each of its paths' ELBO estimates


class _Optimised(NamedTuple):
    fit: Any  # Blackjax MFVIState / FRVIState, over coordinates z with x = shift + chol @ z
    mean_fit: Any  # running average of (mu, scale parameters) over the second half of warmup
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    shift: jax.Array
    chol: jax.Array
    mean_loss: jax.Array  # running average of the loss KL(q || p) + const in x, over the same steps


def _pathfinder_start(key, logdensity_fn, positions, *, dense: bool):
    """Pathfinder's Gaussian with the best ELBO over one path from each chain's start (as `Pathfinder`
    keeps): its mean and the Cholesky factor of its covariance (``dense``) or its sds on a diagonal
    (mean-field: a dense factor would make the fitted family correlated).

    One path from the first chain's start alone could end in a local optimum (low_dim_gauss_mix, seed
    1: a component's mean 9.8 sd off) or where arma's prediction errors explode (means 67-84 sd off).
    """
    from blackjax.optimizers.lbfgs import lbfgs_inverse_hessian_formula_1

    path = _best_path(key, logdensity_fn, positions, PATHFINDER_START_ELBO_DRAWS, PATHFINDER_START_ITER)
    cov = lbfgs_inverse_hessian_formula_1(path.alpha, path.beta, path.gamma)
    ok = jnp.all(jnp.isfinite(path.position)) & jnp.all(jnp.isfinite(cov))
    var = jnp.where(ok, jnp.clip(jnp.diag(cov), 1e-12, 1e6), 1.0)
    shift = jnp.where(ok, path.position, positions[0])
    diagonal = jnp.diag(jnp.sqrt(var))
    if not dense:
        return shift, diagonal
    chol = jnp.linalg.cholesky(cov + 1e-10 * jnp.diag(var))
    # the L-BFGS estimate can be indefinite: then only its diagonal
    return shift, jnp.where(ok & jnp.all(jnp.isfinite(chol)), chol, diagonal)


def _gaussian_vi(
    module, learning_rate: float, num_elbo_draws: int, logdensity_fn, size: RunSize, *, dense: bool
):
    """Gaussian VI fitted twice at once from Pathfinder's mean: once over x itself and once over z,
    coordinates whitened by Pathfinder's covariance (x = mean + factor @ z: its Cholesky factor if
    ``dense``, else its sds); the fit with the smaller loss over the second half of warmup is kept.

    Blackjax starts a fit at mean 0 and sd 1 (mean-field: 0.14) whatever the start point, and Adam's
    steps are about ``learning_rate`` in every parameter. In x, with a posterior 10-30 units away and
    sds of 0.01 (mesquite, arK), 1000 steps never arrived (means 10-30 sd off) and the scale
    parameters wandered by more than the sds (sds up to 50x too wide); in z the steps are in units of
    the posterior's own scales. But where Pathfinder's covariance misleads (non-centered eight
    schools: the fit in z ended with tau's sd 4x too wide, mu's 3x too narrow, at 1000 and 4000 steps
    alike) the fit in x, from Pathfinder's mean, is the right one. The losses are compared in x
    (the fit in z's loss less log |det factor|).
    """
    import optax

    optimizer = optax.adam(learning_rate)

    def params_of(fit):
        return fit[0], fit[1]

    def best(opts):
        """The index of the fit with the smaller mean loss (a NaN loss never wins)."""
        return jnp.argmin(jnp.nan_to_num(opts.mean_loss, nan=jnp.inf))

    def init_one(fit, shift, chol):
        zero = jnp.asarray(0.0)
        return _Optimised(fit, params_of(fit), zero, shift, chol, zero)

    def warmup_init(key, positions):
        fit = module.init(positions[0], optimizer)
        shift, chol = _pathfinder_start(key, logdensity_fn, positions, dense=dense)
        eye = jnp.eye(shift.shape[0], dtype=chol.dtype)
        starts = [init_one(fit, shift, c) for c in (chol, eye)]
        return ApproxDraws(jax.tree.map(lambda *a: jnp.stack(a), *starts), positions)

    def step_one(key, opt, row):
        fit, info = module.step(
            key, opt.fit, lambda z: logdensity_fn(opt.shift + opt.chol @ z), optimizer, num_elbo_draws
        )
        # Polyak averaging over the second half of warmup removes most of the optimiser's noise
        count = opt.count + row[0]
        weight = jnp.where(row[0] == 1, 1.0 / jnp.maximum(count, 1.0), 1.0)
        mean_fit = jax.tree.map(lambda m, p: m + weight * (p - m), opt.mean_fit, params_of(fit))
        loss = info.elbo - jnp.sum(jnp.log(jnp.abs(jnp.diag(opt.chol))))  # Blackjax's "elbo" is the loss
        mean_loss = opt.mean_loss + weight * (jnp.nan_to_num(loss, nan=jnp.inf) - opt.mean_loss)
        return opt._replace(fit=fit, mean_fit=mean_fit, count=count, mean_loss=mean_loss), info

    def warmup_step(key, state, row):
        keys = jax.random.split(key, 2)
        opts, info = jax.vmap(step_one, in_axes=(0, 0, None))(keys, state.fit, row)
        i = best(opts)
        return state._replace(fit=opts), rename_info(jax.tree.map(lambda a: a[i], info))

    def warmup_finish(state):
        i = best(state.fit)
        opt = jax.tree.map(lambda a: a[i], state.fit)
        fit = opt.fit._replace(**dict(zip(opt.fit._fields[:2], opt.mean_fit, strict=True)))
        return ApproxDraws(opt._replace(fit=fit), state.draws), jnp.zeros(())

    def sample(key, opt, n):
        return opt.shift + module.sample(key, opt.fit, n) @ opt.chol.T

    step, position = _draw_kernel(sample, logdensity_fn, size.chains)
    return Kernel(warmup_init, warmup_step, warmup_finish, step, position)


def _averaging_schedule(tune: int) -> np.ndarray:
    rows = np.zeros((tune, 1), dtype=np.int32)
    rows[tune // 2 :, 0] = 1
    return rows


@dataclass(frozen=True)
class _GaussianVI:
    """Gaussian VI fitted by stochastic ELBO ascent with Adam during warmup; the subclass's ``name`` is
    the family (the Blackjax module ``blackjax.vi.<name>``), its ``dense`` whether the family is
    correlated (then the fit in whitened coordinates starts from Pathfinder's full covariance).

    Args:
        learning_rate: Adam learning rate.
        num_elbo_draws: draws per ELBO gradient estimate.
        init_radius: the Pathfinder paths that start the fit start from the chains' points, uniform
            in (-init_radius, init_radius) in unconstrained space.
    """

    name: ClassVar[str]
    dense: ClassVar[bool]
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
        return _gaussian_vi(
            module, self.learning_rate, self.num_elbo_draws, logdensity_fn, size, dense=self.dense
        )


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
    dense: ClassVar[bool] = False


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
    dense: ClassVar[bool] = True
