"""String names -> sampler configs."""

from __future__ import annotations

from pytensor_blackjax.samplers._base import Sampler
from pytensor_blackjax.samplers.chees import ChEES
from pytensor_blackjax.samplers.hmc import HMC
from pytensor_blackjax.samplers.mala import MALA
from pytensor_blackjax.samplers.mclmc import MCLMC, AdjustedMCLMC
from pytensor_blackjax.samplers.meads import MEADS
from pytensor_blackjax.samplers.nuts import NUTS
from pytensor_blackjax.samplers.smc import SMC
from pytensor_blackjax.samplers.vi import FullRankVI, MeanFieldVI, Pathfinder

__all__ = ["SAMPLERS", "resolve"]

SAMPLERS: dict[str, type] = {
    "nuts": NUTS,
    "hmc": HMC,
    "mala": MALA,
    "mclmc": MCLMC,
    "adjusted_mclmc": AdjustedMCLMC,
    "chees": ChEES,
    "meads": MEADS,
    "smc": SMC,
    "pathfinder": Pathfinder,
    "meanfield_vi": MeanFieldVI,
    "fullrank_vi": FullRankVI,
}


def resolve(sampler: str | Sampler) -> Sampler:
    """A name or a config object -> a config object; unknown names raise a clear error."""
    if isinstance(sampler, str):
        try:
            return SAMPLERS[sampler.lower()]()
        except KeyError:
            raise ValueError(
                f"sampler={sampler!r} is not known; use one of {sorted(SAMPLERS)} "
                "or a config object such as pbj.samplers.NUTS(target_accept=0.9)."
            ) from None
    if isinstance(sampler, Sampler):
        return sampler
    raise TypeError(
        f"sampler={sampler!r} must be a name such as 'nuts' or a config object such as pbj.samplers.NUTS()."
    )
