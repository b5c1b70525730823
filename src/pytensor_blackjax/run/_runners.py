"""How chains are spread over the hardware. Each runner holds the chains' state between chunks.

* ``vectorized``: one program advances all chains together (``jax.vmap``); every chain waits for
  the longest trajectory at each step.
* ``threaded``: one compiled single-chain program, called from one thread per core; JAX releases the
  GIL while it runs, so chains proceed independently and meet only at chunk boundaries.
* ``ensemble``: samplers that adapt across chains see them all at once.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax
import numpy as np

from pytensor_blackjax.run._programs import Programs

__all__ = ["Runner", "available_cores"]


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _host(tree):
    return jax.tree.map(np.asarray, jax.device_get(tree))


def _stack(trees):
    return jax.tree.map(lambda *xs: np.stack(xs), *trees)


def _index(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


class Runner:
    """Runs the chunk programs for all chains; ``carry`` stays on the device between chunks."""

    def __init__(self, programs: Programs, method: str, keys: jax.Array, data: tuple):
        self.programs, self.method, self.keys, self.data = programs, method, keys, data
        self.chains = int(keys.shape[0]) if method != "ensemble" else None
        self.carry: Any = None
        self.params: Any = None
        self._pool = None
        if method == "threaded":
            workers = min(int(keys.shape[0]), available_cores())
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pbj-chain")
            self._chain_keys = [keys[i] for i in range(keys.shape[0])]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # -- phases ------------------------------------------------------------------------------
    def init(self, positions: np.ndarray) -> None:
        p = self.programs
        if self.method == "threaded":
            self.carry = list(self._pool.map(
                lambda i: p.warmup_init(self._chain_keys[i], positions[i], self.data), range(len(positions))))
        else:
            self.carry = p.warmup_init(self.keys, positions, self.data)

    def warmup(self, start: int, n_valid: int, rows: np.ndarray) -> dict:
        p = self.programs
        if self.method == "threaded":
            def one(i):
                carry, stats = p.warmup(self.carry[i], self._chain_keys[i], start, n_valid, rows, self.data)
                return carry, _host(stats)

            results = list(self._pool.map(one, range(len(self.carry))))
            self.carry = [r[0] for r in results]
            return _stack([r[1] for r in results])
        self.carry, stats = p.warmup(self.carry, self.keys, start, n_valid, rows, self.data)
        return self._chains_first(_host(stats))

    def finish_warmup(self) -> None:
        p = self.programs
        if self.method == "threaded":
            out = [p.finish(c) for c in self.carry]
            self.carry = [o[0] for o in out]
            self.params = [o[1] for o in out]
        else:
            self.carry, self.params = p.finish(self.carry)

    def sample(self, start: int, n_valid: int) -> tuple[np.ndarray, dict]:
        p = self.programs
        if self.method == "threaded":
            def one(i):
                carry, (pos, stats) = p.sample(self.carry[i], self.params[i], self._chain_keys[i], start,
                                               n_valid, self.data)
                return carry, _host(pos), _host(stats)

            results = list(self._pool.map(one, range(len(self.carry))))
            self.carry = [r[0] for r in results]
            return np.stack([r[1] for r in results]), _stack([r[2] for r in results])
        self.carry, (pos, stats) = p.sample(self.carry, self.params, self.keys, start, n_valid, self.data)
        return self._chains_first(_host(pos)), self._chains_first(_host(stats))

    def _chains_first(self, tree):
        # ensemble programs scan over steps outermost: (steps, chains, ...) -> (chains, steps, ...)
        if self.method == "ensemble":
            return jax.tree.map(lambda x: np.swapaxes(x, 0, 1) if x.ndim >= 2 else x, tree)
        return tree

    # -- checkpoints -------------------------------------------------------------------------
    def state(self) -> tuple[Any, Any]:
        """Host copies of the chain state and parameters, chains stacked on the first axis."""
        if self.method == "threaded":
            carry = _stack([_host(c) for c in self.carry])
            params = None if self.params is None else _stack([_host(q) for q in self.params])
            return carry, params
        return _host(self.carry), None if self.params is None else _host(self.params)

    def load(self, carry: Any, params: Any) -> None:
        """Restore a state saved by `state` (the structure must match this sampler's)."""
        if self.method == "threaded":
            n = len(self._chain_keys)
            self.carry = [jax.device_put(_index(carry, i)) for i in range(n)]
            self.params = None if params is None else [jax.device_put(_index(params, i)) for i in range(n)]
        else:
            self.carry = jax.device_put(carry)
            self.params = None if params is None else jax.device_put(params)
