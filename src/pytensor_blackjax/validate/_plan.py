"""Which sampler runs on which posteriors, with how many chains, judged by which criterion.

A sampler is run on every posterior except those it is not meant for (each with its reason, shown in
the report). Posteriors expected to fail for every sampler (a funnel: ``Posterior.not_counted`` in
`pytensor_blackjax.examples.posteriordb`) are run and shown but "not counted". Approximations are
judged by a `Tolerance`, not by the exact criterion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pytensor_blackjax.validate._compare import Tolerance

__all__ = ["PLANS", "SamplerPlan", "plan"]

_CORRELATED = ("kidiq-kidscore_interaction", "earnings-logearn_interaction", "sblrc-blr", "diamonds-diamonds")
_SLOW_COLD_START = (
    "coefficients correlated near -0.99 on very different scales: does not converge from a cold start "
    "in 1000 warmup steps (docs/samplers.md)"
)


@dataclass(frozen=True)
class SamplerPlan:
    """How the validation suite runs one sampler.

    Attributes:
        name: the sampler's name (`pbj.samplers.SAMPLERS`).
        chains: chains per run (ensemble samplers pool their tuning over many).
        tolerance: set for approximations, judged by it instead of the exact criterion.
        not_meant_for: posterior -> why this sampler is not run on it.
    """

    name: str
    chains: int = 4
    tolerance: Tolerance | None = None
    not_meant_for: Mapping[str, str] = field(default_factory=dict)


def _skip(names: tuple[str, ...], reason: str) -> dict[str, str]:
    return dict.fromkeys(names, reason)


_DIAGONAL_ONLY = (
    "a diagonal Gaussian cannot represent coefficients correlated near -0.99: its sds are the "
    "conditional ones, several times too small"
)

PLANS: dict[str, SamplerPlan] = {
    p.name: p
    for p in [
        SamplerPlan("nuts"),
        SamplerPlan("hmc"),
        SamplerPlan("mala", not_meant_for=_skip(_CORRELATED, _SLOW_COLD_START)),
        SamplerPlan("mclmc", not_meant_for=_skip(_CORRELATED, _SLOW_COLD_START)),
        SamplerPlan("adjusted_mclmc", not_meant_for=_skip(_CORRELATED, _SLOW_COLD_START)),
        SamplerPlan("chees", chains=32),
        SamplerPlan(
            "meads",
            chains=32,
            not_meant_for=_skip(
                _CORRELATED, "experimental; a diagonal metric on coefficients correlated near -0.99"
            ),
        ),
        SamplerPlan("smc"),
        SamplerPlan("pathfinder", tolerance=Tolerance()),
        SamplerPlan("fullrank_vi", tolerance=Tolerance()),
        SamplerPlan("meanfield_vi", tolerance=Tolerance(), not_meant_for=_skip(_CORRELATED, _DIAGONAL_ONLY)),
    ]
}


def plan(sampler: str) -> SamplerPlan:
    """The plan of a sampler name; any other sampler gets 4 chains, all posteriors, exact criterion.

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    key = sampler.lower()
    if key not in PLANS:
        raise ValueError(f"sampler={sampler!r} is not known; use one of {sorted(PLANS)} or 'all'.")
    return PLANS[key]
