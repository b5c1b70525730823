"""A leaner build of Blackjax's iterative NUTS transition: the same algorithm and the same random numbers,
with less control flow per leapfrog step; with Blackjax's metrics also the same arithmetic (so the same
draws).

Blackjax's `blackjax.nuts.build_kernel` composes general pieces (`trajectory.dynamic_progressive_integration`,
`termination.iterative_uturn_numpyro`, `proposal.progressive_*_sampling`) that branch with ``lax.cond``
on every leapfrog step: whether it is the first step of a subtree, whether the new state is taken as
the proposal, whether the U-turn checkpoints are written. On a CPU each branch is a conditional whose
operands (whole states) are copied in and out. Here the branches are selects over values both sides
compute anyway, the checkpoint write is one in-place row update, and the state carried by the loops
holds only what later steps read. Positions are flat vectors (our kernels' layout).

With a dense metric given as `_metric.DenseMass` the states also carry their velocity ``M^-1 p`` and
the velocity of their gradient ``M^-1 grad``: a leapfrog step then takes one matrix-vector product (of
the new gradient) where Blackjax's takes three or more (the position update's ``M^-1 p``, the kinetic
energy, and ``M^-1 rho`` in every U-turn check), since the velocities follow the momenta linearly
(``v_half = v + h u``, ``v' = v_half + h u'``), the kinetic energy is ``p' v / 2`` and a U-turn check
is two dot products with stored velocities. The same algorithm and random numbers; the arithmetic
differs from Blackjax's in rounding (the velocities accumulate the products in another order), so the
draws agree with Blackjax's to rounding (~1e-14 in float64 over 60 transitions), not bit for bit.

The kernel keeps Blackjax's interface: ``kernel(rng_key, state, logdensity_fn, step_size,
inverse_mass_matrix, max_num_doublings)`` over an ``HMCState`` (Blackjax's, or `_states`' of the same
fields), returning the state in the type it was given and a ``NUTSInfo`` of Blackjax's fields (`_states`:
with the dense metric nothing here imports Blackjax; with its metrics, its integrator and metric run
as they are).

References:
    Hoffman & Gelman (2014), The No-U-Turn Sampler. JMLR 15.
    Betancourt (2017), A Conceptual Introduction to Hamiltonian Monte Carlo (multinomial sampling).
    Phan, Pradhan & Jankowiak (2019), Composable effects for flexible and accelerated probabilistic
    programming in NumPyro (the iterative tree building and its U-turn checkpoints).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from pytensor_blackjax.samplers._metric import DenseMass
from pytensor_blackjax.samplers._states import IntegratorState, NUTSInfo

__all__ = ["build_kernel"]


class _DenseState(NamedTuple):
    """`IntegratorState` with the velocities of the momentum and of the gradient (dense metric)."""

    position: jax.Array
    momentum: jax.Array
    logdensity: jax.Array
    logdensity_grad: jax.Array
    velocity: jax.Array
    grad_velocity: jax.Array


class _Proposal(NamedTuple):
    state: tuple  # IntegratorState
    energy: jax.Array
    weight: jax.Array
    sum_log_p_accept: jax.Array


class _Subtree(NamedTuple):
    """The loop state of one subtree's integration (Blackjax's `DynamicIntegrationState`)."""

    step: jax.Array
    proposal: _Proposal
    rightmost: tuple  # IntegratorState: the last one integrated (the merge needs no other end)
    momentum_sum: jax.Array
    end_ckpts: object  # rows of `_Dynamics.end`
    momentum_sum_ckpts: jax.Array
    is_diverging: jax.Array
    has_terminated: jax.Array


class _Expansion(NamedTuple):
    step: jax.Array
    proposal: _Proposal
    leftmost: tuple
    rightmost: tuple
    momentum_sum: jax.Array
    num_states: jax.Array
    end_ckpts: object
    momentum_sum_ckpts: jax.Array
    is_diverging: jax.Array
    is_turning: jax.Array


def _select(pred, on_true, on_false):
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _energy_diff(initial_energy, new_energy):
    delta = initial_energy - new_energy
    return jnp.where(jnp.isnan(delta), -jnp.inf, delta)


def _ckpt_idxs(n):
    """Blackjax's `_leaf_idx_to_ckpt_idxs`: the checkpoints the U-turn checks after leaf ``n`` span."""
    idx_max = jnp.bitwise_count(n >> 1).astype(jnp.int32)
    num_subtrees = jnp.bitwise_count((~n & (n + 1)) - 1).astype(jnp.int32)
    return idx_max - num_subtrees + 1, idx_max


class _Dynamics(NamedTuple):
    """How the kernel moves and measures states: Blackjax's metric and integrator, or the dense
    metric with cached velocities. ``end`` is what a U-turn check needs of a trajectory's end (the
    momentum, or the momentum and its velocity), the rows kept in the checkpoints."""

    start: Callable  # (momentum key, position, logdensity, grad) -> state
    step: Callable  # (state, signed step size) -> state
    kinetic_energy: Callable  # state -> kinetic energy
    end: Callable  # state -> end
    end_momentum: Callable  # end -> its momentum
    is_turning: Callable  # (left end, right end, momentum sum) -> bool


def _blackjax_dynamics(logdensity_fn, inverse_mass_matrix) -> _Dynamics:
    from blackjax.mcmc import integrators, metrics

    metric = metrics.default_metric(inverse_mass_matrix)
    integrator = integrators.velocity_verlet(logdensity_fn, metric.kinetic_energy)

    def start(key, position, logdensity, grad):
        momentum = metric.sample_momentum(key, position)
        return integrators.IntegratorState(position, momentum, logdensity, grad)

    return _Dynamics(
        start,
        integrator,
        lambda s: metric.kinetic_energy(s.momentum, position=s.position),
        lambda s: s.momentum,
        lambda end: end,
        metric.check_turning,
    )


def _dense_dynamics(logdensity_fn, mass: DenseMass) -> _Dynamics:
    imm, chol, mass_sqrt = mass.inverse_mass_matrix, mass.factors.chol, mass.factors.mass_sqrt
    value_and_grad = jax.value_and_grad(logdensity_fn)

    def start(key, position, logdensity, grad):
        z = jax.random.normal(key, position.shape, position.dtype)
        # p = L^-T z ~ N(0, M), whose velocity M^-1 p is L z
        return _DenseState(position, mass_sqrt @ z, logdensity, grad, chol @ z, imm @ grad)

    def step(s: _DenseState, step_size) -> _DenseState:
        # velocity Verlet; every velocity is M^-1 of its momentum, up to rounding
        half = step_size * 0.5
        momentum = s.momentum + half * s.logdensity_grad
        velocity = s.velocity + half * s.grad_velocity
        position = s.position + step_size * velocity
        logdensity, grad = value_and_grad(position)
        grad_velocity = imm @ grad
        return _DenseState(
            position,
            momentum + half * grad,
            logdensity,
            grad,
            velocity + half * grad_velocity,
            grad_velocity,
        )

    def kinetic_energy(s: _DenseState):
        energy = 0.5 * jnp.dot(s.momentum, s.velocity)
        # an overflowed momentum can give -inf (terms of both signs) or NaN: an impossible state,
        # which must not look like one of infinite probability
        return jnp.where(jnp.isnan(energy) | (energy == -jnp.inf), jnp.inf, energy)

    def is_turning(left, right, momentum_sum):
        rho = momentum_sum - (right[0] + left[0]) / 2
        return (jnp.dot(left[1], rho) <= 0) | (jnp.dot(right[1], rho) <= 0)

    return _Dynamics(
        start, step, kinetic_energy, lambda s: (s.momentum, s.velocity), lambda end: end[0], is_turning
    )


def build_kernel(divergence_threshold: float = 1000):
    """Blackjax's iterative NUTS kernel (velocity Verlet, multinomial sampling, Numpyro-style U-turn
    checks) with the same signature and results as ``blackjax.nuts.build_kernel()``; a
    `_metric.DenseMass` as ``inverse_mass_matrix`` caches velocities (see the module's docstring)."""

    def kernel(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix, max_num_doublings=10):
        if isinstance(inverse_mass_matrix, DenseMass):
            dynamics = _dense_dynamics(logdensity_fn, inverse_mass_matrix)
        else:
            dynamics = _blackjax_dynamics(logdensity_fn, inverse_mass_matrix)
        integrator, check_turning, end_momentum = dynamics.step, dynamics.is_turning, dynamics.end_momentum

        def energy(s):
            return -s.logdensity + dynamics.kinetic_energy(s)

        def new_proposal(initial_energy, s):
            e = energy(s)
            delta = _energy_diff(initial_energy, e)
            return _Proposal(s, e, delta, jnp.minimum(delta, 0.0))

        def is_iterative_turning(ckpts, r_sum_ckpts, r_sum, end, idx_min, idx_max):
            def body(carry):
                i, _ = carry
                ckpt = jax.tree.map(lambda c: c[i], ckpts)
                subtree_r_sum = r_sum - r_sum_ckpts[i] + end_momentum(ckpt)
                return i - 1, check_turning(ckpt, end, subtree_r_sum)

            _, turning = jax.lax.while_loop(
                lambda c: (c[0] >= idx_min) & ~c[1], body, (idx_max, jnp.asarray(False))
            )
            return turning

        def integrate(key, start, direction, exp, max_num_steps, initial_energy):
            """Blackjax's `dynamic_progressive_integration` for one subtree of ``max_num_steps``."""

            def add_one_state(sub: _Subtree) -> _Subtree:
                step = sub.step
                new_state = integrator(sub.rightmost, direction * step_size)
                proposal = new_proposal(initial_energy, new_state)
                is_diverging = -proposal.weight > divergence_threshold
                first = step == 0
                # progressive uniform sampling; on the first step the new state is the proposal
                old = sub.proposal
                p_accept = jax.scipy.special.expit(proposal.weight - old.weight)
                do_accept = jax.random.bernoulli(jax.random.fold_in(key, step), p_accept)
                # the weights selected here are replaced just below: placeholders (Python floats keep
                # the compiled program, and so the draws, as they were)
                sampled = _select(
                    do_accept,
                    _Proposal(proposal.state, proposal.energy, 0.0, 0.0),  # type: ignore[arg-type]
                    _Proposal(old.state, old.energy, 0.0, 0.0),  # type: ignore[arg-type]
                )
                sampled = _Proposal(
                    sampled.state,
                    sampled.energy,
                    jnp.logaddexp(old.weight, proposal.weight),
                    jnp.logaddexp(old.sum_log_p_accept, proposal.sum_log_p_accept),
                )
                sampled = _select(first, proposal, sampled)
                momentum_sum = jnp.where(first, new_state.momentum, sub.momentum_sum + new_state.momentum)
                # the checkpoints are written after even leaves (the first of each pair) only
                idx_min, idx_max = _ckpt_idxs(step)
                even = step % 2 == 0
                end = dynamics.end(new_state)
                ckpts = jax.tree.map(
                    lambda c, e: c.at[idx_max].set(jnp.where(even, e, c[idx_max])), sub.end_ckpts, end
                )
                r_sum_ckpts = sub.momentum_sum_ckpts.at[idx_max].set(
                    jnp.where(even, momentum_sum, sub.momentum_sum_ckpts[idx_max])
                )
                has_terminated = is_iterative_turning(ckpts, r_sum_ckpts, momentum_sum, end, idx_min, idx_max)
                return _Subtree(
                    step + 1,
                    sampled,
                    new_state,
                    momentum_sum,
                    ckpts,
                    r_sum_ckpts,
                    is_diverging,
                    has_terminated,
                )

            def keep_integrating(sub: _Subtree):
                return (sub.step < max_num_steps) & ~sub.has_terminated & ~sub.is_diverging

            placeholder = new_proposal(initial_energy, start)
            sub = _Subtree(
                jnp.asarray(0),
                placeholder,
                start,
                start.momentum,
                exp.end_ckpts,
                exp.momentum_sum_ckpts,
                jnp.asarray(False),
                jnp.asarray(False),
            )
            return jax.lax.while_loop(keep_integrating, add_one_state, sub)

        def expand_once(exp: _Expansion, key_integrator, initial_energy) -> _Expansion:
            subkey = jax.random.fold_in(key_integrator, exp.step)
            direction_key, trajectory_key, proposal_key = jax.random.split(subkey, 3)
            forward = jax.random.bernoulli(direction_key)
            direction = jnp.where(forward, 1, -1)
            start = _select(forward, exp.rightmost, exp.leftmost)
            sub = integrate(trajectory_key, start, direction, exp, 2**exp.step, initial_energy)
            new = sub.proposal
            # progressive biased sampling, unless the subtree diverged or turned
            stopped = sub.is_diverging | sub.has_terminated
            p_accept = jnp.clip(jnp.exp(new.weight - exp.proposal.weight), max=1)
            do_accept = jax.random.bernoulli(proposal_key, p_accept) & ~stopped
            sum_log_p_accept = jnp.logaddexp(exp.proposal.sum_log_p_accept, new.sum_log_p_accept)
            weight = jnp.where(stopped, exp.proposal.weight, jnp.logaddexp(exp.proposal.weight, new.weight))
            taken = _select(do_accept, (new.state, new.energy), (exp.proposal.state, exp.proposal.energy))
            proposal = _Proposal(taken[0], taken[1], weight, sum_log_p_accept)
            # the subtree runs from its first state to `sub.rightmost` in the direction integrated
            leftmost = _select(forward, exp.leftmost, sub.rightmost)
            rightmost = _select(forward, sub.rightmost, exp.rightmost)
            momentum_sum = jnp.where(
                forward, exp.momentum_sum + sub.momentum_sum, sub.momentum_sum + exp.momentum_sum
            )
            is_turning = check_turning(dynamics.end(leftmost), dynamics.end(rightmost), momentum_sum)
            return _Expansion(
                exp.step + 1,
                proposal,
                leftmost,
                rightmost,
                momentum_sum,
                exp.num_states + sub.step,
                sub.end_ckpts,
                sub.momentum_sum_ckpts,
                sub.is_diverging,
                sub.has_terminated | is_turning,
            )

        key_momentum, key_integrator = jax.random.split(rng_key, 2)
        position, logdensity, logdensity_grad = state
        initial = dynamics.start(key_momentum, position, logdensity, logdensity_grad)
        momentum = initial.momentum
        initial_energy = energy(initial)
        dims = jnp.shape(position)[0]
        dtype = momentum.dtype
        exp = _Expansion(
            jnp.asarray(0),
            _Proposal(initial, initial_energy, jnp.asarray(0.0, dtype), jnp.asarray(-jnp.inf, dtype)),
            initial,
            initial,
            momentum,
            jnp.asarray(0),
            jax.tree.map(lambda e: jnp.zeros((max_num_doublings, *e.shape), e.dtype), dynamics.end(initial)),
            jnp.zeros((max_num_doublings, dims), dtype),
            jnp.asarray(False),
            jnp.asarray(False),
        )
        exp = jax.lax.while_loop(
            lambda e: (e.step < max_num_doublings) & ~e.is_diverging & ~e.is_turning,
            lambda e: expand_once(e, key_integrator, initial_energy),
            exp,
        )
        proposal = exp.proposal
        info = NUTSInfo(
            momentum,
            exp.is_diverging,
            exp.is_turning,
            proposal.energy,
            IntegratorState(*exp.leftmost[:4]),
            IntegratorState(*exp.rightmost[:4]),
            exp.step,
            exp.num_states,
            jnp.exp(proposal.sum_log_p_accept) / exp.num_states,
        )
        new_state = proposal.state
        # the caller's state type back (Blackjax's own, or `_states.HMCState`): a scan's carry stays one type
        return (
            state._replace(
                position=new_state.position,
                logdensity=new_state.logdensity,
                logdensity_grad=new_state.logdensity_grad,
            ),
            info,
        )

    return kernel
