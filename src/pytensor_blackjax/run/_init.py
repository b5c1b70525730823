"""Starting points: uniform(-2, 2) in unconstrained space, retried until log-density and gradient are
finite."""

from __future__ import annotations

import weakref

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.run._keys import INIT

__all__ = ["MAX_TRIES", "initial_points"]

MAX_TRIES = 100


def _candidates(compiled: CompiledModel, chain_key, data):
    def one(attempt):
        key = jax.random.fold_in(jax.random.fold_in(chain_key, INIT), attempt)
        x = jax.random.uniform(key, (compiled.num_dims,), minval=-2.0, maxval=2.0, dtype=jnp.float64)
        lp, grad = jax.value_and_grad(compiled.flat_logdensity)(x, data)
        return x, lp, jnp.isfinite(lp) & jnp.all(jnp.isfinite(grad))

    xs, lps, ok = jax.vmap(one)(jnp.arange(MAX_TRIES))
    first = jnp.argmax(ok)
    return xs[first], ok[first], lps[0]


_PROGRAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def initial_points(compiled: CompiledModel, keys: jax.Array, data: tuple) -> np.ndarray:
    """One finite starting point per chain, shape ``(chains, dims)``.

    Raises:
        ValueError: no finite point in ``MAX_TRIES`` draws for some chain; says what the log-density was.
    """
    program = _PROGRAMS.get(compiled)
    if program is None:
        proxy = weakref.proxy(compiled)  # the cached program must not keep its model alive
        program = jax.jit(jax.vmap(lambda k, d: _candidates(proxy, k, d), in_axes=(0, None)))
        _PROGRAMS[compiled] = program
    xs, ok, lp0 = program(keys, data)
    ok = np.asarray(ok)
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        raise ValueError(
            f"the log-density or its gradient is not finite at any of {MAX_TRIES} random starting points "
            f"(uniform(-2, 2) in unconstrained space) for chain {bad}; e.g. log-density = "
            f"{float(np.asarray(lp0)[bad])}. Check the model's support (a -inf everywhere means an "
            "impossible constraint; NaN usually means log of a negative number) and the data."
        )
    return np.asarray(xs)
