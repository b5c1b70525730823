"""The sampler protocol every family implements, and the one table of sample-stat names.

A sampler config is a small frozen dataclass. Its ``build`` returns a `Kernel`: pure functions the
driver runs for every family alike. Per-chain samplers (``ensemble = False``) see one chain's flat
position; ensemble samplers (ChEES, MEADS, SMC, variational) see all chains at once, shape
``(chains, dims)``. Samplers know nothing of chunks, threads, storage or progress.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["INFO_TO_STATS", "Kernel", "Sampler", "rename_info", "sized_for_run"]

LogDensity = Callable[[jax.Array], jax.Array]


class Kernel(NamedTuple):
    """What a sampler gives the driver for one log-density.

    warmup_init(key, position) -> warmup state
    warmup_step(key, warmup state, schedule row) -> (warmup state, stats dict)
    warmup_finish(warmup state) -> (state, params)
    step(key, state, params) -> (state, stats dict)
    position(state) -> flat position(s)
    """

    warmup_init: Callable[[jax.Array, jax.Array], Any]
    warmup_step: Callable[[jax.Array, Any, jax.Array], tuple[Any, dict[str, jax.Array]]]
    warmup_finish: Callable[[Any], tuple[Any, Any]]
    step: Callable[[jax.Array, Any, Any], tuple[Any, dict[str, jax.Array]]]
    position: Callable[[Any], jax.Array]


@runtime_checkable
class Sampler(Protocol):
    """A sampler configuration: frozen, hashable (it keys the compiled-program cache)."""

    name: str
    ensemble: bool
    approximate: bool

    def schedule(self, tune: int) -> np.ndarray:
        """One row per warmup step, passed to ``warmup_step`` (shape ``(tune, k)``)."""
        ...

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        """Raise a clear error when these settings cannot work for this sampler."""
        ...

    def build(self, logdensity_fn: LogDensity, num_dims: int) -> Kernel: ...


# Blackjax Info field -> ArviZ sample_stats name. Every sampler passes its Info through this table.
INFO_TO_STATS: Mapping[str, str] = {
    "is_divergent": "diverging",
    "acceptance_rate": "acceptance_rate",
    "num_integration_steps": "n_steps",
    "num_trajectory_expansions": "tree_depth",
    "energy": "energy",
    "is_accepted": "accepted",
    "energy_change": "energy_error",
    "kinetic_change": "kinetic_change",
    "ess": "ess",
    "elbo": "elbo",
    "log_likelihood_increment": "log_likelihood_increment",
}


def rename_info(info: Any, **extra: jax.Array) -> dict[str, jax.Array]:
    """Keep the Info fields named in `INFO_TO_STATS`, renamed; add ``extra`` (e.g. ``lp``)."""
    fields = info._asdict() if hasattr(info, "_asdict") else dict(info)
    stats = {INFO_TO_STATS[k]: v for k, v in fields.items() if k in INFO_TO_STATS and jnp.ndim(v) <= 1}
    stats.update(extra)
    return stats


def sized_for_run(sampler: Sampler, *, draws: int, tune: int, chains: int) -> Sampler:
    """The sampler fixed to one run's sizes, for samplers whose programs depend on them.

    Some samplers need static sizes at build time: SMC keeps ``chains * draws`` particles, and
    Blackjax's one-call tuners (MCLMC, ChEES, MEADS, Pathfinder) take the number of warmup steps as a
    Python integer. Such a sampler defines ``sized(draws=, tune=, chains=)`` returning a copy with the
    sizes filled in; ``draws`` counts sampling steps (kept draws times ``thin``). Others are unchanged.
    """
    sized = getattr(sampler, "sized", None)
    return sampler if sized is None else sized(draws=draws, tune=tune, chains=chains)
