"""Hamiltonian Monte Carlo with a fixed number of leapfrog steps and Stan-style windowed warmup.

References:
    Neal (2011), MCMC using Hamiltonian dynamics. Handbook of Markov Chain Monte Carlo, ch. 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp

from pytensor_blackjax.samplers._base import Kernel, RunSize, rename_info
from pytensor_blackjax.samplers._options import check_bool, check_choice, check_int, check_probability
from pytensor_blackjax.samplers._start import DEFAULT_RADIUS, check_start
from pytensor_blackjax.samplers._windowed import WindowedSampler, windowed_hmc_kernel

__all__ = ["HMC", "StaticPathHMC"]


class StaticPathHMC(WindowedSampler):
    """Blackjax's static HMC kernel under the windowed warmup; a subclass gives `path` and its options
    (``target_accept``, ``adaptation``, ``init_radius``)."""

    # whether a draw whose energy error exceeds Blackjax's threshold is reported divergent
    flags_divergences: ClassVar[bool] = True

    def path(self) -> tuple[int, bool]:
        """``(leapfrog steps per draw, whether to jitter them)``."""
        raise NotImplementedError

    def check_options(self) -> None:
        owner = type(self).__name__
        check_probability(owner, "target_accept", self.target_accept)  # type: ignore[attr-defined]
        check_choice(owner, "adaptation", self.adaptation, ("auto", "diag", "dense"))  # type: ignore[attr-defined]
        check_start(owner, self.init_radius)  # type: ignore[attr-defined]

    def build(self, logdensity_fn, num_dims: int, size: RunSize) -> Kernel:
        import blackjax

        base = blackjax.hmc.build_kernel()
        steps, jitter = self.path()

        def kernel_fn(key, state, logdensity, step_size, imm):
            if jitter:
                key, steps_key = jax.random.split(key)
                num = jax.random.randint(steps_key, (), 1, 2 * steps)
            else:
                num = steps
            return base(key, state, logdensity, step_size, imm, num)

        def stats_fn(state, info, params):
            if not self.flags_divergences:
                info = info._replace(is_divergent=jnp.zeros_like(info.is_divergent))
            return rename_info(info, lp=state.logdensity, step_size=params.step_size)

        return windowed_hmc_kernel(
            kernel_fn,
            logdensity_fn,
            num_dims,
            target_accept=self.target_accept,  # type: ignore[attr-defined]
            adaptation=self.estimator(num_dims)[0],
            stats_fn=stats_fn,
        )


@dataclass(frozen=True)
class HMC(StaticPathHMC):
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
        init_radius: the chains start uniformly in (-init_radius, init_radius) in unconstrained space.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.HMC(num_integration_steps=20)
    """

    num_integration_steps: int = 16
    jitter: bool = True
    target_accept: float = 0.8
    adaptation: Literal["auto", "diag", "dense"] = "auto"
    init_radius: float = DEFAULT_RADIUS
    name: ClassVar[str] = "hmc"

    def __post_init__(self):
        check_int("HMC", "num_integration_steps", self.num_integration_steps, 1, 1024)
        check_bool("HMC", "jitter", self.jitter)
        self.check_options()

    def path(self) -> tuple[int, bool]:
        return self.num_integration_steps, self.jitter
