"""The pieces of Stan-style warmup: the window schedule, dual averaging of the step size and Welford's
running covariance, with this package's own state types.

The states travel between the warmup and sampling programs, and a program loaded from the store
rebuilds its argument and result types when it is unpickled. Being this package's own, they do not
make a second run import Blackjax (~0.8 s) when every program it needs comes from the store.

References:
    Stan Reference Manual, "HMC algorithm parameters": the warmup windows and the regularisation of
    the covariance estimate.
    Hoffman & Gelman (2014), The No-U-Turn Sampler, section 3.2.1: dual averaging of the step size.
    Welford (1962), Note on a method for calculating corrected sums of squares and products.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.samplers._metric import array_module

__all__ = [
    "ChainState",
    "DualAveraging",
    "Welford",
    "chain_init",
    "clear_of_resonance",
    "dual_averaging_init",
    "dual_averaging_update",
    "early_windows",
    "resonant_step_sizes",
    "restart_average",
    "stan_schedule",
    "welford_covariance",
    "welford_init",
    "welford_update",
    "window_schedule",
]

INIT_BUFFER, TERM_BUFFER, BASE_WINDOW = 75, 50, 25  # Stan's warmup windows
EARLY_WINDOWS = (15, 40, 75)  # slow windows [15, 40) and [40, 75) inside a full initial buffer
MIN_ADAPTED_TUNE = 20  # below this many warmup steps only the step size is adapted
DA_T0, DA_GAMMA, DA_KAPPA = 10.0, 0.05, 0.75  # Hoffman & Gelman's dual averaging constants
RESONANCE_BAND = (0.97, 1.12)  # around each resonant step size, the steps `clear_of_resonance` moves


class ChainState(NamedTuple):
    """A chain of the HMC family: its position with the log-density and its gradient there."""

    position: jax.Array
    logdensity: jax.Array
    logdensity_grad: jax.Array


def chain_init(position: jax.Array, logdensity_fn) -> ChainState:
    logdensity, grad = jax.value_and_grad(logdensity_fn)(position)
    return ChainState(position, logdensity, grad)


# -- windows ------------------------------------------------------------------------------------------


def window_schedule(tune: int) -> np.ndarray:
    """The warmup schedule as rows ``(stage, is_window_end)``: stage 0 fast, 1 slow.

    Stan's (`stan_schedule`), with two short slow windows inside its initial buffer (`early_windows`).
    """
    return early_windows(stan_schedule(tune))


def early_windows(rows: np.ndarray, bounds: tuple[int, ...] = EARLY_WINDOWS) -> np.ndarray:
    """``rows`` with steps ``bounds[0]`` to ``bounds[-1]`` of the initial fast buffer made slow windows,
    each ending at the next bound; an initial buffer shorter than ``bounds[-1]`` steps is left as it is.

    Stan keeps the starting metric through its 75-step initial buffer so that the first window's
    draws come from the typical set. That metric, a guess from one gradient (`start_variances`), is
    often poor where the chains arrive, and the trajectories there are long. A window has no memory
    and a short dense window estimates from the draws' gradients too, so updating after steps 40 and
    75 costs at most one poor window while the chains are still on their way. The first 15 steps
    stay fast: the start is usually far from the typical set (windows from step 10 measured worse on
    diamonds). Warmup gradients per chain, mean of 3 seeds, Stan's schedule -> this: diamonds
    23.1k -> 16.5k, logistic 5000x20 9.0k -> 8.4k, rat tumors 14.0k -> 13.2k, eight schools and the
    503-parameter hierarchical model unchanged; sampling efficiency afterwards unchanged.
    """
    slow = np.flatnonzero(rows[:, 0] == 1)
    buffer = int(slow[0]) if slow.size else rows.shape[0]
    if buffer < bounds[-1]:
        return rows
    rows = rows.copy()
    rows[bounds[0] : bounds[-1], 0] = 1
    rows[np.asarray(bounds[1:]) - 1, 1] = 1
    return rows


def stan_schedule(tune: int) -> np.ndarray:
    """Stan's warmup schedule as rows ``(stage, is_window_end)``.

    An initial fast buffer (75 steps), slow windows doubling from 25 steps, a final fast buffer (50).
    A window that would leave less than twice its size before the final buffer is stretched to reach
    it. When the three default lengths do not fit, they become 15%, the rest and 10% of ``tune``;
    below `MIN_ADAPTED_TUNE` steps every step is fast (no mass matrix is estimated).
    """
    rows = np.zeros((tune, 2), dtype=np.int32)
    if tune < MIN_ADAPTED_TUNE:
        return rows
    init, term, window = INIT_BUFFER, TERM_BUFFER, BASE_WINDOW
    if init + window + term > tune:
        init, term = int(0.15 * tune), int(0.1 * tune)
        window = tune - init - term
    slow_end = tune - term
    start = init
    while start < slow_end:
        end = start + window
        if end + 2 * window > slow_end:
            end = slow_end
        rows[start:end, 0] = 1
        rows[end - 1, 1] = 1
        start, window = end, 2 * window
    return rows


# -- step size ----------------------------------------------------------------------------------------


class DualAveraging(NamedTuple):
    """Dual averaging of the log step size towards a target acceptance rate.

    One controller runs through the whole warmup; a window's end restarts only the average
    (`restart_average`), so that the step size kept at the end is the mean of the log step sizes
    tried under the final metric. Stan restarts the whole scheme at every window's end, from
    ``mu = log(10 * step)``: its last 50 steps then swing widely around the target, and the average
    of those iterates, under an acceptance rate that falls faster above the optimum than it rises
    below it, lands short of it (sampling acceptance ~0.87-0.90 for a target of 0.8). Kept running,
    the controller's gain has decayed by the warmup's end (nutpie's warmup never restarts it either)
    and the sampling acceptance meets the target (0.80-0.82). The average is a plain mean rather than
    Hoffman & Gelman's weights (which remember the last ~20 of 50 iterates): with those, one chain in
    the 32 of logistic 5000x20 seeds 1-8 kept a step 20% above the others' (acceptance 0.72, a tail of
    trajectories at the maximum depth: 62 gradients per draw against 7). Measured in
    docs/performance.md ("Step size: one dual averaging through the warmup").
    """

    log_step_size: jax.Array  # the step size to use next
    log_step_size_avg: jax.Array  # the averaged iterate: the step size to keep at the end
    count: jax.Array  # type: ignore[assignment]  # updates so far (shadows tuple.count)
    error_avg: jax.Array  # running mean of (target - acceptance)
    mu: jax.Array  # the point the iterates shrink towards, log(10 * initial step size)
    avg_count: jax.Array  # updates since the average last restarted


def dual_averaging_init(step_size: jax.Array) -> DualAveraging:
    """The state at ``step_size`` (traced: a window's end restarts only the average, `restart_average`)."""
    log_step = jnp.log(step_size)
    zero = jnp.zeros_like(log_step)
    count = jnp.asarray(0, np.int32)
    return DualAveraging(log_step, zero, count, zero, jnp.log(10.0) + log_step, count)


def dual_averaging_update(state: DualAveraging, acceptance: jax.Array, target: float) -> DualAveraging:
    """One step of Hoffman & Gelman's scheme (their equation 6) with t0=10, gamma=0.05, kappa=0.75,
    except that the averaged iterate is the plain mean of the iterates since its last restart."""
    dtype = state.log_step_size.dtype
    t = (state.count + 1).astype(dtype)
    weight = 1.0 / (t + DA_T0)
    error_avg = (1.0 - weight) * state.error_avg + weight * (target - jnp.asarray(acceptance, dtype))
    log_step = state.mu - jnp.sqrt(t) / DA_GAMMA * error_avg
    k = (state.avg_count + 1).astype(dtype)
    log_avg = state.log_step_size_avg + (log_step - state.log_step_size_avg) / k
    return DualAveraging(log_step, log_avg, state.count + 1, error_avg, state.mu, state.avg_count + 1)


def restart_average(state: DualAveraging) -> DualAveraging:
    """``state`` with its average restarted: the next update's iterate becomes the average (a
    window's end, after which the metric differs). In JAX or NumPy as ``state`` is."""
    return state._replace(avg_count=state.avg_count * 0)


def resonant_step_sizes(max_doublings: int = 20) -> np.ndarray:
    """The step sizes at which ``2**k - 1`` leapfrog steps make one period of a standard Gaussian,
    ``2 sin(pi / (2**k - 1))`` for ``k = 3 .. max_doublings``: 0.868, 0.416, 0.203, ...

    Leapfrog with step ``e`` on a unit-variance Gaussian turns the phase by ``acos(1 - e**2 / 2)`` a
    step, so its period is ``2 pi / acos(1 - e**2 / 2)`` steps. ``k = 2`` (1.732) is left out: the top
    of its band (`clear_of_resonance`) would be 1.94, at leapfrog's stability limit of 2.
    """
    k = np.arange(3, max_doublings + 1, dtype=np.float64)
    return 2.0 * np.sin(np.pi / (2.0**k - 1.0))


def clear_of_resonance(step_size: jax.Array, band: tuple[float, float] = RESONANCE_BAND) -> jax.Array:
    """``step_size``, or the top of the band it lies in, ``band[1] * e_k``, where ``band[0] * e_k <=
    step_size < band[1] * e_k`` for a resonant step ``e_k`` (`resonant_step_sizes`).

    NUTS doubles its tree until the trajectory's ends turn towards each other. On a nearly Gaussian
    posterior under a nearly exact metric every direction has the same period; with a step just above
    ``e_k`` a tree of ``2**k - 1`` steps spans a little less than one period, its ends sit next to each
    other, no U-turn shows, and the tree doubles on, again and again (measured on a 10-dimensional
    standard Gaussian under the identity metric: 4.1 gradients per bulk ESS at step 0.865, 42 at 0.87,
    8.4 at 0.88, 3.5 at 0.95, 2.0 at 1.0; at 0.416 on 50 dimensions, 223). Dual averaging knows
    nothing of this: on posteriordb's nes2000 (10 dimensions) it lands at 0.96-1.07 e_3, and the chains
    at 1.00-1.05 e_3 spent 6.6-13.3 gradients a draw against 5.3-5.6 for those below e_3.

    Below ``e_k`` the tree's ends pass a U-turn before the period closes; far enough above it they
    reach one sooner. The band covers the zone measured on an exact metric (up to ~1.08 e_k), widened
    by about 4% for an estimated metric's errors (sqrt of its eigenvalues against the posterior
    covariance, 0.94-1.05 on nes2000). The move is upwards, where NUTS spends fewest gradients per ESS
    on such posteriors; moving the step down under the band instead measured worse on three of the
    benchmark posteriors. The step grows by at most 15%, so the sampling acceptance rate falls a
    little below the target, and on a skewed posterior the larger step diverges more often (a
    2-parameter normal model with 6 observations: 0 -> 3-4 divergences in 8000 draws at two seeds of
    four): NUTS's default, ``avoid_resonance="auto"``, moves it only for a nearly Gaussian posterior
    (`_metric.gradient_nonlinearity`; docs/performance.md, "NUTS's resonant step sizes").
    """
    xp = array_module(step_size)
    resonant = xp.asarray(resonant_step_sizes(), dtype=xp.asarray(step_size).dtype)
    inside = (step_size >= band[0] * resonant) & (step_size < band[1] * resonant)
    return xp.where(xp.any(inside), band[1] * resonant[xp.argmax(inside)], step_size)


# -- mass matrix ----------------------------------------------------------------------------------------


class Welford(NamedTuple):
    """Running mean and sum of squared deviations (a vector for a diagonal, a matrix for a dense one)."""

    mean: jax.Array
    m2: jax.Array
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count


def welford_init(num_dims: int, dense: bool, dtype, xp=jnp) -> Welford:
    m2 = xp.zeros((num_dims, num_dims) if dense else (num_dims,), dtype)
    return Welford(xp.zeros(num_dims, dtype), m2, xp.asarray(0, np.int32))


def welford_update(state: Welford, x: jax.Array) -> Welford:
    count = state.count + 1
    delta = x - state.mean
    mean = state.mean + delta / count.astype(x.dtype)
    after = x - mean
    m2 = state.m2 + (jnp.outer(after, delta) if state.m2.ndim == 2 else delta * after)
    return Welford(mean, m2, count)


def welford_covariance(state: Welford) -> jax.Array:
    """The window's sample covariance (or variances), regularised as Stan does: weight n / (n + 5) on
    the estimate and 5 / (n + 5) on 1e-3 times the identity."""
    xp = np if isinstance(state.m2, np.ndarray) else jnp
    n = state.count.astype(state.m2.dtype)
    covariance = state.m2 / xp.maximum(n - 1.0, 1.0)
    shrink = 5.0 / (n + 5.0)
    ridge = xp.eye(state.m2.shape[0], dtype=state.m2.dtype) if state.m2.ndim == 2 else 1.0
    return (1.0 - shrink) * covariance + shrink * 1e-3 * ridge
