"""The values that cross the boundary between the driver and the store: a checkpoint the driver hands
over after warmup and after every chunk, and the resume point a store gives back. Both are plain data
(host arrays and numbers); neither side imports the other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Checkpoint", "ResumePoint"]


@dataclass(frozen=True)
class Checkpoint:
    """The chains' state at a chunk boundary, on the host.

    Attributes:
        layout: name of the chain layout that made it ("threaded", "vectorized", "sharded",
            "ensemble"); a store keeps it so a resume can say which layout the state came from.
        num_draws: draws per chain committed with this state (0 right after warmup).
        state: the chain state, a pytree of host arrays with chains on the first axis (ensemble
            samplers: one state for all chains).
        params: the adapted parameters (step size, metric, ...) in the same form, or None.
    """

    layout: str
    num_draws: int
    state: Any
    params: Any = None


@dataclass(frozen=True)
class ResumePoint:
    """Where a stored run continues.

    Attributes:
        phase: "warmup" (nothing usable was committed: warmup runs again from the start, which is
            deterministic) or "sampling".
        num_draws: draws per chain already committed.
        layout: the chain layout that wrote ``state`` (None in the warmup phase).
        state_leaves: the leaves of the chain state pytree in ``jax.tree.leaves`` order; the driver
            rebuilds the pytree from its own programs' structure.
        params_leaves: the same for the adapted parameters (empty when there are none).
        start_points: the chains' starting points, ``(chains, dims)``, of a run whose start was given
            (``initvals``), for a warmup that runs again; None: the default start.
    """

    phase: str
    num_draws: int = 0
    layout: str | None = None
    state_leaves: tuple[Any, ...] = ()
    params_leaves: tuple[Any, ...] = ()
    start_points: Any = None
