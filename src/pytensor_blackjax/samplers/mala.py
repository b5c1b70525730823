"""Preconditioned Metropolis-adjusted Langevin algorithm (MALA) with windowed warmup.

One Langevin step with a Metropolis-Hastings correction is the same Markov chain as HMC with a single
leapfrog step and a fresh momentum, which is how it is run here: that form takes the mass matrix
(preconditioner) tuned during warmup, where Blackjax's ``mala`` kernel has none.

References:
    Roberts & Tweedie (1996), Exponential convergence of Langevin distributions and their discrete
    approximations. Bernoulli 2(4).
    Girolami & Calderhead (2011), Riemann manifold Langevin and Hamiltonian Monte Carlo. JRSS B 73(2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from pytensor_blackjax.samplers._adaptation import window_schedule
from pytensor_blackjax.samplers._base import Kernel, rename_info
from pytensor_blackjax.samplers._options import check_choice, check_probability
from pytensor_blackjax.samplers.nuts import metric_kind, windowed_hmc_kernel

__all__ = ["MALA"]

OPTIMAL_MALA_ACCEPT = 0.574  # Roberts & Rosenthal (1998)


@dataclass(frozen=True)
class MALA:
    """MALA: one gradient per draw, tuned step size and mass matrix.

    Cheap per draw but diffusive: draws are strongly autocorrelated on all but easy posteriors, so it
    needs many more draws than NUTS for the same effective sample size.

    Args:
        target_accept: the average acceptance probability the step size is tuned to (0.574 is optimal
            for MALA on Gaussian-like targets).
        adaptation: mass matrix: "diag", "dense", or "auto" (dense up to 200 dimensions).

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.MALA(target_accept=0.6)
    """

    target_accept: float = OPTIMAL_MALA_ACCEPT
    adaptation: Literal["auto", "diag", "dense"] = "auto"
    name = "mala"
    ensemble = False
    approximate = False

    def __post_init__(self):
        check_probability("MALA", "target_accept", self.target_accept)
        check_choice("MALA", "adaptation", self.adaptation, ("auto", "diag", "dense"))

    def schedule(self, tune: int) -> np.ndarray:
        return window_schedule(tune)

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        return None

    def build(self, logdensity_fn, num_dims: int) -> Kernel:
        import blackjax

        base = blackjax.hmc.build_kernel()

        def kernel_fn(key, state, logdensity, step_size, imm):
            return base(key, state, logdensity, step_size, imm, 1)

        def stats_fn(state, info, params):
            # n_steps is always one; kept so gradient counts add up like every other sampler's
            return rename_info(info, lp=state.logdensity, step_size=params.step_size)

        return windowed_hmc_kernel(
            kernel_fn,
            logdensity_fn,
            num_dims,
            target_accept=self.target_accept,
            adaptation=metric_kind(self.adaptation, num_dims),
            stats_fn=stats_fn,
        )
