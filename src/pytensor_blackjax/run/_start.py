"""Starting points, as `samplers._start` decides them: the compiled program that evaluates one attempt
for every chain, and the keys of the attempts.

Attempt ``a`` of chain ``c`` draws from ``fold_in(fold_in(key_c, INIT), a)``, so a chain's start
depends on its key alone. One small program evaluates one attempt for every chain;
`samplers._start.first_finite` asks for further attempts only for the chains that need them.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.compile._breakdown import describe_terms
from pytensor_blackjax.run._keys import INIT
from pytensor_blackjax.run._programs import QUICK_COMPILE
from pytensor_blackjax.run._stored import StoredProgram, digest_of
from pytensor_blackjax.samplers._start import DEFAULT_RADIUS, MAX_TRIES, first_finite, uniform_attempt

__all__ = ["MAX_TRIES", "initial_points"]


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
