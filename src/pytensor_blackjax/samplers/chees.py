"""ChEES-HMC: jittered HMC whose step size and trajectory length are tuned across many chains.

References:
    Hoffman, Radul & Sountsov (2021), An adaptive MCMC scheme for setting trajectory lengths in
    Hamiltonian Monte Carlo. AISTATS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.samplers._base import RunSize
from pytensor_blackjax.samplers._options import check_choice, check_int, check_positive, check_probability
from pytensor_blackjax.samplers._start import DEFAULT_RADIUS, check_start, ensemble_points
from pytensor_blackjax.samplers._tuned import EnsembleTuned

__all__ = ["ChEES"]

INITIAL_STEP_SIZE = 0.1


class ChEESParams(NamedTuple):
    step_size: jax.Array
    inverse_mass_matrix: jax.Array
    num_leapfrog_steps: jax.Array


@dataclass(frozen=True)
class ChEES(EnsembleTuned):
    """ChEES-HMC: one shared step size and trajectory length, learnt from all chains at once.

    Every chain takes the same number of leapfrog steps per draw (jittered along a Halton sequence),
    so the chains advance in lock-step: made for many chains in one vectorised program (GPUs, wide
    CPUs). The cross-chain statistics need a population: give at least ``min_chains`` chains
    (16 by default; 32 or more is better).

    Args:
        target_accept: harmonic-mean acceptance the step size is tuned to (0.651 is optimal for HMC).
        learning_rate: Adam learning rate for the log trajectory length.
        mass_matrix: "diag" estimates a diagonal mass matrix from the ensemble during the second
            half of warmup; "identity" keeps the unit metric.
        max_leapfrog_steps: cap on the leapfrog steps per draw.
        min_chains: fewest chains accepted.
        init: "pathfinder" (default: each chain starts from a draw of a Pathfinder fit started at the
            driver's point) or "random" (the driver's uniform(-init_radius, init_radius) point in
            unconstrained space). The tuner pools all chains' statistics, so chains left far out,
            where every proposal is rejected, spoil everyone's step size and mass matrix; Pathfinder
            starts them in the bulk.
        init_radius: the driver's points are uniform in (-init_radius, init_radius) in unconstrained space.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.ChEES(learning_rate=0.05)
    """

    target_accept: float = 0.651
    learning_rate: float = 0.025
    mass_matrix: Literal["diag", "identity"] = "diag"
    max_leapfrog_steps: int = 1000
    min_chains: int = 16
    init: Literal["random", "pathfinder"] = "pathfinder"
    init_radius: float = DEFAULT_RADIUS
    name: ClassVar[str] = "chees"
    size_fields = ("draws", "tune", "chains")
    tuned_what = "its step size and trajectory length"

    def __post_init__(self):
        check_probability("ChEES", "target_accept", self.target_accept)
        check_positive("ChEES", "learning_rate", self.learning_rate)
        check_choice("ChEES", "mass_matrix", self.mass_matrix, ("diag", "identity"))
        check_int("ChEES", "max_leapfrog_steps", self.max_leapfrog_steps, 1)
        check_int("ChEES", "min_chains", self.min_chains, 2)
        check_start("ChEES", self.init_radius, self.init)

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        if chains < self.min_chains:
            raise ValueError(
                f"ChEES adapts its step size and trajectory length from statistics across chains: "
                f"chains={chains} is too few; give chains >= {self.min_chains} (32 or more is better), "
                "or use sampler='nuts', which adapts each chain on its own."
            )
        self.check_warmup(tune)

    def kernel(self, size: RunSize):
        from blackjax.mcmc import dynamic_hmc

        # the same jittered trajectory lengths as Blackjax's tuner: a Halton sequence over all steps
        max_bits = int(np.ceil(np.log2(max(2, size.tune + size.draws))))

        def next_arg(i):
            return i + 1

        def integration_steps(i, num_leapfrog_steps):
            jitter = dynamic_hmc.halton_sequence(i, max_bits)
            return jnp.asarray(jnp.ceil(jitter * num_leapfrog_steps), dtype=int)

        return dynamic_hmc.build_kernel(next_random_arg_fn=next_arg, integration_steps_fn=integration_steps)

    def init_states(self, key, positions, logdensity_fn, chains):
        from blackjax.mcmc import dynamic_hmc

        positions = ensemble_points(key, positions, logdensity_fn, self.init)
        return jax.vmap(lambda p: dynamic_hmc.init(p, logdensity_fn, jnp.asarray(0)))(positions)

    def tuner(self, logdensity_fn, num_dims, size):
        import blackjax
        import optax
        from blackjax.adaptation.base import get_filter_adapt_info_fn

        warmup = blackjax.chees_adaptation(
            logdensity_fn,
            size.chains,
            target_acceptance_rate=self.target_accept,
            max_leapfrog_steps=self.max_leapfrog_steps,
            adaptation_info_fn=get_filter_adapt_info_fn(),
            mass_matrix_estimation="diagonal" if self.mass_matrix == "diag" else None,
        )

        def tune(key, states):
            optimizer = optax.adam(self.learning_rate)
            (states, params), _ = warmup.run(
                key, states.position, INITIAL_STEP_SIZE, optimizer, size.tune, max_sampling_steps=size.draws
            )
            return states, ChEESParams(
                jnp.asarray(params["step_size"]),
                jnp.broadcast_to(params["inverse_mass_matrix"], (num_dims,)),
                jnp.asarray(params["integration_steps_params"][0]),
            )

        return tune

    def kernel_args(self, params):
        return (params.inverse_mass_matrix,), {"integration_steps_params": (params.num_leapfrog_steps,)}
