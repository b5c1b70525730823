"""Warmup for samplers whose Blackjax tuner is one call (MCLMC, adjusted MCLMC, ChEES, MEADS, Pathfinder).

Blackjax runs these tuners as a single compiled loop over all warmup steps, so they cannot be cut
into the driver's chunks without rewriting them. The whole tuner runs at the first warmup row; the
other rows do nothing. Progress therefore jumps once, and Ctrl-C during warmup takes effect when the
tuner has finished.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.samplers._base import Kernel
from pytensor_blackjax.samplers.nuts import _pathfinder_start

__all__ = ["TunedState", "ensemble_start", "one_call_kernel", "one_call_schedule"]


class TunedState(NamedTuple):
    state: Any  # the sampler's Blackjax state (one chain, or all chains for ensemble samplers)
    params: Any  # a NamedTuple of arrays: the tuned parameters


def one_call_schedule(tune: int) -> np.ndarray:
    """Rows ``(run_tuner,)``: 1 at the first warmup step, 0 elsewhere."""
    rows = np.zeros((tune, 1), dtype=np.int32)
    if tune:
        rows[0, 0] = 1
    return rows


def ensemble_start(key, positions, logdensity_fn, init: str):
    """The chains' starting points: the driver's (``init="random"``), or one draw per chain from a
    Pathfinder fit started at each of them (``"pathfinder"``; a chain keeps its point if its fit fails).

    Ensemble tuners pool statistics over all chains, so a few chains that start far out, where every
    proposal is rejected, drag every chain's parameters; Pathfinder puts the chains near the bulk.
    """
    if init != "pathfinder":
        return positions
    keys = jax.random.split(key, positions.shape[0])
    return jax.vmap(lambda k, x: _pathfinder_start(k, x, logdensity_fn))(keys, positions)


def one_call_kernel(
    *,
    init: Callable[[jax.Array, jax.Array], Any],
    tune: Callable[[jax.Array, Any], tuple[Any, Any]],
    step: Callable[[jax.Array, Any, Any], tuple[Any, dict[str, jax.Array]]],
    position: Callable[[Any], jax.Array],
) -> Kernel:
    """A `Kernel` whose warmup is ``tune(key, state) -> (state, params)``, run once.

    ``params`` must be a pytree of arrays (no functions), so that it can be checkpointed.
    """

    def warmup_init(key, start):
        state = init(key, start)
        # placeholder of the right structure until the tuner has run (it always runs when tune > 0)
        shapes = jax.eval_shape(tune, key, state)
        state = jax.tree.map(lambda x, s: jnp.asarray(x, s.dtype), state, shapes[0])
        params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes[1])
        return TunedState(state, params)

    def warmup_step(key, ws, row):
        def run(w):
            new_state, params = tune(key, w.state)
            return TunedState(
                jax.tree.map(lambda x, old: jnp.asarray(x, old.dtype), new_state, w.state),
                jax.tree.map(lambda x, old: jnp.asarray(x, old.dtype), params, w.params),
            )

        return jax.lax.cond(row[0] == 1, run, lambda w: w, ws), {}

    def warmup_finish(ws):
        return ws.state, ws.params

    return Kernel(warmup_init, warmup_step, warmup_finish, step, position)
