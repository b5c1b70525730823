"""MEADS: generalized HMC whose step size, damping and scales are tuned across folds of many chains.

References:
    Hoffman & Sountsov (2022), Tuning-free generalized Hamiltonian Monte Carlo. AISTATS.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.samplers._base import Kernel, rename_info
from pytensor_blackjax.samplers._options import check_choice, check_int
from pytensor_blackjax.samplers._tuned import ensemble_start, one_call_kernel, one_call_schedule

__all__ = ["MEADS"]

MIN_CHAINS_PER_FOLD = 8  # each fold estimates scales and a largest eigenvalue from its own chains


class MEADSParams(NamedTuple):
    step_size: jax.Array
    momentum_inverse_scale: jax.Array
    alpha: jax.Array
    delta: jax.Array


@dataclass(frozen=True)
class MEADS:
    """MEADS: generalized HMC (one leapfrog step, persistent momentum) tuned without user input.

    The chains are split into ``num_folds`` folds; each fold's parameters come from the statistics of
    another fold's chains, so every fold needs a population of its own: at least 8 chains per fold,
    i.e. ``chains >= 8 * num_folds`` (32 with the default 4 folds), and ``chains`` a multiple of
    ``num_folds``. With fewer, the per-fold standard deviations and eigenvalue estimates are
    degenerate (one chain per fold gives NaN step sizes), so `check` refuses.

    Args:
        num_folds: folds of chains (the paper's default is 4).
        init: "pathfinder" (default: each chain starts from a draw of a Pathfinder fit started at the
            driver's point) or "random" (the driver's uniform(-2, 2) point in unconstrained space).
            The folds' scales and step sizes come from their chains' spread and gradients, so chains
            left far out shrink the step size and inflate the scales of every chain; from a cold start
            the warmup can then blow up (chains flung out, step size 0). Pathfinder starts them in
            the bulk.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.MEADS(num_folds=4)
    """

    num_folds: int = 4
    init: Literal["random", "pathfinder"] = "pathfinder"
    # (draws, tune, chains), set by the driver
    sizes: tuple[int, int, int] = field(default=(0, 0, 0), repr=False)
    name = "meads"
    ensemble = True
    approximate = False

    def __post_init__(self):
        check_int("MEADS", "num_folds", self.num_folds, 1, 64)
        check_choice("MEADS", "init", self.init, ("random", "pathfinder"))

    def sized(self, *, draws: int, tune: int, chains: int) -> MEADS:
        return replace(self, sizes=(draws, tune, chains))

    def schedule(self, tune: int) -> np.ndarray:
        return one_call_schedule(tune)

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        needed = MIN_CHAINS_PER_FOLD * self.num_folds
        if chains < needed or chains % self.num_folds:
            raise ValueError(
                f"MEADS adapts across {self.num_folds} folds of chains and needs at least "
                f"{MIN_CHAINS_PER_FOLD} chains per fold: chains={chains} will not work; give chains={needed} "
                f"or more, a multiple of num_folds={self.num_folds} (e.g. 32, 64, 128), "
                "or use sampler='nuts', which adapts each chain on its own."
            )
        if tune < 1:
            raise ValueError(
                "MEADS needs warmup to tune its parameters: tune=0; give tune >= 200 "
                "(the default 1000 is a good start)."
            )

    def build(self, logdensity_fn, num_dims: int) -> Kernel:
        import blackjax
        from blackjax.adaptation.base import get_filter_adapt_info_fn
        from blackjax.mcmc import ghmc

        _, num_tune, chains = self.sizes
        kernel = ghmc.build_kernel()
        warmup = blackjax.meads_adaptation(
            logdensity_fn, chains, num_folds=self.num_folds, adaptation_info_fn=get_filter_adapt_info_fn()
        )

        def init(key, positions):
            key, start_key = jax.random.split(key)
            positions = ensemble_start(start_key, positions, logdensity_fn, self.init)
            keys = jax.random.split(key, chains)
            return jax.vmap(lambda p, k: ghmc.init(p, logdensity_fn, k))(positions, keys)

        def tune(key, states):
            (states, params), _ = warmup.run(key, states.position, num_tune)
            return states, MEADSParams(
                jnp.asarray(params["step_size"]),
                jnp.broadcast_to(params["momentum_inverse_scale"], (num_dims,)),
                jnp.asarray(params["alpha"]),
                jnp.asarray(params["delta"]),
            )

        def step(key, states, params):
            keys = jax.random.split(key, chains)

            def one(k, s):
                return kernel(
                    k,
                    s,
                    logdensity_fn,
                    params.step_size,
                    params.momentum_inverse_scale,
                    params.alpha,
                    params.delta,
                )

            states, info = jax.vmap(one)(keys, states)
            stats = rename_info(info, lp=states.logdensity, step_size=params.step_size)
            # the momentum persists between draws, so the energy's draw-to-draw changes are small by
            # design: E-BFMI computed from it would flag a healthy chain
            stats.pop("energy", None)
            return states, stats

        return one_call_kernel(init=init, tune=tune, step=step, position=lambda s: s.position)
