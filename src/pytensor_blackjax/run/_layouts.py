"""Chain layouts: how chains are spread over the hardware. One class per layout owns both how its
programs are built (``jax.jit`` of one chain, ``jax.vmap``, ``jax.shard_map``) and how they are called
(threads, one call, one call spanning devices), and holds the chains' state between chunks.

* `Threaded`: one compiled single-chain program called from one thread per chain. JAX releases the GIL
  while it runs, so chains proceed independently and meet only at chunk boundaries.
* `Vectorized`: one program advances all chains together (``jax.vmap``); every chain waits for the
  longest trajectory at each step.
* `Sharded`: chains split over the devices of a mesh (every device of every process after
  ``pbj.distributed.initialize``), the chains on one device vmapped together; the chain count is padded
  to a multiple of the device count with copies of chain 0 that are dropped on the way out.
* `Ensemble`: samplers that adapt across chains see them all at once.

The driver calls every layout alike: ``init``, ``warmup``, ``finish_warmup``, ``sample``, ``checkpoint``,
``restore``, ``close``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np
from jax.sharding import Mesh
from threadpoolctl import threadpool_limits

from pytensor_blackjax.run._keys import root_key, split_chains
from pytensor_blackjax.run._layout_base import ChainLayout, available_cores, host, jit_all, stack
from pytensor_blackjax.run._programs import Programs
from pytensor_blackjax.run._sharded import Sharded, chain_mesh

__all__ = [
    "ChainLayout",
    "Ensemble",
    "Sharded",
    "Threaded",
    "Vectorized",
    "available_cores",
    "chain_mesh",
    "choose_layout",
]


def _index(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


class Vectorized(ChainLayout):
    """All chains in one vmapped program."""

    name = "vectorized"
    host_chains = True

    @classmethod
    def build(cls, base: Programs, mesh: Mesh | None) -> Programs:
        return jit_all(base, vmap_chains=True)

    def _init(self, positions):
        return self.programs.warmup_init(self.keys, positions, self.data)

    def _warmup(self, start, n_valid, rows):
        self.carry, stats = self.programs.warmup(self.carry, self.keys, start, n_valid, rows, self.data)
        return host(stats)

    def _finish(self):
        return self.programs.finish(self.carry)

    def _window_end(self):
        return self.programs.window_end(self.carry)

    def _sample(self, start, n_valid):
        self.carry, (pos, stats) = self.programs.sample(
            self.carry, self.params, self.keys, start, n_valid, self.data
        )
        return host(pos), host(stats)


class Ensemble(Vectorized):
    """Samplers that adapt across chains: one program sees every chain, under the run's key."""

    name = "ensemble"
    host_chains = False  # one state for all chains: `run._start.initial_points` finds the starts

    def __init__(self, programs: Programs, keys: jax.Array, seed: int, data: tuple, *, precision: str):
        super().__init__(programs, keys, seed, data, precision=precision)
        self.keys = root_key(seed)

    @classmethod
    def build(cls, base: Programs, mesh: Mesh | None) -> Programs:
        return jit_all(base, vmap_chains=False)

    def _warmup(self, start, n_valid, rows):
        return _steps_last(super()._warmup(start, n_valid, rows))

    def _sample(self, start, n_valid):
        pos, stats = super()._sample(start, n_valid)
        return _steps_last(pos), _steps_last(stats)


def _steps_last(tree):
    # ensemble programs scan over steps outermost: (steps, chains, ...) -> (chains, steps, ...)
    return jax.tree.map(lambda x: np.swapaxes(x, 0, 1) if x.ndim >= 2 else x, tree)


class Threaded(ChainLayout):
    """One single-chain program called from one thread per chain (up to 4 per core)."""

    name = "threaded"
    host_chains = True

    def __init__(self, programs: Programs, keys: jax.Array, seed: int, data: tuple, *, precision: str):
        super().__init__(programs, keys, seed, data, precision=precision)
        # A thread per chain (up to 4 per core): with a thread per core, a core whose chains finished their
        # chunk first idled until the others did (NUTS trajectories vary in length); with every chain
        # runnable the OS keeps both cores busy to the chunk's end. Warmup + sampling, 4 chains on 2
        # cores, paired runs: rat tumors 0.93-0.97x, logistic 0.99x.
        workers = min(self.chains, 4 * available_cores())
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pbj-chain")
        self._chain_keys = split_chains(keys)
        self._blas_limits = None
        if workers > 1:
            # XLA's CPU linear algebra (Cholesky, eigh, SVD at window ends) calls the BLAS/LAPACK
            # that SciPy loads, whose own threads then fight the chain threads for the cores:
            # a low-rank warmup of rat tumors took 18.5 s instead of 2.3 s on 2 cores. One BLAS
            # thread per chain thread while the chains run; restored in `close`.
            self._blas_limits = threadpool_limits(limits=1, user_api="blas")

    @classmethod
    def build(cls, base: Programs, mesh: Mesh | None) -> Programs:
        return jit_all(base, vmap_chains=False)

    def close(self, *, wait: bool = True) -> None:
        super().close(wait=wait)
        # wait=False: a second Ctrl-C; the chunks the chain threads are running end on their own
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        if self._blas_limits is not None:
            self._blas_limits.restore_original_limits()
            self._blas_limits = None

    def _each(self, fn) -> list:
        return list(self._pool.map(fn, range(self.chains)))

    def _ahead_args(self, start_shape):
        key = self._chain_keys[0]
        return (key, jax.ShapeDtypeStruct(start_shape[1:], np.float64), self.data), key

    def _init(self, positions):
        p = self.programs
        return self._each(lambda i: p.warmup_init(self._chain_keys[i], positions[i], self.data))

    def _warmup(self, start, n_valid, rows):
        p = self.programs

        def one(i):
            carry, stats = p.warmup(self.carry[i], self._chain_keys[i], start, n_valid, rows, self.data)
            return carry, host(stats)

        results = self._each(one)
        self.carry = [r[0] for r in results]
        return stack([r[1] for r in results])

    def _window_end(self):
        return self._each(lambda i: self.programs.window_end(self.carry[i]))

    def _finish(self):
        out = [self.programs.finish(c) for c in self.carry]
        return [o[0] for o in out], [o[1] for o in out]

    def _sample(self, start, n_valid):
        p = self.programs

        def one(i):
            carry, (pos, stats) = p.sample(
                self.carry[i], self.params[i], self._chain_keys[i], start, n_valid, self.data
            )
            return carry, host(pos), host(stats)

        results = self._each(one)
        self.carry = [r[0] for r in results]
        return np.stack([r[1] for r in results]), stack([r[2] for r in results])

    def _state(self):
        state = stack([host(c) for c in self.carry])
        params = None if self.params is None else stack([host(q) for q in self.params])
        return state, params

    def _load(self, state, params):
        n = self.chains
        self.carry = [jax.device_put(_index(state, i)) for i in range(n)]
        self.params = None if params is None else [jax.device_put(_index(params, i)) for i in range(n)]


def choose_layout(ensemble: bool, chains: int, requested: str) -> type[ChainLayout]:
    """The layout a run uses.

    "auto" and "parallel" shard chains over the devices when there are several (accelerators, forced
    host devices, or several processes after ``pbj.distributed.initialize``). On one CPU device they
    run one chain per thread: vmapped NUTS makes every chain wait for the longest trajectory, while
    JAX releases the GIL so threads run chains on separate cores. "auto" vmaps chains on a single
    accelerator, or when only one core is available. Samplers that adapt across chains
    (``ensemble``) always see every chain at once.
    """
    if ensemble:
        return Ensemble
    if requested == "vectorized":
        return Vectorized
    if requested not in ("auto", "parallel"):
        raise ValueError(f"chain_method={requested!r}: use 'auto', 'vectorized' or 'parallel'.")
    if jax.device_count() > 1 and (chains > 1 or jax.process_count() > 1):
        return Sharded
    if chains > 1 and requested == "auto" and (jax.default_backend() != "cpu" or available_cores() == 1):
        return Vectorized
    return Threaded
