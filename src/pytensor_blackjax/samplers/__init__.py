"""The sampler family: one small frozen config per sampler, one module per family.

Internals (the `Kernel` protocol's pieces, the warmup machinery, the start points) stay importable
from their modules, e.g. ``pytensor_blackjax.samplers._base.Kernel``.

Example:
    >>> import pytensor_blackjax as pbj
    >>> sampler = pbj.samplers.MCLMC()  # or the name "mclmc"
"""

from pytensor_blackjax.samplers._base import RunSize, Sampler
from pytensor_blackjax.samplers._registry import SAMPLERS, resolve
from pytensor_blackjax.samplers.chees import ChEES
from pytensor_blackjax.samplers.hmc import HMC
from pytensor_blackjax.samplers.mala import MALA
from pytensor_blackjax.samplers.mclmc import MCLMC, AdjustedMCLMC
from pytensor_blackjax.samplers.meads import MEADS
from pytensor_blackjax.samplers.nuts import NUTS
from pytensor_blackjax.samplers.smc import SMC
from pytensor_blackjax.samplers.vi import FullRankVI, MeanFieldVI, Pathfinder

__all__ = [
    "HMC",
    "MALA",
    "MCLMC",
    "MEADS",
    "NUTS",
    "SAMPLERS",
    "SMC",
    "AdjustedMCLMC",
    "ChEES",
    "FullRankVI",
    "MeanFieldVI",
    "Pathfinder",
    "RunSize",
    "Sampler",
    "resolve",
]
