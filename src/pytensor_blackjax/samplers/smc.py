"""Adaptive tempered sequential Monte Carlo (SMC) from a Gaussian reference to the posterior.

The posterior has no separate prior and likelihood here, so the tempering path is geometric between
a reference ``N(0, reference_sd**2)`` in unconstrained space and the posterior:
``log p_t(x) = (1 - t) log ref(x) + t log post(x)``. Blackjax's tempered SMC moves the particles
with HMC at each temperature; the next temperature keeps the effective sample size at
``target_ess`` (the adaptive schedule of Blackjax's ``adaptive_tempered_smc``).

How it fits the driver: ``chains * draws`` particles are kept. Warmup steps are tempering steps
(``tune`` is the most there may be; the last one is forced to the posterior), followed by one
resample-and-move at the posterior so the particles have equal weights. Sampling then hands out the
final particles, ``chains`` per draw, in a random order.

References:
    Del Moral, Doucet & Jasra (2006), Sequential Monte Carlo samplers. JRSS B 68(3).
    Buchholz, Chopin & Jacob (2021), Adaptive tuning of Hamiltonian Monte Carlo within sequential
    Monte Carlo. Bayesian Analysis 16(3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.samplers._base import Kernel, RunSize
from pytensor_blackjax.samplers._options import check_int, check_positive, check_probability
from pytensor_blackjax.samplers._start import DEFAULT_RADIUS

__all__ = ["SMC"]

MIN_TUNE = 10
MUTATION_ACCEPT = 0.65  # HMC mutations: step size nudged towards this acceptance after every move


class SMCWarmup(NamedTuple):
    smc: Any  # blackjax TemperedSMCState over all particles
    log_step_size: jax.Array
    moves_at_posterior: jax.Array  # resample-and-move steps taken at temperature 1
    mcmc_steps: jax.Array  # HMC moves every particle took in all
    key: jax.Array


class SMCDraws(NamedTuple):
    particles: jax.Array  # (num_particles, dims), equally weighted, shuffled
    next_draw: jax.Array
    leapfrog_steps: jax.Array  # leapfrog steps every particle took during tempering


@dataclass(frozen=True)
class SMC:
    """Adaptive tempered SMC with HMC moves: returns ``chains * draws`` particles as the draws.

    Suited to multimodal posteriors, where single chains get stuck in one mode: the population
    follows the tempering path from a broad reference into every mode with their right weights.
    The draws are (nearly) independent, but their quality rests on the HMC moves having mixed at each
    temperature: the moves use the particles' covariance as a dense mass matrix and go on until the
    particles have decorrelated from where they started (``correlation_threshold``), as PyMC's SMC
    does; lower the threshold or raise ``num_mcmc_steps`` when in doubt.

    Args:
        target_ess: fraction of the particles' effective sample size kept at each tempering step.
        num_mcmc_steps: fewest HMC moves per particle and tempering step.
        max_mcmc_steps: most HMC moves per particle and tempering step.
        correlation_threshold: the moves stop once every coordinate's correlation between the
            particles' positions before and after them is below this (or at ``max_mcmc_steps``).
        num_integration_steps: leapfrog steps per HMC move.
        reference_sd: scale of the Gaussian reference in unconstrained space; it should cover the
            posterior's bulk.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.SMC(num_mcmc_steps=20)
    """

    target_ess: float = 0.5
    num_mcmc_steps: int = 5
    max_mcmc_steps: int = 100
    correlation_threshold: float = 0.1
    num_integration_steps: int = 8
    reference_sd: float = 3.0
    name: ClassVar[str] = "smc"
    ensemble = True
    uses_start_points: ClassVar[bool] = False  # particles start from the reference (refuses initvals)
    approximate = False
    size_fields = ("draws", "chains")  # it keeps chains * draws particles
    init_radius = DEFAULT_RADIUS  # not used: the particles start from the reference
    markov_chain = False  # its draws are particles, not a chain: until= and extend refuse it

    def __post_init__(self):
        check_probability("SMC", "target_ess", self.target_ess)
        check_int("SMC", "num_mcmc_steps", self.num_mcmc_steps, 1, 10_000)
        check_int("SMC", "max_mcmc_steps", self.max_mcmc_steps, 1, 10_000)
        if self.max_mcmc_steps < self.num_mcmc_steps:
            raise ValueError(
                f"SMC(max_mcmc_steps={self.max_mcmc_steps}, num_mcmc_steps={self.num_mcmc_steps}): the most "
                "HMC moves per tempering step cannot be fewer than the fewest; give max_mcmc_steps from "
                f"{self.num_mcmc_steps}, or a smaller num_mcmc_steps."
            )
        check_probability("SMC", "correlation_threshold", self.correlation_threshold)
        check_int("SMC", "num_integration_steps", self.num_integration_steps, 1, 1024)
        check_positive("SMC", "reference_sd", self.reference_sd)

    def schedule(self, tune: int) -> np.ndarray:
        rows = np.zeros((tune, 1), dtype=np.int32)
        if tune:
            rows[-1, 0] = 1  # the last step goes to the posterior whatever the adaptive schedule says
        return rows

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        if tune < MIN_TUNE:
            raise ValueError(
                f"SMC uses the warmup steps for tempering: tune={tune} allows too few "
                f"tempering steps; give tune >= {MIN_TUNE} (unused steps cost nothing)."
            )

    def build(self, logdensity_fn, num_dims: int, size: RunSize) -> Kernel:
        import blackjax
        from blackjax.smc import ess, resampling, solver, tempered

        from pytensor_blackjax.samplers._metric import dense_factors, dense_metric

        draws, chains = size.draws, size.chains
        num_particles, sd = draws * chains, self.reference_sd
        hmc_kernel = blackjax.hmc.build_kernel()

        def log_reference(x):
            return -0.5 * jnp.sum((x / sd) ** 2)

        def log_ratio(x):  # plays the likelihood on the tempering path
            return logdensity_fn(x) - log_reference(x)

        batched_log_ratio = jax.vmap(log_ratio)

        def warmup_init(key, positions):
            del positions  # the particles start from the reference, not from the chains' start points
            init_key, key = jax.random.split(key)
            particles = sd * jax.random.normal(init_key, (num_particles, num_dims))
            step0 = jnp.log(0.5 * num_dims**-0.25)
            zero = jnp.asarray(0)
            return SMCWarmup(tempered.init(particles), jnp.asarray(step0), zero, zero, key)

        def mutate(key, x, lam, inverse_mass_matrix, log_step):
            """HMC moves at temperature ``lam`` until every coordinate's correlation between the
            particles' positions before and after is below ``correlation_threshold``."""

            def logdensity(z):
                return log_reference(z) + lam * log_ratio(z)

            metric = dense_metric(inverse_mass_matrix, dense_factors(inverse_mass_matrix))
            x0 = x - jnp.mean(x, axis=0)
            norm0 = jnp.sqrt(jnp.sum(x0**2, axis=0))

            def one(carry):
                key, states, log_step, n, _ = carry
                key, jitter_key, step_key = jax.random.split(key, 3)
                # a step size jittered per move: a fixed trajectory length can resonate with the
                # posterior's scales and bring particles back where they started
                step = jnp.exp(log_step) * jax.random.uniform(jitter_key, minval=0.8, maxval=1.2)
                keys = jax.random.split(step_key, num_particles)
                states, info = jax.vmap(
                    lambda k, s: hmc_kernel(k, s, logdensity, step, metric, self.num_integration_steps)
                )(keys, states)
                accept = jnp.mean(jnp.nan_to_num(info.acceptance_rate))
                xc = states.position - jnp.mean(states.position, axis=0)
                corr = jnp.sum(x0 * xc, axis=0) / jnp.maximum(norm0 * jnp.sqrt(jnp.sum(xc**2, axis=0)), 1e-30)
                return key, states, log_step + (accept - MUTATION_ACCEPT), n + 1, jnp.max(jnp.abs(corr))

            def more(carry):
                n, corr = carry[3], carry[4]
                return (n < self.num_mcmc_steps) | (
                    (corr > self.correlation_threshold) & (n < self.max_mcmc_steps)
                )

            states = jax.vmap(lambda z: blackjax.hmc.init(z, logdensity))(x)
            _, states, log_step, n, _ = jax.lax.while_loop(
                more, one, (key, states, log_step, jnp.asarray(0), jnp.asarray(jnp.inf, x.dtype))
            )
            return states.position, log_step, n

        def move(key, ws, row):
            """Resample, move at the current temperature, then weight the particles for the next."""
            state = ws.smc
            lam = jnp.asarray(state.tempering_param)
            resample_key, mutate_key = jax.random.split(key)
            # the kernel is tuned from the weighted particles: their covariance is the mass matrix,
            # which takes the correlations and scales out of the HMC moves
            imm = _weighted_covariance(state.particles, state.weights)
            idx = resampling.systematic(resample_key, state.weights, num_particles)
            x, log_step, n = mutate(mutate_key, state.particles[idx], lam, imm, ws.log_step_size)
            delta = ess.ess_solver(batched_log_ratio, x, self.target_ess, 1.0 - lam, solver.dichotomy)
            delta = jnp.clip(jnp.nan_to_num(delta), 0.0, 1.0 - lam)
            target = jnp.where(row[0] == 1, 1.0, lam + delta)
            log_w = jnp.nan_to_num((target - lam) * batched_log_ratio(x), nan=-jnp.inf)
            weights = jax.nn.softmax(log_w)
            new = tempered.TemperedSMCState(x, weights, jnp.asarray(jnp.minimum(target, 1.0), lam.dtype))
            return ws._replace(
                smc=new,
                log_step_size=log_step,
                moves_at_posterior=ws.moves_at_posterior + (lam >= 1.0),
                mcmc_steps=ws.mcmc_steps + n,
            )

        def warmup_step(key, ws, row):
            busy = (ws.smc.tempering_param < 1.0) | (ws.moves_at_posterior < 1)
            ws = jax.lax.cond(busy, lambda w: move(key, w, row), lambda w: w, ws)
            return ws, {"step_size": jnp.exp(ws.log_step_size)}

        def warmup_finish(ws):
            resample_key, order_key = jax.random.split(ws.key)
            # equal weights after the move at temperature 1; resample in case tune ran out before it
            idx = resampling.systematic(resample_key, ws.smc.weights, num_particles)
            idx = jax.random.permutation(order_key, idx)
            steps = ws.mcmc_steps * self.num_integration_steps
            return SMCDraws(ws.smc.particles[idx], jnp.asarray(0), steps), jnp.exp(ws.log_step_size)

        def step(key, draws, params):
            del key, params
            x = draws.particles[_slot(draws.next_draw, chains, num_particles)]
            # every draw is one particle; its cost is the leapfrog steps it took while tempering, so
            # n_steps summed over the draws is the run's gradient evaluations
            n_steps = jnp.full((chains,), draws.leapfrog_steps, jnp.int32)
            return draws._replace(next_draw=draws.next_draw + 1), {
                "lp": jax.vmap(logdensity_fn)(x),
                "n_steps": n_steps,
            }

        def position(draws):
            return draws.particles[_slot(draws.next_draw - 1, chains, num_particles)]

        return Kernel(warmup_init, warmup_step, warmup_finish, step, position)


def _weighted_covariance(x, w):
    """The particles' weighted covariance, shrunk towards its diagonal as Stan shrinks its dense metric
    (few particles in many dimensions give a singular estimate)."""
    mean = jnp.sum(w[:, None] * x, axis=0)
    xc = x - mean
    cov = (w[:, None] * xc).T @ xc
    var = jnp.maximum(jnp.diag(cov), 1e-12)
    n = x.shape[0]
    shrunk = (n / (n + 5.0)) * cov + (5.0 / (n + 5.0)) * jnp.diag(var)
    return shrunk + 1e-10 * jnp.diag(var)


def _slot(draw, chains: int, num_particles: int):
    """Indices of the particles handed out as draw ``draw`` of every chain."""
    return (draw * chains + jnp.arange(chains)) % max(num_particles, 1)
