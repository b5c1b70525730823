"""The sampler family: one small frozen config per sampler, one module per family."""

from pytensor_blackjax.samplers._base import INFO_TO_STATS, Kernel, Sampler, sized_for_run
from pytensor_blackjax.samplers._registry import SAMPLERS, resolve
from pytensor_blackjax.samplers.nuts import NUTS

__all__ = ["INFO_TO_STATS", "NUTS", "SAMPLERS", "Kernel", "Sampler", "resolve", "sized_for_run"]
