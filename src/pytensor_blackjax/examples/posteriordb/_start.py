"""A start-point setting for posteriors whose far-away regions trap a sampler."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pytensor_blackjax.samplers import NUTS, Kernel

__all__ = ["NarrowStart"]


@dataclass(frozen=True)
class NarrowStart:
    """NUTS whose chains start at ``scale`` times the driver's uniform(-2, 2) point.

    With ``scale=0.25`` the start is uniform(-0.5, 0.5) in unconstrained space (Stan's ``init=0.5``).
    Everything else, warmup included, is the wrapped NUTS.

    Args:
        base: the NUTS configuration to run.
        scale: factor applied to the random starting point, in (0, 1].
    """

    base: NUTS = NUTS()
    scale: float = 0.25
    name = "nuts"
    ensemble = False
    approximate = False

    def __post_init__(self):
        if not 0.0 < float(self.scale) <= 1.0:
            raise ValueError(f"NarrowStart(scale={self.scale!r}): give a number in (0, 1].")

    def schedule(self, tune: int) -> np.ndarray:
        return self.base.schedule(tune)

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        return self.base.check(chains=chains, tune=tune, num_dims=num_dims)

    def build(self, logdensity_fn, num_dims: int) -> Kernel:
        kernel = self.base.build(logdensity_fn, num_dims)
        scale = float(self.scale)
        return kernel._replace(warmup_init=lambda key, position: kernel.warmup_init(key, scale * position))
