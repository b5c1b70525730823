"""Stan-style windowed warmup for the HMC family (NUTS, HMC, MALA): the step size by dual averaging
and the mass matrix (diagonal, dense, or low-rank plus diagonal) estimated in windows, from a start
metric guessed from the gradient at the starting point.

References:
    Stan Reference Manual, "HMC algorithm parameters" (warmup windows).
    Seyboldt, Carlson & Carpenter (2026), Preconditioning Hamiltonian Monte Carlo by minimizing
    Fisher divergence (low-rank adaptation).
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.samplers._adaptation import (
    ChainState,
    chain_init,
    clear_of_resonance,
    dual_averaging_init,
    dual_averaging_update,
    restart_average,
    welford_covariance,
    welford_init,
    welford_update,
    window_schedule,
)
from pytensor_blackjax.samplers._base import Kernel, PhaseStates, PhaseStep
from pytensor_blackjax.samplers._metric import (
    DenseFactors,
    DenseMass,
    array_module,
    dense_factors,
    dense_metric,
    diagonal_factors,
    fisher_dense_estimate,
    gradient_nonlinearity,
    low_rank_buffer_init,
    low_rank_buffer_push,
    low_rank_estimate,
    low_rank_matrix,
    low_rank_parts,
)
from pytensor_blackjax.samplers._start import pathfinder_point
from pytensor_blackjax.samplers._states import HMCState

__all__ = [
    "HMCParams",
    "WindowState",
    "WindowedSampler",
    "end_window",
    "metric_kind",
    "start_variances",
    "windowed_hmc_kernel",
]

DENSE_MAX_DIMS = 200  # "auto" uses a dense mass matrix up to this many unconstrained dimensions
SHORT_WINDOW_PER_DIM = 4  # dense windows with fewer draws than this per dimension ...
SHORT_WINDOW_MIN = 200  # ... or than this in all use the draws' gradients too (`_dense_estimator`)
LOW_RANK_BUFFER_FLOATS = 2**22  # memory cap of the low-rank draw/gradient buffers (rows * dims)
# `gradient_nonlinearity` below which ``avoid_resonance="auto"`` takes a posterior for nearly Gaussian
# (measured on the sampling draws: nes2000, arK, kidiq, gauss_mix, logistic, diamonds 0.003-0.05; garch,
# eight schools, rat tumors 0.46-1.1; see docs/performance.md)
NEARLY_GAUSSIAN = 0.15
_JITTER_STREAM = 0x6A17  # folded into a transition's key for its step-size jitter


class HMCParams(NamedTuple):
    step_size: jax.Array
    inverse_mass_matrix: Any  # (d,) diagonal, (d, d) dense, or LowRankInverseMassMatrix
    factors: Any = ()  # dense: DenseFactors, computed when the matrix changes; else ()


class WindowState(NamedTuple):
    chain: ChainState
    step_size_state: Any  # DualAveraging
    mass_matrix_state: Any  # Welford, LowRankBuffer (low-rank, fisher), or both (dense)
    params: HMCParams


def metric_kind(adaptation: str, num_dims: int) -> str:
    """Resolve ``adaptation="auto"``: dense up to `DENSE_MAX_DIMS` dimensions, diagonal above.

    Low-rank above 200 dimensions measured slower end to end (its warmup); see docs/performance.md.
    """
    if adaptation == "auto":
        return "dense" if num_dims <= DENSE_MAX_DIMS else "diag"
    return adaptation


class _Estimator(NamedTuple):
    init: Any  # grad at the start -> (state, first inverse mass matrix, factors); see `start_variances`
    update: Any  # (state, chain) -> state
    final: Any  # state -> (state, inverse mass matrix, factors)
    # state -> `gradient_nonlinearity` of the last long window (1, its largest value: not measured);
    # finite, as every number in a warmup state is at a finite start (`finite_chains`)
    nonlinearity: Any = lambda state: 1.0


def _buffer_rows(rows: int, num_dims: int) -> int:
    """Rows of a draw/gradient buffer: ``rows``, within [32, LOW_RANK_BUFFER_FLOATS / num_dims]."""
    return int(max(32, min(rows, LOW_RANK_BUFFER_FLOATS // max(num_dims, 1))))


def _estimator(kind: str, num_dims: int, dtype, max_rank: int) -> _Estimator:
    if kind == "low_rank":
        capacity = _buffer_rows(512, num_dims)
        rank = min(max_rank, num_dims)

        def lr_init(grad):
            from blackjax.mcmc.metrics import LowRankInverseMassMatrix

            scale = jnp.sqrt(start_variances(grad))
            imm = LowRankInverseMassMatrix(scale, jnp.zeros((num_dims, rank), dtype), jnp.ones(rank, dtype))
            return low_rank_buffer_init(capacity, num_dims, dtype), imm, ()

        def lr_final(buffer):
            xp = array_module(buffer.draws)
            # on the host the matrix's fields in their order: `end_window` puts them back into the
            # state's own structure (Blackjax's class) without importing Blackjax
            imm = low_rank_parts(buffer, max_rank) if xp is np else low_rank_estimate(buffer, max_rank)
            return low_rank_buffer_init(capacity, num_dims, dtype, xp), imm, ()

        return _Estimator(
            lr_init, lambda s, c: low_rank_buffer_push(s, c.position, c.logdensity_grad), lr_final
        )
    if kind == "dense":
        return _dense_estimator(num_dims, dtype, max_rank)
    if kind == "fisher":
        return _fisher_estimator(num_dims, dtype, max_rank)

    def diag_end(state):
        return welford_init(num_dims, False, dtype, array_module(state.m2)), welford_covariance(state), ()

    return _Estimator(
        lambda grad: (welford_init(num_dims, False, dtype), start_variances(grad), ()),
        lambda s, c: welford_update(s, c.position),
        diag_end,
    )


def _dense_estimator(num_dims: int, dtype, max_rank: int) -> _Estimator:
    """Sample covariance of a long window; a short one (fewer than `SHORT_WINDOW_PER_DIM` draws per
    dimension, or `SHORT_WINDOW_MIN`) cannot estimate d*d entries from its draws, but with their
    gradients the Fisher-divergence estimate (`low_rank_estimate`, low rank plus diagonal) pins down
    the scales and the strongly correlated directions; it is used there, as a dense matrix (see
    docs/performance.md, "Dense windows": diamonds warmup 24 s -> 4 s against a shrunk covariance)."""
    short = max(SHORT_WINDOW_PER_DIM * num_dims, SHORT_WINDOW_MIN)
    capacity = _buffer_rows(short, num_dims)
    rank = min(max_rank, num_dims)

    def start(grad):
        variances = start_variances(grad)
        state = (welford_init(num_dims, True, dtype), low_rank_buffer_init(capacity, num_dims, dtype))
        return state, jnp.diag(variances), diagonal_factors(variances)

    def update(state, chain):
        welford, buffer = state
        return (
            welford_update(welford, chain.position),
            low_rank_buffer_push(buffer, chain.position, chain.logdensity_grad),
        )

    def end(state):
        welford, buffer = state
        xp = array_module(buffer.draws)
        imm = _either(
            welford.count < short,
            lambda: low_rank_matrix(*low_rank_parts(buffer, rank)),
            lambda: welford_covariance(welford),
        )
        fresh = (welford_init(num_dims, True, dtype, xp), low_rank_buffer_init(capacity, num_dims, dtype, xp))
        return fresh, imm, dense_factors(imm)

    return _Estimator(start, update, end)


def _fisher_estimator(num_dims: int, dtype, max_rank: int) -> _Estimator:
    """NUTS's dense metric: `_dense_estimator` with the long windows' sample covariance replaced by
    the full-rank Fisher-divergence estimate (`fisher_dense_estimate`) from their last draws and
    gradients, as many as a short window holds. Short windows keep the rank-``max_rank`` estimate.
    The state is ``(buffer, nonlinearity)``: a long window's end also measures `gradient_nonlinearity`
    (read by ``avoid_resonance="auto"``; the buffer is emptied there, so the value is kept), a short
    one's gives 1 (not measured).

    The full-rank estimate is exact for a Gaussian and scale-free: Stan's shrinkage of a long window's
    sample covariance (5 / (n + 5) of 1e-3 times the identity) inflated the smallest eigenvalues of
    diamonds' covariance (down to 1e-6) about ten times even after a 500-draw window (see
    docs/performance.md, "NUTS adaptation options"). In short windows it made rat tumors' warmup
    longer (12.9k -> 14.8k gradients per chain), as its estimate from fewer draws than dimensions is
    noisy. Static HMC keeps `_dense_estimator`: with an exact metric every direction of a Gaussian has
    the same period and its fixed path lengths resonated (R-hat 1.010-1.013 against 1.006-1.007 on a
    5-dimensional Gaussian, 4 seeds).
    """
    short = max(SHORT_WINDOW_PER_DIM * num_dims, SHORT_WINDOW_MIN)
    # The long windows' estimate uses their last ``short`` draws: the buffer rides in the warmup loop's
    # state through a conditional, and a 1024-row one made rat tumors' vectorized warmup 0.82 -> 2.23 s
    # (threads 0.23 -> 0.47 s), while diamonds needed as few gradients per ESS with the shorter one
    # (3.1-3.3 over 3 seeds, against 3.1-3.4 with 1024 rows).
    capacity = _buffer_rows(short, num_dims)
    rank = min(max_rank, num_dims)

    def start(grad):
        variances = start_variances(grad)
        return (
            (low_rank_buffer_init(capacity, num_dims, dtype), jnp.ones((), dtype)),
            jnp.diag(variances),
            diagonal_factors(variances),
        )

    def update(state, chain):
        buffer, nonlinearity = state
        return low_rank_buffer_push(buffer, chain.position, chain.logdensity_grad), nonlinearity

    def end(state):
        buffer, _ = state
        xp = array_module(buffer.draws)
        imm, nonlinearity = _either(
            buffer.count < short,
            lambda: (low_rank_matrix(*low_rank_parts(buffer, rank)), xp.ones((), dtype)),
            lambda: (fisher_dense_estimate(buffer), gradient_nonlinearity(buffer)),
        )
        fresh = low_rank_buffer_init(capacity, num_dims, dtype, xp)
        return (fresh, nonlinearity), imm, dense_factors(imm)

    return _Estimator(start, update, end, lambda state: state[1])


def _either(pred, true_fn, false_fn):
    """``lax.cond`` when tracing; a plain ``if`` for a NumPy predicate (a window's end on the host)."""
    if isinstance(pred, (np.ndarray, np.generic, bool)):
        return true_fn() if pred else false_fn()
    return jax.lax.cond(pred, true_fn, false_fn)


def end_window(ws: WindowState, *, adaptation: str, num_dims: int, max_rank: int) -> WindowState:
    """The warmup state at an adaptation window's end: the metric estimated from the window (its
    factors with it), a fresh estimator, the step size's average restarted (`restart_average`; the
    dual averaging itself goes on). In NumPy for a state of NumPy arrays (the driver's, for chains
    on this host), traced in JAX otherwise; the output has the input's types."""
    est = _estimator(adaptation, num_dims, ws.chain.position.dtype, max_rank)
    mm_state, imm, factors = est.final(ws.mass_matrix_state)
    xp = array_module(ws.chain.position)
    da_state = restart_average(ws.step_size_state)
    out = WindowState(
        ws.chain, da_state, mm_state, ws.params._replace(inverse_mass_matrix=imm, factors=factors)
    )
    if xp is np:  # the input's structure and types (NumPy promotes where JAX keeps float32, int32)
        leaves = [
            np.asarray(new, dtype=old.dtype)
            for new, old in zip(jax.tree.leaves(out), jax.tree.leaves(ws), strict=True)
        ]
        out = jax.tree.unflatten(jax.tree.structure(ws), leaves)
    return out


def _row(x: np.ndarray, i: int) -> np.ndarray:
    return x[i]


def start_variances(grad: jax.Array) -> jax.Array:
    """Diagonal of the inverse mass matrix used until the first window's estimate: ``1 / sqrt(|g|)``
    for gradient components ``|g| > 1`` at the starting point, 1 elsewhere.

    With the identity metric one tightly identified parameter forces a tiny step on all the others
    and the early trajectories run to the maximum tree depth: on a 503-parameter hierarchical model
    the first 100 warmup steps cost more gradients than the remaining 900. A large gradient at the
    start marks such a coordinate. The full ``1 / |g|`` guess (nutpie's) over-trusts one gradient on
    correlated posteriors; its square root (half-way, on the log scale, to the identity) never shrinks
    a coordinate whose gradient is small. Measured warmup gradients per chain, identity -> this:
    hierarchical-503 40k -> 21k, rat tumors 22k -> 20k, logistic 5000x20 11k -> 11k.
    """
    scale = jnp.abs(grad)
    scale = jnp.where(jnp.isfinite(scale), scale, 1.0)
    return (1.0 / jnp.sqrt(jnp.clip(scale, 1.0, 1e10))).astype(grad.dtype)


def _metric(params: HMCParams, dense_mass: bool = False):
    """What Blackjax kernels take as ``inverse_mass_matrix``; a dense one as `DenseMass` with
    ``dense_mass`` (for kernels that apply it themselves)."""
    if isinstance(params.factors, DenseFactors):
        if dense_mass:
            return DenseMass(params.inverse_mass_matrix, params.factors)
        return dense_metric(params.inverse_mass_matrix, params.factors)
    return params.inverse_mass_matrix


def jittered(key: jax.Array, step_size: jax.Array, jitter: float, sampling: Any = True) -> jax.Array:
    """``step_size`` times a factor uniform in ``(1 - jitter, 1 + jitter)`` drawn from a key folded off
    ``key`` where ``sampling`` holds, else ``step_size`` itself; ``jitter=0`` adds nothing to the program.

    A trajectory of NUTS ends at a U-turn, which on a well-preconditioned, nearly Gaussian posterior
    comes at about the same length for every draw: at some step sizes the doublings of the tree land
    just short of a full period, so the trajectory returns near its start (and may double again) before
    the U-turn shows. A step drawn afresh for each transition spreads the trajectories' lengths over
    that resonance (Neal 2011, "MCMC using Hamiltonian dynamics": a step size drawn at random from a small
    interval avoids such periodicity); measured in docs/performance.md.
    """
    if not jitter:
        return step_size
    factor = 1.0 + jax.random.uniform(
        jax.random.fold_in(key, _JITTER_STREAM), (), step_size.dtype, -jitter, jitter
    )
    return jnp.where(sampling, step_size * factor, step_size)


def windowed_hmc_kernel(
    kernel_fn,
    logdensity_fn,
    num_dims: int,
    *,
    target_accept: float,
    stats_fn,
    adaptation: str,
    max_rank: int = 10,
    init: str = "random",
    dense_mass: bool = False,
    step_jitter: float = 0.0,
    avoid_resonance: bool | str = False,
) -> Kernel:
    """Warmup and step for any Blackjax kernel with the signature ``(key, state, logdensity, step_size,
    metric)`` over its ``HMCState``; between steps the chain is a `ChainState`.

    ``stats_fn(state, info, params)`` gives the per-draw stats dict; ``adaptation`` is the mass matrix:
    "diag", "dense", "fisher" (dense, from draws and gradients) or "low_rank"; ``init="pathfinder"``
    moves the start to a Pathfinder draw; ``dense_mass``: ``kernel_fn`` takes a dense metric as
    `DenseMass` (see `_metric`); ``step_jitter``: after the warmup each transition takes the adapted
    step size times a factor uniform in ``(1 - step_jitter, 1 + step_jitter)`` (`jittered`);
    ``avoid_resonance``: the adapted step size is moved out of NUTS's resonances (`clear_of_resonance`);
    "auto": only where the last long window's `gradient_nonlinearity` is below `NEARLY_GAUSSIAN` (the
    "fisher" estimator measures it; the others do not, and never move the step).
    """

    def transition(key, chain, params):
        state, info = kernel_fn(
            key, HMCState(*chain), logdensity_fn, params.step_size, _metric(params, dense_mass)
        )
        return ChainState(*state), info

    def sampling_transition(key, chain, params, sampling=True):
        # the jitter's factor comes from a key folded off the transition's: with no jitter, or in the
        # warmup, the transition's random numbers are the same as without it
        step = jittered(key, params.step_size, step_jitter, sampling)
        return transition(key, chain, params._replace(step_size=step))

    def warmup_init(key, position):
        if init == "pathfinder":
            position = pathfinder_point(key, position, logdensity_fn)
        est = _estimator(adaptation, num_dims, position.dtype, max_rank)
        chain = chain_init(position, logdensity_fn)
        mm_state, imm, factors = est.init(chain.logdensity_grad)
        step_size = jnp.asarray(1.0, position.dtype)
        params = HMCParams(step_size, imm, factors)
        return WindowState(chain, dual_averaging_init(step_size), mm_state, params)

    def warmup_step(key, ws, row):
        # the window ends (``row[1]``) are `window_end`'s, a program of its own: the estimators' linear
        # algebra inside this scanned step doubled its compile time (a first run's long pole)
        est = _estimator(adaptation, num_dims, ws.chain.position.dtype, max_rank)
        chain, info = transition(key, ws.chain, ws.params)
        accept = jnp.where(jnp.isfinite(info.acceptance_rate), info.acceptance_rate, 0.0)
        da_state = dual_averaging_update(ws.step_size_state, accept, target_accept)
        mm_state = jax.lax.cond(
            row[0] == 1, lambda s: est.update(s, chain), lambda s: s, ws.mass_matrix_state
        )
        params = ws.params._replace(step_size=jnp.exp(da_state.log_step_size))
        stats = stats_fn(chain, info, params)
        return WindowState(chain, da_state, mm_state, params), stats

    def window_end(ws):
        return end_window(ws, adaptation=adaptation, num_dims=num_dims, max_rank=max_rank)

    def warmup_finish(ws):
        step_size = jnp.exp(ws.step_size_state.log_step_size_avg)
        if avoid_resonance == "auto":
            est = _estimator(adaptation, num_dims, ws.chain.position.dtype, max_rank)
            gaussian = est.nonlinearity(ws.mass_matrix_state) < NEARLY_GAUSSIAN
            step_size = jnp.where(gaussian, clear_of_resonance(step_size), step_size)
        elif avoid_resonance:
            step_size = clear_of_resonance(step_size)
        return ws.chain, ws.params._replace(step_size=step_size)

    # one program for both phases (`PhaseStep`): the loop carries the chain, the dual-averaging
    # state and the step size; the metric and the estimator's state stay outside it
    def split(ws):
        return (ws.chain, ws.step_size_state, ws.params.step_size), ws

    def phase_step(key, carry, ws, adapt):
        chain, da_state, step_size = carry
        params = ws.params._replace(step_size=step_size)
        chain, info = sampling_transition(key, chain, params, jnp.logical_not(adapt))
        accept = jnp.where(jnp.isfinite(info.acceptance_rate), info.acceptance_rate, 0.0)
        updated = dual_averaging_update(da_state, accept, target_accept)
        da_state = jax.tree.map(lambda new, old: jnp.where(adapt, new, old), updated, da_state)
        step_size = jnp.where(adapt, jnp.exp(da_state.log_step_size), step_size)
        stats = stats_fn(chain, info, params._replace(step_size=step_size))
        return (chain, da_state, step_size), stats

    def join(carry, ws):
        chain, da_state, step_size = carry
        return WindowState(chain, da_state, ws.mass_matrix_state, ws.params._replace(step_size=step_size))

    def absorb(ws, records, mask):
        est = _estimator(adaptation, num_dims, ws.chain.position.dtype, max_rank)
        zero = jnp.zeros((), ws.chain.position.dtype)

        def push(state, row):
            (position, grad), keep = row
            chain = ChainState(position, zero, grad)
            return jax.lax.cond(keep, lambda s: est.update(s, chain), lambda s: s, state), None

        mm_state, _ = jax.lax.scan(push, ws.mass_matrix_state, (records, mask))
        return ws._replace(mass_matrix_state=mm_state)

    phases = PhaseStep(
        split,
        phase_step,
        lambda carry: (carry[0].position, (carry[0].position, carry[0].logdensity_grad)),
        join,
        absorb,
    )

    def step(key, chain, params):
        chain, info = sampling_transition(key, chain, params)
        return chain, stats_fn(chain, info, params)

    return Kernel(
        warmup_init,
        warmup_step,
        warmup_finish,
        step,
        lambda chain: chain.position,
        lambda ws: ws.chain.position,
        window_end,
        phases,
    )


class WindowedSampler:
    """What the windowed samplers share: Stan's window schedule, no size or chain-count needs."""

    ensemble: ClassVar[bool] = False
    approximate: ClassVar[bool] = False
    size_fields: ClassVar[tuple[str, ...]] = ()
    # its kernels have a `Kernel.window_end`, which the driver runs as a program of its own
    window_program: ClassVar[bool] = True
    # and a `Kernel.phase_step`: one program warms up and samples
    phase_states: ClassVar[PhaseStates] = PhaseStates(
        lambda template, chain, params: template._replace(chain=chain, params=params),
        lambda ws: ws.chain,
        lambda chain: chain.position,
    )

    def schedule(self, tune: int) -> np.ndarray:
        return window_schedule(tune)

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        return None

    def metric_kind(self, num_dims: int) -> str:
        """The mass matrix this config uses for a model of ``num_dims`` unconstrained dimensions."""
        return metric_kind(self.adaptation, num_dims)  # type: ignore[attr-defined]

    def estimator(self, num_dims: int) -> tuple[str, int]:
        """The kernel's ``adaptation`` (the estimator: `metric_kind`, which a sampler may refine) and
        its low-rank ``max_rank``, for a model of ``num_dims`` dimensions."""
        return self.metric_kind(num_dims), 10

    def end_window(self, ws: WindowState, num_dims: int) -> WindowState:
        """`end_window` of a state of NumPy arrays, one chain's or several stacked on a leading axis,
        with this config's estimator; builds no kernel (so imports no Blackjax)."""
        kind, rank = self.estimator(num_dims)
        if ws.chain.position.ndim == 1:
            return end_window(ws, adaptation=kind, num_dims=num_dims, max_rank=rank)
        chains = [
            end_window(
                jax.tree.map(partial(_row, i=i), ws), adaptation=kind, num_dims=num_dims, max_rank=rank
            )
            for i in range(ws.chain.position.shape[0])
        ]
        return jax.tree.map(lambda *xs: np.stack(xs), *chains)
