"""The sampler protocol every family implements, and the one table of sample-stat names.

A sampler config is a small frozen dataclass. Its ``build`` returns a `Kernel`: pure functions the
driver runs for every family alike. Per-chain samplers (``ensemble = False``) see one chain's flat
position; ensemble samplers (ChEES, MEADS, SMC, variational) see all chains at once, shape
``(chains, dims)``. Samplers know nothing of chunks, threads, storage or progress.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "INFO_TO_STATS",
    "Kernel",
    "PhaseStates",
    "PhaseStep",
    "RunSize",
    "Sampler",
    "rename_info",
    "size_key",
]

LogDensity = Callable[[jax.Array], jax.Array]


class PhaseStep(NamedTuple):
    """A kernel's warmup step that also serves as its sampling step, so that one compiled program runs
    both phases (XLA then compiles the transition once, not twice: see `run._programs`).

    The program's loop carries only what changes at every step (a small ``carry``: the chain, the
    step-size state); the rest of the warmup state (the metric, the estimator's state) is a loop
    invariant, so that the sampling phase runs the loop the separate sampling program ran.

    split(warmup state) -> (carry, fixed)
    step(key, carry, fixed, adapt) -> (carry, stats dict): one transition; with ``adapt`` (a traced
        boolean) the step size adapts as in ``warmup_step``, without it the step size stays and it is
        ``Kernel.step``
    record(carry) -> (flat position, what ``absorb`` is fed of this step)
    join(carry, fixed) -> warmup state
    absorb(warmup state, fed (steps, ...), mask (steps,)) -> warmup state: the estimator fed the
        masked steps in order, as ``warmup_step`` would have after each of them

    A sampler whose kernels have one says so with a class attribute ``phase_states``, a
    `PhaseStates`: the driver needs it on the host without building a kernel (building one imports
    Blackjax, which a run that loads its programs from the store never does).
    """

    split: Callable[[Any], tuple[Any, Any]]
    step: Callable[[jax.Array, Any, Any, jax.Array], tuple[Any, dict[str, jax.Array]]]
    record: Callable[[Any], tuple[jax.Array, Any]]
    join: Callable[[Any, Any], Any]
    absorb: Callable[[Any, Any, jax.Array], Any]


class PhaseStates(NamedTuple):
    """Between a `PhaseStep` kernel's phases, on the host (pytree surgery, no computation).

    rebuild(template warmup state, state, params) -> the warmup state that samples from ``state`` with
        ``params`` (the template's other parts are placeholders of the right types)
    chain(warmup state) -> state
    position(state) -> its flat position(s), as ``warmup_init`` takes them
    """

    rebuild: Callable[[Any, Any, Any], Any]
    chain: Callable[[Any], Any]
    position: Callable[[Any], Any]


class Kernel(NamedTuple):
    """What a sampler gives the driver for one log-density.

    warmup_init(key, position) -> warmup state
    warmup_step(key, warmup state, schedule row) -> (warmup state, stats dict)
    warmup_finish(warmup state) -> (state, params)
    step(key, state, params) -> (state, stats dict)
    position(state) -> flat position(s)
    warmup_position(warmup state) -> flat position(s) of the chain during warmup; None for samplers
        whose warmup makes no draws of its own (a tuner run in one call, tempering, optimisation)
    window_end(warmup state) -> warmup state: the update at the end of an adaptation window, which the
        driver runs as a program of its own after every warmup step whose schedule row has 1 in its
        second column (``warmup_step`` then ignores that column); it must not evaluate the log-density
        (it is built with a placeholder). None: ``warmup_step`` does it. A sampler whose kernels have
        one says so (``window_program = True``, a class attribute), so that the driver knows without
        building a kernel
    phase_step: a `PhaseStep`, or None: separate warmup and sampling programs. With one, the schedule
        row's first column (1: feed the estimator) is applied by ``PhaseStep.absorb`` after a chunk
    """

    warmup_init: Callable[[jax.Array, jax.Array], Any]
    warmup_step: Callable[[jax.Array, Any, jax.Array], tuple[Any, dict[str, jax.Array]]]
    warmup_finish: Callable[[Any], tuple[Any, Any]]
    step: Callable[[jax.Array, Any, Any], tuple[Any, dict[str, jax.Array]]]
    position: Callable[[Any], jax.Array]
    warmup_position: Callable[[Any], jax.Array] | None = None
    window_end: Callable[[Any], Any] | None = None
    phase_step: PhaseStep | None = None


@dataclass(frozen=True)
class RunSize:
    """The sizes of one run, as a sampler's programs may need them.

    Attributes:
        draws: sampling steps (kept draws times ``thin``).
        tune: warmup steps.
        chains: chains.
    """

    draws: int
    tune: int
    chains: int

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"RunSize({f.name}={value!r}): give a non-negative integer.")

    def only(self, names: tuple[str, ...]) -> RunSize:
        """This size with every field not in ``names`` set to 0."""
        return RunSize(**{f.name: getattr(self, f.name) if f.name in names else 0 for f in fields(self)})


@runtime_checkable
class Sampler(Protocol):
    """A sampler configuration: frozen, hashable (it keys the compiled-program cache).

    ``size_fields`` names the `RunSize` fields its programs depend on (SMC keeps ``chains * draws``
    particles; Blackjax's one-call tuners take the number of warmup steps as a Python integer). The
    programs are built for, and cached under, those fields alone (`size_key`), so a sampler with
    ``size_fields = ()`` reuses its programs whatever the run's sizes. ``init_radius`` is the half-width
    of the uniform box in unconstrained space its chains start in (see `samplers._start`).
    """

    name: ClassVar[str]
    ensemble: ClassVar[bool]
    approximate: ClassVar[bool]
    size_fields: ClassVar[tuple[str, ...]]

    @property
    def init_radius(self) -> float: ...

    def schedule(self, tune: int) -> np.ndarray:
        """One row per warmup step, passed to ``warmup_step`` (shape ``(tune, k)``)."""
        ...

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        """Raise a clear error when these settings cannot work for this sampler."""
        ...

    def build(self, logdensity_fn: LogDensity, num_dims: int, size: RunSize) -> Kernel:
        """The kernel for one log-density; only the fields of ``size`` named in ``size_fields`` are set."""
        ...


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


def size_key(sampler: Sampler, size: RunSize) -> tuple[int, ...]:
    """The sizes ``sampler``'s programs depend on: what, with the config, their cache is keyed on."""
    return tuple(getattr(size, name) for name in sampler.size_fields)
