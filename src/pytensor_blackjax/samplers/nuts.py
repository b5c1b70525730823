"""No-U-Turn Sampler with Stan-style windowed warmup (step size by dual averaging, mass matrix).

The mass matrix is diagonal, dense, or low-rank plus diagonal (estimated from draws and gradients
by minimising the Fisher divergence, as nutpie does); the warmup is `_windowed`'s. Optionally the
chains start from a Pathfinder draw instead of the driver's random point.

References:
    Hoffman & Gelman (2014), The No-U-Turn Sampler. JMLR 15.
    Zhang, Carpenter, Gelman & Vehtari (2022), Pathfinder: parallel quasi-Newton variational inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from pytensor_blackjax.samplers._base import Kernel, RunSize, rename_info
from pytensor_blackjax.samplers._options import (
    check_choice,
    check_fraction,
    check_int,
    check_probability,
    check_switch,
)
from pytensor_blackjax.samplers._start import DEFAULT_RADIUS, check_start
from pytensor_blackjax.samplers._windowed import (  # noqa: F401 - HMCParams, WindowState: see below
    HMCParams,
    WindowedSampler,
    WindowState,
    windowed_hmc_kernel,
)

__all__ = ["NUTS"]

# HMCParams and WindowState are imported above because stores written before the windowed warmup had a
# module of its own pickled them under this module's name; they still load.


@dataclass(frozen=True)
class NUTS(WindowedSampler):
    """The No-U-Turn Sampler with Stan-style window adaptation.

    Args:
        target_accept: the average acceptance probability the step size is tuned to (0 < x < 1).
        max_tree_depth: at most 2**max_tree_depth leapfrog steps per draw.
        adaptation: mass matrix: "auto" (dense up to 200 unconstrained dimensions, else diagonal),
            "diag", "dense", or "low_rank" (diagonal plus a rank-``max_rank`` correction estimated
            from warmup draws and their gradients).
        init: "random" (the driver's uniform(-init_radius, init_radius) point in unconstrained
            space) or "pathfinder" (a draw from a Pathfinder fit started at that point).
        max_rank: the rank of the low-rank correction (used by "low_rank").
        init_radius: the chains start uniformly in (-init_radius, init_radius) in every unconstrained
            coordinate (Stan's ``init``); smaller keeps them away from far-out regions that trap them.
        step_jitter: after the warmup each draw's step size is the adapted one times a factor drawn
            uniformly from (1 - step_jitter, 1 + step_jitter); 0 keeps it fixed. Spreads trajectory
            lengths over the resonances of nearly Gaussian posteriors (docs/performance.md).
        avoid_resonance: move the adapted step size up out of the narrow bands where NUTS's trees
            close a full period of a nearly Gaussian posterior and keep doubling (by at most 15%;
            `clear_of_resonance`). "auto" (the default) moves it only where the last adaptation
            window's gradients are nearly a linear function of its draws, as a Gaussian's are
            (`gradient_nonlinearity` below 0.15; measured only with the dense metric, so the diagonal
            and low-rank ones never move): nes2000 needs 45% fewer gradients per ESS, while a skewed
            posterior, where a larger step adds divergences, keeps its step. True moves any step in a
            band; False never moves it.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.NUTS(target_accept=0.9, adaptation="low_rank", init="pathfinder")
    """

    target_accept: float = 0.8
    max_tree_depth: int = 10
    adaptation: Literal["auto", "diag", "dense", "low_rank"] = "auto"
    init: Literal["random", "pathfinder"] = "random"
    max_rank: int = 10
    init_radius: float = DEFAULT_RADIUS
    step_jitter: float = 0.0
    avoid_resonance: bool | Literal["auto"] = "auto"
    name: ClassVar[str] = "nuts"

    def __post_init__(self):
        check_probability("NUTS", "target_accept", self.target_accept)
        check_int("NUTS", "max_tree_depth", self.max_tree_depth, 1, 20)
        check_choice("NUTS", "adaptation", self.adaptation, ("auto", "diag", "dense", "low_rank"))
        check_int("NUTS", "max_rank", self.max_rank, 1)
        check_start("NUTS", self.init_radius, self.init)
        check_fraction("NUTS", "step_jitter", self.step_jitter)
        check_switch("NUTS", "avoid_resonance", self.avoid_resonance, "auto")

    def dense(self, num_dims: int) -> bool:
        return self.metric_kind(num_dims) == "dense"

    def build(self, logdensity_fn, num_dims: int, size: RunSize) -> Kernel:
        from pytensor_blackjax.samplers._nuts_kernel import build_kernel

        # Blackjax's NUTS transition, built with less control flow per leapfrog step (the same draws;
        # a dense metric's to rounding, with one matrix-vector product per step)
        base = build_kernel()
        max_depth = self.max_tree_depth

        def kernel_fn(key, state, logdensity, step_size, metric):
            return base(key, state, logdensity, step_size, metric, max_num_doublings=max_depth)

        def stats_fn(state, info, params):
            depth = info.num_trajectory_expansions
            return rename_info(
                info,
                lp=state.logdensity,
                step_size=params.step_size,
                reached_max_treedepth=depth >= max_depth,
            )

        kind, rank = self.estimator(num_dims)
        return windowed_hmc_kernel(
            kernel_fn,
            logdensity_fn,
            num_dims,
            target_accept=self.target_accept,
            stats_fn=stats_fn,
            adaptation=kind,
            max_rank=rank,
            init=self.init,
            dense_mass=True,
            step_jitter=float(self.step_jitter),
            avoid_resonance=self.avoid_resonance,
        )

    def estimator(self, num_dims: int) -> tuple[str, int]:
        kind = self.metric_kind(num_dims)
        # NUTS's dense metric comes from draws and gradients (`_windowed._fisher_estimator`)
        return ("fisher" if kind == "dense" else kind), self.max_rank
