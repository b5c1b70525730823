"""Starting points: uniform(-2, 2) in unconstrained space, redrawn until log-density and gradient are
finite.

Attempt ``a`` of chain ``c`` draws from ``fold_in(fold_in(key_c, INIT), a)``, so a chain's start
depends on its key alone. One small program evaluates one attempt for every chain; the host asks for
the next attempt only for the chains that still need one (almost never), up to `MAX_TRIES`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.run._keys import INIT
from pytensor_blackjax.run._stored import StoredProgram, digest_of

__all__ = ["MAX_TRIES", "initial_points"]

MAX_TRIES = 100


def _attempt(compiled: CompiledModel, chain_key, attempt, data):
    key = jax.random.fold_in(jax.random.fold_in(chain_key, INIT), attempt)
    x = jax.random.uniform(key, (compiled.num_dims,), minval=-2.0, maxval=2.0, dtype=jnp.float64)
    lp, grad = jax.value_and_grad(compiled.flat_logdensity)(x, data)
    return x, lp, jnp.isfinite(lp) & jnp.all(jnp.isfinite(grad))


def _program(compiled: CompiledModel) -> StoredProgram:
    def build():
        attempts = jax.vmap(lambda k, a, d: _attempt(compiled, k, a, d), in_axes=(0, None, None))
        return StoredProgram(jax.jit(attempts), "initial_points", digest_of(compiled), data_arg=2)

    return compiled.programs.get(("initial_points",), build)


def initial_points(compiled: CompiledModel, keys: jax.Array, data: tuple) -> np.ndarray:
    """One finite starting point per chain, shape ``(chains, dims)``.

    Raises:
        ValueError: no finite point in ``MAX_TRIES`` draws for some chain; says what the log-density was.
    """
    program = _program(compiled)
    xs, lp0, ok = (np.array(v) for v in program(keys, 0, data))
    for attempt in range(1, MAX_TRIES):
        if ok.all():
            break
        x, _, fine = (np.asarray(v) for v in program(keys, attempt, data))
        redo = ~ok & fine
        xs[redo], ok = x[redo], ok | fine
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        raise ValueError(
            f"the log-density or its gradient is not finite at any of {MAX_TRIES} random starting points "
            f"(uniform(-2, 2) in unconstrained space) for chain {bad}; e.g. log-density = "
            f"{float(lp0[bad])}. Check the model's support (a -inf everywhere means an "
            "impossible constraint; NaN usually means log of a negative number) and the data."
        )
    return xs
