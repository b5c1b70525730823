"""Hamiltonian Monte Carlo with a fixed number of leapfrog steps and Stan-style windowed warmup.

References:
    Neal (2011), MCMC using Hamiltonian dynamics. Handbook of Markov Chain Monte Carlo, ch. 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import numpy as np

from pytensor_blackjax.samplers._adaptation import window_schedule
from pytensor_blackjax.samplers._base import Kernel, rename_info
from pytensor_blackjax.samplers._options import check_choice, check_int, check_probability
from pytensor_blackjax.samplers.nuts import metric_kind, windowed_hmc_kernel

__all__ = ["HMC"]


@dataclass(frozen=True)
class HMC:
    """Static-path HMC: every draw takes ``num_integration_steps`` leapfrog steps.

    The step size and the mass matrix are tuned during warmup exactly as for NUTS. Good when the
    posterior is close to Gaussian and a trajectory length is known to work; otherwise prefer NUTS.
    With ``jitter=True`` each draw takes a number of steps drawn uniformly from 1 to
    ``2 * num_integration_steps - 1`` (same mean), which breaks the periodic trajectories a fixed
    length can fall into once the mass matrix is well adapted.

    Args:
        num_integration_steps: mean leapfrog steps per draw (1 to 1024).
        jitter: draw the number of steps per draw at random around the mean.
        target_accept: the average acceptance probability the step size is tuned to.
        adaptation: mass matrix: "diag", "dense", or "auto" (dense up to 200 dimensions).

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.HMC(num_integration_steps=20)
    """

    num_integration_steps: int = 16
    jitter: bool = True
    target_accept: float = 0.8
    adaptation: Literal["auto", "diag", "dense"] = "auto"
    name = "hmc"
    ensemble = False
    approximate = False

    def __post_init__(self):
        check_int("HMC", "num_integration_steps", self.num_integration_steps, 1, 1024)
        if not isinstance(self.jitter, bool):
            raise ValueError(f"HMC(jitter={self.jitter!r}): give True or False.")
        check_probability("HMC", "target_accept", self.target_accept)
        check_choice("HMC", "adaptation", self.adaptation, ("auto", "diag", "dense"))

    def schedule(self, tune: int) -> np.ndarray:
        return window_schedule(tune)

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        return None

    def build(self, logdensity_fn, num_dims: int) -> Kernel:
        import blackjax

        base = blackjax.hmc.build_kernel()
        steps, jitter = self.num_integration_steps, self.jitter

        def kernel_fn(key, state, logdensity, step_size, imm):
            if jitter:
                key, steps_key = jax.random.split(key)
                num = jax.random.randint(steps_key, (), 1, 2 * steps)
            else:
                num = steps
            return base(key, state, logdensity, step_size, imm, num)

        def stats_fn(state, info, params):
            return rename_info(info, lp=state.logdensity, step_size=params.step_size)

        return windowed_hmc_kernel(
            kernel_fn,
            logdensity_fn,
            num_dims,
            target_accept=self.target_accept,
            adaptation=metric_kind(self.adaptation, num_dims),
            stats_fn=stats_fn,
        )
