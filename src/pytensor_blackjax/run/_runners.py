"""How chains are spread over the hardware. Each runner holds the chains' state between chunks.

* ``vectorized``: one program advances all chains together (``jax.vmap``); every chain waits for
  the longest trajectory at each step.
* ``threaded``: one compiled single-chain program, called from one thread per core; JAX releases the
  GIL while it runs, so chains proceed independently and meet only at chunk boundaries.
* ``sharded``: chains split over the devices of a mesh (every device of every process after
  ``pbj.distributed.initialize``), the chains on one device vmapped together; the chain count is
  padded to a multiple of the device count with copies of chain 0 that are dropped on the way out.
* ``ensemble``: samplers that adapt across chains see them all at once.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from threadpoolctl import threadpool_limits

from pytensor_blackjax.run._keys import split_chains
from pytensor_blackjax.run._programs import CHAIN_AXIS, Programs, float32_scope

__all__ = ["Runner", "available_cores", "chain_mesh"]


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


def chain_mesh(chains: int) -> Mesh:
    """The devices chains are sharded over: all global devices when several processes take part
    (each must hold a share), else at most one device per chain."""
    devices = jax.devices()
    if jax.process_count() == 1:
        devices = devices[: max(1, min(len(devices), chains))]
    return Mesh(np.array(devices), (CHAIN_AXIS,))


class _Layout:
    """Host arrays <-> global arrays laid out over a mesh, chains padded to a multiple of its size."""

    def __init__(self, mesh: Mesh, chains: int):
        self.chains = chains
        self.padded = math.ceil(chains / mesh.size) * mesh.size
        self._split = NamedSharding(mesh, PartitionSpec(CHAIN_AXIS))
        self._whole = NamedSharding(mesh, PartitionSpec())

    def _put(self, x, sharding):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    def spread(self, tree):
        """Host tree with ``chains`` rows -> global arrays with ``padded`` rows, split over devices."""

        def pad(x):
            x = np.asarray(x)
            extra = np.repeat(x[:1], self.padded - self.chains, axis=0)
            return self._put(np.concatenate([x, extra]), self._split)

        return jax.tree.map(pad, tree)

    def replicated(self, tree):
        return jax.tree.map(lambda x: self._put(x, self._whole), tree)

    def gather(self, tree):
        """Global arrays -> host arrays of the real chains (every process receives all of them)."""
        if jax.process_count() > 1:
            tree = multihost_utils.process_allgather(tree, tiled=True)
        return jax.tree.map(lambda x: np.asarray(x)[: self.chains], _host(tree))


class Runner:
    """Runs the chunk programs for all chains; ``carry`` stays on the device between chunks."""

    def __init__(
        self,
        programs: Programs,
        method: str,
        keys: jax.Array,
        data: tuple,
        *,
        mesh: Mesh | None = None,
        precision: str = "float64",
    ):
        self.programs, self.method, self.keys, self.data = programs, method, keys, data
        self.chains = int(keys.shape[0]) if method != "ensemble" else None
        self.carry: Any = None
        self.params: Any = None
        self._pool = None
        self._prepared: threading.Thread | None = None
        self._float32 = precision == "float32"
        if method == "sharded":
            self._layout = _Layout(mesh, self.chains)
            self._key_data = self._layout.spread(np.asarray(jax.random.key_data(keys)))
            self._global_data = self._layout.replicated(data)
        self._blas_limits = None
        if method == "threaded":
            workers = min(int(keys.shape[0]), available_cores())
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pbj-chain")
            self._chain_keys = split_chains(keys)
            if workers > 1:
                # XLA's CPU linear algebra (Cholesky, eigh, SVD at window ends) calls the BLAS/LAPACK
                # that SciPy loads, whose own threads then fight the chain threads for the cores:
                # a low-rank warmup of rat tumors took 18.5 s instead of 2.3 s on 2 cores. One BLAS
                # thread per chain thread while the chains run; restored in `close`.
                self._blas_limits = threadpool_limits(limits=1, user_api="blas")

    def _scope(self):
        # entered by the main thread around every phase; see `float32_scope`
        return float32_scope() if self._float32 else contextlib.nullcontext()

    def close(self) -> None:
        self._await_prepared()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._blas_limits is not None:
            self._blas_limits.restore_original_limits()
            self._blas_limits = None

    # -- compiling ahead -----------------------------------------------------------------------
    def prepare_sampling(self, chunk: int, *, with_log_likelihood: bool = False) -> None:
        """Compile the sampling, finish and constrain programs in a background thread (call after
        `init`). Warmup runs meanwhile: XLA releases the GIL while it compiles and while chains run,
        so the compilation (or the load from the program store) overlaps the warmup. The programs
        are kept by their `StoredProgram`; the phases that need them wait for the thread. Runs that
        cannot be described ahead (sharded, float32) compile on first call as before."""
        if self.method == "sharded" or self._float32 or self._prepared is not None:
            return
        p = self.programs
        carry = self.carry[0] if self.method == "threaded" else self.carry
        key = self._chain_keys[0] if self.method == "threaded" else self.keys
        chains, dims = self._start_shape
        # one chunk of draws, flattened over chains, as `constrain` receives it
        flat = jax.ShapeDtypeStruct((chains * chunk, dims), np.float64)

        def compile_ahead():
            with contextlib.suppress(Exception):  # a failure here resurfaces in the phase's own call
                state, params = p.finish.compiled(carry).out_info
                p.sample.compiled(state, params, key, 0, chunk, self.data)
                p.constrain.compiled(flat, self.data)
                if with_log_likelihood:
                    p.log_likelihood.compiled(flat, self.data)

        self._prepared = threading.Thread(target=compile_ahead, name="pbj-compile", daemon=True)
        self._prepared.start()

    def _await_prepared(self) -> None:
        if self._prepared is not None:
            self._prepared.join()

    # -- phases ------------------------------------------------------------------------------
    def init(self, positions: np.ndarray) -> None:
        with self._scope():
            self._init(positions)

    def _init(self, positions: np.ndarray) -> None:
        self._start_shape = positions.shape
        p = self.programs
        if self.method == "sharded":
            self.carry = p.warmup_init(self._key_data, self._layout.spread(positions), self._global_data)
        elif self.method == "threaded":
            self.carry = list(
                self._pool.map(
                    lambda i: p.warmup_init(self._chain_keys[i], positions[i], self.data),
                    range(len(positions)),
                )
            )
        else:
            self.carry = p.warmup_init(self.keys, positions, self.data)

    def warmup(self, start: int, n_valid: int, rows: np.ndarray) -> dict:
        with self._scope():
            return self._warmup(start, n_valid, rows)

    def _warmup(self, start: int, n_valid: int, rows: np.ndarray) -> dict:
        p = self.programs
        if self.method == "sharded":
            put = self._layout.replicated
            self.carry, stats = p.warmup(
                self.carry,
                self._key_data,
                put(np.int32(start)),
                put(np.int32(n_valid)),
                put(rows),
                self._global_data,
            )
            return self._layout.gather(stats)
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
        self._await_prepared()
        with self._scope():
            self._finish_warmup()

    def _finish_warmup(self) -> None:
        p = self.programs
        if self.method == "threaded":
            out = [p.finish(c) for c in self.carry]
            self.carry = [o[0] for o in out]
            self.params = [o[1] for o in out]
        else:
            self.carry, self.params = p.finish(self.carry)

    def sample(self, start: int, n_valid: int) -> tuple[np.ndarray, dict]:
        self._await_prepared()
        with self._scope():
            return self._sample(start, n_valid)

    def _sample(self, start: int, n_valid: int) -> tuple[np.ndarray, dict]:
        p = self.programs
        if self.method == "sharded":
            put = self._layout.replicated
            self.carry, out = p.sample(
                self.carry,
                self.params,
                self._key_data,
                put(np.int32(start)),
                put(np.int32(n_valid)),
                self._global_data,
            )
            return self._layout.gather(out)
        if self.method == "threaded":

            def one(i):
                carry, (pos, stats) = p.sample(
                    self.carry[i], self.params[i], self._chain_keys[i], start, n_valid, self.data
                )
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
        if self.method == "sharded":
            return self._layout.gather(self.carry), None if self.params is None else self._layout.gather(
                self.params
            )
        return _host(self.carry), None if self.params is None else _host(self.params)

    def load(self, carry: Any, params: Any) -> None:
        """Restore a state saved by `state` (the structure must match this sampler's)."""
        if self.method == "threaded":
            n = len(self._chain_keys)
            self.carry = [jax.device_put(_index(carry, i)) for i in range(n)]
            self.params = None if params is None else [jax.device_put(_index(params, i)) for i in range(n)]
        elif self.method == "sharded":
            self.carry = self._layout.spread(carry)
            self.params = None if params is None else self._layout.spread(params)
        else:
            self.carry = jax.device_put(carry)
            self.params = None if params is None else jax.device_put(params)
