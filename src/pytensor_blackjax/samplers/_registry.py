"""String names -> sampler configs."""

from __future__ import annotations

import difflib
import functools
from dataclasses import fields

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


def _suggesting_fields(cls: type) -> None:
    """Make ``cls(typo=...)`` raise a TypeError naming the nearest field instead of Python's bare one."""
    init = cls.__init__  # type: ignore[misc]  # the dataclass-made __init__ of this very class
    valid = [f.name for f in fields(cls) if f.init]

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        for name in kwargs:
            if name not in valid:
                close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else "."
                raise TypeError(
                    f"{cls.__name__}({name}=...): {cls.__name__} has no option {name!r}{hint} "
                    f"Its options are {valid}."
                )
        init(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[misc]


for _cls in SAMPLERS.values():
    _suggesting_fields(_cls)


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
