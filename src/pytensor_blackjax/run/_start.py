"""Starting points, as `samplers._start` decides them: uniform attempts, redrawn until the log-density
and its gradient are finite.

Attempt ``a`` of chain ``c`` draws from ``fold_in(fold_in(key_c, INIT), a)``, so a chain's start
depends on its key alone. Per-chain samplers in a layout that can judge their warmup states
(`random_starts`) draw the attempts on the host and let the warmup-init program, which evaluates the
log-density and gradient at the start anyway, tell which are finite: no program of its own compiles
(on rat tumors one that cost a first run ~0.75 s of CPU for trace, lowering and XLA). Elsewhere (given
starts with defaults for the rest, ensembles, several devices) one small program evaluates one attempt
for every chain (`initial_points`); `samplers._start.first_finite` asks for further attempts only for
the chains that need them. Both give the same points.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.compile._breakdown import describe_terms
from pytensor_blackjax.run._keys import INIT, uniform_starts
from pytensor_blackjax.run._programs import QUICK_COMPILE
from pytensor_blackjax.run._stored import StoredProgram, digest_of
from pytensor_blackjax.samplers._start import (
    DEFAULT_RADIUS,
    MAX_TRIES,
    first_finite,
    no_finite_start,
    uniform_attempt,
)

__all__ = ["MAX_TRIES", "initial_points", "random_starts"]


def _attempt(compiled: CompiledModel, radius: float, chain_key, attempt, data):
    key = jax.random.fold_in(jax.random.fold_in(chain_key, INIT), attempt)
    return uniform_attempt(key, compiled.num_dims, radius, lambda x: compiled.flat_logdensity(x, data))


def _program(compiled: CompiledModel, radius: float) -> StoredProgram:
    def build():
        attempts = jax.vmap(lambda k, a, d: _attempt(compiled, radius, k, a, d), in_axes=(0, None, None))
        name = "initial_points" if radius == DEFAULT_RADIUS else f"initial_points|{radius!r}"
        # run once or a few times: compiled for compile time (it is on a first run's critical path)
        program = jax.jit(attempts, compiler_options=QUICK_COMPILE)
        return StoredProgram(program, name, digest_of(compiled), data_arg=2)

    return compiled.programs.get(("initial_points", radius), build)


def initial_points(
    compiled: CompiledModel, keys: jax.Array, data: tuple, radius: float = DEFAULT_RADIUS
) -> np.ndarray:
    """One finite starting point per chain, uniform in ``(-radius, radius)``, shape ``(chains, dims)``.

    Raises:
        ValueError: no finite point in ``MAX_TRIES`` draws for some chain; says what the log-density was.
    """
    program = _program(compiled, float(radius))
    explain = partial(describe_terms, compiled, data=data)
    return first_finite(lambda attempt: program(keys, attempt, data), radius, explain)


def random_starts(
    layout, compiled: CompiledModel, data: tuple, radius: float = DEFAULT_RADIUS, *, float32: bool = False
) -> np.ndarray:
    """Start ``layout``'s warmup (a layout with ``host_chains``) at one finite uniform point per chain
    and return the points, ``(chains, dims)`` float64: attempt ``a`` is drawn on the host for the
    chains whose warmup state after attempt ``a - 1`` was not finite, and every chain is started
    again from the points so far (the chains that were fine get the same state again).

    Raises:
        ValueError: no finite point in ``MAX_TRIES`` draws for some chain; says what the log-density was.
    """
    dims = compiled.num_dims
    points = uniform_starts(layout.keys, 0, dims, radius)
    first, ok = points.copy(), np.zeros(len(points), bool)
    for attempt in range(MAX_TRIES):
        if attempt:
            points[~ok] = uniform_starts(layout.keys, attempt, dims, radius)[~ok]
        layout.init(points.astype(np.float32) if float32 else points)
        ok = layout.finite_chains()
        if ok.all():
            return points
    bad = int(np.flatnonzero(~ok)[0])
    try:
        logdensity = float(jax.jit(compiled.flat_logdensity)(first[bad], data))
    except Exception:  # noqa: BLE001 - the error below is the one to report
        logdensity = float("nan")
    raise no_finite_start(bad, radius, logdensity, describe_terms(compiled, first[bad], data=data))
