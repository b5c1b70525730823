"""The sampler family: one small frozen config per sampler, one module per family.

Example:
    >>> import pytensor_blackjax as pbj
    >>> sampler = pbj.samplers.MCLMC()  # or the name "mclmc"
"""

from pytensor_blackjax.samplers._base import INFO_TO_STATS, Kernel, Sampler, sized_for_run
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
    "INFO_TO_STATS",
    "MALA",
    "MCLMC",
    "MEADS",
    "NUTS",
    "SAMPLERS",
    "SMC",
    "AdjustedMCLMC",
    "ChEES",
    "FullRankVI",
    "Kernel",
    "MeanFieldVI",
    "Pathfinder",
    "Sampler",
    "resolve",
    "sized_for_run",
]
