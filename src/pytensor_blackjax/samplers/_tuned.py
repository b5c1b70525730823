"""Warmup for samplers whose Blackjax tuner is one call (MCLMC, adjusted MCLMC, ChEES, MEADS, Pathfinder).

Blackjax runs these tuners as a single compiled loop over all warmup steps, so they cannot be cut
into the driver's chunks without rewriting them. The whole tuner runs at the first warmup row; the
other rows do nothing. Progress therefore jumps once, and Ctrl-C during warmup takes effect when the
tuner has finished.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.samplers._base import Kernel, RunSize, rename_info

__all__ = ["EnsembleTuned", "TunedState", "one_call_kernel", "one_call_schedule"]


class TunedState(NamedTuple):
    state: Any  # the sampler's Blackjax state (one chain, or all chains for ensemble samplers)
    params: Any  # a NamedTuple of arrays: the tuned parameters


def one_call_schedule(tune: int) -> np.ndarray:
    """Rows ``(run_tuner,)``: 1 at the first warmup step, 0 elsewhere."""
    rows = np.zeros((tune, 1), dtype=np.int32)
    if tune:
        rows[0, 0] = 1
    return rows


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


class EnsembleTuned:
    """What ChEES and MEADS share: a Blackjax tuner run once over all chains, which then step in
    lock-step, each with its own key. A subclass gives `kernel`, `init_states`, `tuner` and `kernel_args`.
    """

    ensemble: ClassVar[bool] = True
    approximate: ClassVar[bool] = False
    tuned_what: ClassVar[str] = "its parameters"  # for the message when there is no warmup
    hidden_stats: ClassVar[tuple[str, ...]] = ()  # stats not reported (misleading for this sampler)

    def schedule(self, tune: int) -> np.ndarray:
        return one_call_schedule(tune)

    def check_warmup(self, tune: int) -> None:
        if tune < 1:
            raise ValueError(
                f"{type(self).__name__} needs warmup to tune {self.tuned_what}: tune=0; "
                "give tune >= 200 (the default 1000 is a good start)."
            )

    def kernel(self, size: RunSize) -> Any:
        raise NotImplementedError

    def init_states(self, key, positions, logdensity_fn, chains: int) -> Any:
        raise NotImplementedError

    def tuner(self, logdensity_fn, num_dims: int, size: RunSize) -> Callable[[Any, Any], tuple[Any, Any]]:
        """``(key, states) -> (states, params)``: Blackjax's tuner over all chains."""
        raise NotImplementedError

    def kernel_args(self, params) -> tuple[tuple, dict[str, Any]]:
        """A chain's kernel arguments after ``(key, state, logdensity_fn, step_size)``."""
        raise NotImplementedError

    def build(self, logdensity_fn, num_dims: int, size: RunSize) -> Kernel:
        chains, kernel = size.chains, self.kernel(size)

        def init(key, positions):
            return self.init_states(key, positions, logdensity_fn, chains)

        def step(key, states, params):
            keys = jax.random.split(key, chains)
            args, kwargs = self.kernel_args(params)

            def one(k, s):
                return kernel(k, s, logdensity_fn, params.step_size, *args, **kwargs)

            states, info = jax.vmap(one)(keys, states)
            stats = rename_info(info, lp=states.logdensity, step_size=params.step_size)
            for name in self.hidden_stats:
                stats.pop(name, None)
            return states, stats

        tune = self.tuner(logdensity_fn, num_dims, size)
        return one_call_kernel(init=init, tune=tune, step=step, position=lambda s: s.position)
