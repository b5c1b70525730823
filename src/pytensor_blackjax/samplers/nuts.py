"""No-U-Turn Sampler with Stan-style windowed warmup (step size by dual averaging, mass matrix).

References:
    Hoffman & Gelman (2014), The No-U-Turn Sampler. JMLR 15.
    Stan Reference Manual, "HMC algorithm parameters" (warmup windows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.mass_matrix import mass_matrix_adaptation
from blackjax.adaptation.step_size import dual_averaging_adaptation
from blackjax.adaptation.window_adaptation import build_schedule

from pytensor_blackjax.samplers._base import Kernel, rename_info

__all__ = ["NUTS"]

DENSE_MAX_DIMS = 200  # "auto" uses a dense mass matrix up to this many unconstrained dimensions


class HMCParams(NamedTuple):
    step_size: jax.Array
    inverse_mass_matrix: jax.Array


class WindowState(NamedTuple):
    chain: Any  # blackjax HMCState
    step_size_state: Any
    mass_matrix_state: Any
    params: HMCParams


def window_schedule(tune: int) -> np.ndarray:
    """Stan's warmup schedule as rows ``(stage, is_window_end)``: stage 0 fast, 1 slow."""
    if tune == 0:
        return np.zeros((0, 2), dtype=np.int32)
    return np.asarray(build_schedule(tune), dtype=np.int32).reshape(tune, 2)


def windowed_hmc_kernel(
    kernel_fn, logdensity_fn, num_dims: int, *, target_accept: float, dense: bool, stats_fn
) -> Kernel:
    """Warmup and step for any kernel with the signature ``(key, state, logdensity, step_size, imm)``.

    ``stats_fn(state, info, params)`` gives the per-draw stats dict.
    """
    mm_init, mm_update, mm_final = mass_matrix_adaptation(is_diagonal_matrix=not dense)
    da_init, da_update, da_final = dual_averaging_adaptation(target_accept)

    def warmup_init(key, position):
        del key
        mm_state = mm_init(num_dims)
        return WindowState(
            blackjax.nuts.init(position, logdensity_fn),
            da_init(1.0),
            mm_state,
            HMCParams(jnp.asarray(1.0, position.dtype), mm_state.inverse_mass_matrix),
        )

    def warmup_step(key, ws, row):
        chain, info = kernel_fn(key, ws.chain, logdensity_fn, ws.params.step_size, ws.params.inverse_mass_matrix)
        accept = jnp.where(jnp.isfinite(info.acceptance_rate), info.acceptance_rate, 0.0)
        da_state = da_update(ws.step_size_state, accept)
        mm_state = jax.lax.cond(row[0] == 1, lambda s: mm_update(s, chain.position), lambda s: s,
                                ws.mass_matrix_state)
        params = HMCParams(jnp.exp(da_state.log_step_size), ws.params.inverse_mass_matrix)

        def window_end(args):
            da_state, mm_state, params = args
            mm_state = mm_final(mm_state)
            da_state = da_init(da_final(da_state))
            return da_state, mm_state, HMCParams(jnp.exp(da_state.log_step_size), mm_state.inverse_mass_matrix)

        da_state, mm_state, params = jax.lax.cond(row[1] == 1, window_end, lambda a: a,
                                                  (da_state, mm_state, params))
        stats = stats_fn(chain, info, params)
        return WindowState(chain, da_state, mm_state, params), stats

    def warmup_finish(ws):
        step_size = jnp.exp(ws.step_size_state.log_step_size_avg)
        return ws.chain, HMCParams(step_size, ws.params.inverse_mass_matrix)

    def step(key, chain, params):
        chain, info = kernel_fn(key, chain, logdensity_fn, params.step_size, params.inverse_mass_matrix)
        return chain, stats_fn(chain, info, params)

    return Kernel(warmup_init, warmup_step, warmup_finish, step, lambda chain: chain.position)


@dataclass(frozen=True)
class NUTS:
    """The No-U-Turn Sampler with Stan-style window adaptation.

    Args:
        target_accept: the average acceptance probability the step size is tuned to (0 < x < 1).
        max_tree_depth: at most 2**max_tree_depth leapfrog steps per draw.
        adaptation: mass matrix: "diag", "dense", or "auto" (dense up to 200 dimensions, else diag).
        init: "random" (uniform(-2, 2) in unconstrained space).

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.NUTS(target_accept=0.9, max_tree_depth=8)
    """

    target_accept: float = 0.8
    max_tree_depth: int = 10
    adaptation: Literal["auto", "diag", "dense"] = "auto"
    init: Literal["random"] = "random"
    name = "nuts"
    ensemble = False
    approximate = False

    def __post_init__(self):
        if not 0.0 < float(self.target_accept) < 1.0:
            raise ValueError(f"NUTS(target_accept={self.target_accept!r}): give a number strictly between 0 and 1.")
        if isinstance(self.max_tree_depth, bool) or not isinstance(self.max_tree_depth, int) \
                or not 1 <= self.max_tree_depth <= 20:
            raise ValueError(f"NUTS(max_tree_depth={self.max_tree_depth!r}): give an integer from 1 to 20.")
        if self.adaptation not in ("auto", "diag", "dense"):
            raise ValueError(f"NUTS(adaptation={self.adaptation!r}): use 'auto', 'diag' or 'dense'.")
        if self.init not in ("random",):
            raise ValueError(f"NUTS(init={self.init!r}): use 'random'.")

    def schedule(self, tune: int) -> np.ndarray:
        return window_schedule(tune)

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        return None

    def dense(self, num_dims: int) -> bool:
        return self.adaptation == "dense" or (self.adaptation == "auto" and num_dims <= DENSE_MAX_DIMS)

    def build(self, logdensity_fn, num_dims: int) -> Kernel:
        base = blackjax.nuts.build_kernel()
        max_depth = self.max_tree_depth

        def kernel_fn(key, state, logdensity, step_size, imm):
            return base(key, state, logdensity, step_size, imm, max_num_doublings=max_depth)

        def stats_fn(state, info, params):
            depth = info.num_trajectory_expansions
            return rename_info(
                info,
                lp=state.logdensity,
                step_size=params.step_size,
                reached_max_treedepth=depth >= max_depth,
            )

        return windowed_hmc_kernel(kernel_fn, logdensity_fn, num_dims, target_accept=self.target_accept,
                                   dense=self.dense(num_dims), stats_fn=stats_fn)
