"""ChEES-HMC: jittered HMC whose step size and trajectory length are tuned across many chains.

References:
    Hoffman, Radul & Sountsov (2021), An adaptive MCMC scheme for setting trajectory lengths in
    Hamiltonian Monte Carlo. AISTATS.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.samplers._base import Kernel, rename_info
from pytensor_blackjax.samplers._options import check_choice, check_int, check_positive, check_probability
from pytensor_blackjax.samplers._tuned import ensemble_start, one_call_kernel, one_call_schedule

__all__ = ["ChEES"]

INITIAL_STEP_SIZE = 0.1


class ChEESParams(NamedTuple):
    step_size: jax.Array
    inverse_mass_matrix: jax.Array
    num_leapfrog_steps: jax.Array


@dataclass(frozen=True)
class ChEES:
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
            driver's point) or "random" (the driver's uniform(-2, 2) point in unconstrained space).
            The tuner pools all chains' statistics, so chains left far out, where every proposal is
            rejected, spoil everyone's step size and mass matrix; Pathfinder starts them in the bulk.

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
    # (draws, tune, chains), set by the driver
    sizes: tuple[int, int, int] = field(default=(0, 0, 0), repr=False)
    name = "chees"
    ensemble = True
    approximate = False

    def __post_init__(self):
        check_probability("ChEES", "target_accept", self.target_accept)
        check_positive("ChEES", "learning_rate", self.learning_rate)
        check_choice("ChEES", "mass_matrix", self.mass_matrix, ("diag", "identity"))
        check_int("ChEES", "max_leapfrog_steps", self.max_leapfrog_steps, 1)
        check_int("ChEES", "min_chains", self.min_chains, 2)
        check_choice("ChEES", "init", self.init, ("random", "pathfinder"))

    def sized(self, *, draws: int, tune: int, chains: int) -> ChEES:
        return replace(self, sizes=(draws, tune, chains))

    def schedule(self, tune: int) -> np.ndarray:
        return one_call_schedule(tune)

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        if chains < self.min_chains:
            raise ValueError(
                f"ChEES adapts its step size and trajectory length from statistics across chains: "
                f"chains={chains} is too few; give chains >= {self.min_chains} (32 or more is better), "
                "or use sampler='nuts', which adapts each chain on its own."
            )
        if tune < 1:
            raise ValueError(
                "ChEES needs warmup to tune its step size and trajectory length: tune=0; "
                "give tune >= 200 (the default 1000 is a good start)."
            )

    def build(self, logdensity_fn, num_dims: int) -> Kernel:
        import blackjax
        import optax
        from blackjax.adaptation.base import get_filter_adapt_info_fn
        from blackjax.mcmc import dynamic_hmc

        draws, num_tune, chains = self.sizes
        # the same jittered trajectory lengths as Blackjax's tuner: a Halton sequence over all steps
        max_bits = int(np.ceil(np.log2(max(2, num_tune + draws))))

        def next_arg(i):
            return i + 1

        def integration_steps(i, num_leapfrog_steps):
            jitter = dynamic_hmc.halton_sequence(i, max_bits)
            return jnp.asarray(jnp.ceil(jitter * num_leapfrog_steps), dtype=int)

        kernel = dynamic_hmc.build_kernel(next_random_arg_fn=next_arg, integration_steps_fn=integration_steps)
        warmup = blackjax.chees_adaptation(
            logdensity_fn,
            chains,
            target_acceptance_rate=self.target_accept,
            max_leapfrog_steps=self.max_leapfrog_steps,
            adaptation_info_fn=get_filter_adapt_info_fn(),
            mass_matrix_estimation="diagonal" if self.mass_matrix == "diag" else None,
        )

        def init(key, positions):
            positions = ensemble_start(key, positions, logdensity_fn, self.init)
            return jax.vmap(lambda p: dynamic_hmc.init(p, logdensity_fn, jnp.asarray(0)))(positions)

        def tune(key, states):
            optimizer = optax.adam(self.learning_rate)
            (states, params), _ = warmup.run(
                key, states.position, INITIAL_STEP_SIZE, optimizer, num_tune, max_sampling_steps=draws
            )
            return states, ChEESParams(
                jnp.asarray(params["step_size"]),
                jnp.broadcast_to(params["inverse_mass_matrix"], (num_dims,)),
                jnp.asarray(params["integration_steps_params"][0]),
            )

        def step(key, states, params):
            keys = jax.random.split(key, chains)

            def one(k, s):
                return kernel(
                    k,
                    s,
                    logdensity_fn,
                    params.step_size,
                    params.inverse_mass_matrix,
                    integration_steps_params=(params.num_leapfrog_steps,),
                )

            states, info = jax.vmap(one)(keys, states)
            return states, rename_info(info, lp=states.logdensity, step_size=params.step_size)

        return one_call_kernel(init=init, tune=tune, step=step, position=lambda s: s.position)
