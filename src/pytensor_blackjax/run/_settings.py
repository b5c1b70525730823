"""The driver's typed input and output: how long and how wide to run, and everything it produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["RunOutput", "RunSettings"]


@dataclass(frozen=True)
class RunSettings:
    """How long and how wide to run; validated by the public ``sample``."""

    draws: int
    tune: int
    chains: int
    seed: int
    thin: int = 1
    chunk_size: int = 100
    chain_method: str = "auto"
    precision: str = "float64"
    # what is kept besides the posterior: the warmup draws (``warmup_posterior``, ``warmup_sample_stats``)
    # and the unconstrained draws (``unconstrained_posterior``); see ``sample``
    keep_warmup: bool = False
    include_unconstrained: bool = False

    @property
    def chunk(self) -> int:
        return max(1, min(self.chunk_size, max(self.draws, self.tune)))


@dataclass
class RunOutput:
    """Everything sampled, on the host, ``(chain, draw, ...)``."""

    groups: dict[str, dict[str, np.ndarray]]
    num_draws: int
    interrupted: bool
    timings: dict[str, float]
    chain_method: str
    params: Any = None
    warmup_divergences: int = 0
    extra: dict = field(default_factory=dict)
