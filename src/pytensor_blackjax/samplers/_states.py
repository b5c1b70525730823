"""Blackjax's HMC state and NUTS info, as NamedTuples of the same fields in the same order.

The default NUTS (`_nuts_kernel` with the dense metric, `_windowed`'s warmup) runs none of Blackjax's
code: the types of its state and info were all it took from Blackjax, and importing Blackjax to get them
(its package imports every sampler, optax through its CHEES adaptation and SciPy's FFT through its
diagnostics) put 0.15-0.3 s on the critical path of every first run. Blackjax's kernels read these by
field (``state.position``), so they take these as they take their own; `tests/test_states.py` checks
the fields against Blackjax's classes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["HMCState", "IntegratorState", "NUTSInfo"]


class IntegratorState(NamedTuple):
    """``blackjax.mcmc.integrators.IntegratorState``: a point of a trajectory."""

    position: Any
    momentum: Any
    logdensity: Any
    logdensity_grad: Any


class HMCState(NamedTuple):
    """``blackjax.mcmc.hmc.HMCState``: a chain's position with its log-density and gradient."""

    position: Any
    logdensity: Any
    logdensity_grad: Any


class NUTSInfo(NamedTuple):
    """``blackjax.mcmc.nuts.NUTSInfo``: what a NUTS transition reports."""

    momentum: Any
    is_divergent: Any
    is_turning: Any
    energy: Any
    trajectory_leftmost_state: IntegratorState
    trajectory_rightmost_state: IntegratorState
    num_trajectory_expansions: Any
    num_integration_steps: Any
    acceptance_rate: Any
