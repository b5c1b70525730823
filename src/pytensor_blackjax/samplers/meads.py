"""MEADS: generalized HMC whose step size, damping and scales are tuned across folds of many chains.

References:
    Hoffman & Sountsov (2022), Tuning-free generalized Hamiltonian Monte Carlo. AISTATS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple

import jax
import jax.numpy as jnp

from pytensor_blackjax.samplers._base import RunSize
from pytensor_blackjax.samplers._options import check_int
from pytensor_blackjax.samplers._start import DEFAULT_RADIUS, check_start, ensemble_points
from pytensor_blackjax.samplers._tuned import EnsembleTuned

__all__ = ["MEADS"]

MIN_CHAINS_PER_FOLD = 8  # each fold estimates scales and a largest eigenvalue from its own chains


class MEADSParams(NamedTuple):
    step_size: jax.Array
    momentum_inverse_scale: jax.Array
    alpha: jax.Array
    delta: jax.Array


@dataclass(frozen=True)
class MEADS(EnsembleTuned):
    """MEADS: generalized HMC (one leapfrog step, persistent momentum) tuned without user input.

    The chains are split into ``num_folds`` folds; each fold's parameters come from the statistics of
    another fold's chains, so every fold needs a population of its own: at least 8 chains per fold,
    i.e. ``chains >= 8 * num_folds`` (32 with the default 4 folds), and ``chains`` a multiple of
    ``num_folds``. With fewer, the per-fold standard deviations and eigenvalue estimates are
    degenerate (one chain per fold gives NaN step sizes), so `check` refuses.

    Args:
        num_folds: folds of chains (the paper's default is 4).
        init: "pathfinder" (default: each chain starts from a draw of a Pathfinder fit started at the
            driver's point) or "random" (the driver's uniform(-init_radius, init_radius) point in
            unconstrained space). The folds' scales and step sizes come from their chains' spread and
            gradients, so chains left far out shrink the step size and inflate the scales of every
            chain; from a cold start the warmup can then blow up (chains flung out, step size 0).
            Pathfinder starts them in the bulk.
        init_radius: the driver's points are uniform in (-init_radius, init_radius) in unconstrained space.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.MEADS(num_folds=4)
    """

    num_folds: int = 4
    init: Literal["random", "pathfinder"] = "pathfinder"
    init_radius: float = DEFAULT_RADIUS
    name: ClassVar[str] = "meads"
    size_fields = ("tune", "chains")
    # the momentum persists between draws, so the energy's draw-to-draw changes are small by design:
    # E-BFMI computed from it would flag a healthy chain
    hidden_stats = ("energy",)

    def __post_init__(self):
        check_int("MEADS", "num_folds", self.num_folds, 1, 64)
        check_start("MEADS", self.init_radius, self.init)

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        needed = MIN_CHAINS_PER_FOLD * self.num_folds
        if chains < needed or chains % self.num_folds:
            raise ValueError(
                f"MEADS adapts across {self.num_folds} folds of chains and needs at least "
                f"{MIN_CHAINS_PER_FOLD} chains per fold: chains={chains} will not work; give chains={needed} "
                f"or more, a multiple of num_folds={self.num_folds} (e.g. 32, 64, 128), "
                "or use sampler='nuts', which adapts each chain on its own."
            )
        self.check_warmup(tune)

    def kernel(self, size: RunSize):
        from blackjax.mcmc import ghmc

        return ghmc.build_kernel()

    def init_states(self, key, positions, logdensity_fn, chains):
        from blackjax.mcmc import ghmc

        key, start_key = jax.random.split(key)
        positions = ensemble_points(start_key, positions, logdensity_fn, self.init)
        keys = jax.random.split(key, chains)
        return jax.vmap(lambda p, k: ghmc.init(p, logdensity_fn, k))(positions, keys)

    def tuner(self, logdensity_fn, num_dims, size):
        import blackjax
        from blackjax.adaptation.base import get_filter_adapt_info_fn

        warmup = blackjax.meads_adaptation(
            logdensity_fn,
            size.chains,
            num_folds=self.num_folds,
            adaptation_info_fn=get_filter_adapt_info_fn(),
        )

        def tune(key, states):
            (states, params), _ = warmup.run(key, states.position, size.tune)
            return states, MEADSParams(
                jnp.asarray(params["step_size"]),
                jnp.broadcast_to(params["momentum_inverse_scale"], (num_dims,)),
                jnp.asarray(params["alpha"]),
                jnp.asarray(params["delta"]),
            )

        return tune

    def kernel_args(self, params):
        return (params.momentum_inverse_scale, params.alpha, params.delta), {}
