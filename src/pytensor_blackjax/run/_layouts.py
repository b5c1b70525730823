"""Chain layouts: how chains are spread over the hardware. One class per layout owns both how its
programs are built (``jax.jit`` of one chain, ``jax.vmap``, ``jax.shard_map``) and how they are called
(threads, one call, one call spanning devices), and holds the chains' state between chunks.

* `Threaded`: one compiled single-chain program called from one thread per core. JAX releases the GIL
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

import contextlib
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from threadpoolctl import threadpool_limits

from pytensor_blackjax._checkpoint import Checkpoint, ResumePoint
from pytensor_blackjax.run._keys import root_key, split_chains
from pytensor_blackjax.run._programs import CHAIN_AXIS, Programs, float32_scope

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


def _jit_all(progs: Programs, *, vmap_chains: bool) -> Programs:
    """Every program jitted; with ``vmap_chains`` the per-chain ones mapped over a leading chain axis."""
    if not vmap_chains:
        return Programs(*(jax.jit(f) for f in progs))
    return Programs(
        jax.jit(jax.vmap(progs.warmup_init, in_axes=(0, 0, None))),
        jax.jit(jax.vmap(progs.warmup, in_axes=(0, 0, None, None, None, None))),
        jax.jit(jax.vmap(progs.finish)),
        jax.jit(jax.vmap(progs.sample, in_axes=(0, 0, 0, None, None, None))),
        jax.jit(progs.constrain),
        jax.jit(progs.log_likelihood),
    )


class ChainLayout:
    """The chains of one run, laid out one way. Subclasses say how programs are built (`build`) and
    called (the ``_``-prefixed phase methods); this base class adds what every layout shares: the
    precision scope, compiling the sampling programs while warmup runs, and checkpoints.

    Args:
        programs: the base (unjitted) programs of `run._programs.build_programs`, made by the caller
            with this layout's `build` and `program_key` (see `run._programs.programs_for`).
        keys: one key per chain, shape ``(chains,)``.
        seed: the run's seed (ensemble samplers use the run's key, not the chains').
        data: the data tuple, host arrays of the run's precision.
        precision: "float64" or "float32".
    """

    name: ClassVar[str]
    # whether this layout's programs can be kept in the program store (see `run._stored`)
    storable: ClassVar[bool] = True

    def __init__(self, programs: Programs, keys: jax.Array, seed: int, data: tuple, *, precision: str):
        self.programs, self.keys, self.data = programs, keys, data
        self.chains = int(keys.shape[0])
        self.carry: Any = None
        self.params: Any = None
        self._float32 = precision == "float32"
        self._prepared: threading.Thread | None = None
        self._start_shape: tuple[int, int] | None = None

    # -- how programs are built ----------------------------------------------------------------
    @classmethod
    def build(cls, base: Programs, mesh: Mesh | None) -> Programs:
        """The programs this layout calls, from the pure per-chain (or all-chain) ones."""
        raise NotImplementedError

    @classmethod
    def mesh_for(cls, chains: int) -> Mesh | None:
        """The devices the programs span (None: the default device)."""
        return None

    # -- phases (the driver's interface) -------------------------------------------------------
    def _scope(self):
        # entered by the main thread around every phase; see `float32_scope`
        return float32_scope() if self._float32 else contextlib.nullcontext()

    def init(self, positions: np.ndarray) -> None:
        """Start the warmup from ``positions`` (chains, dims)."""
        self._start_shape = positions.shape
        with self._scope():
            self.carry = self._init(positions)

    def warmup(self, start: int, n_valid: int, rows: np.ndarray) -> dict[str, np.ndarray]:
        """One chunk of warmup steps; returns its stats, ``(chains, chunk)`` each."""
        with self._scope():
            return self._warmup(start, n_valid, rows)

    def finish_warmup(self) -> None:
        self._await_prepared()
        with self._scope():
            self.carry, self.params = self._finish()

    def sample(self, start: int, n_valid: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One chunk of draws: flat positions ``(chains, chunk, dims)`` and stats ``(chains, chunk)``."""
        self._await_prepared()
        with self._scope():
            return self._sample(start, n_valid)

    def checkpoint(self, num_draws: int) -> Checkpoint:
        """Host copies of the chain state and parameters, chains stacked on the first axis."""
        state, params = self._state()
        return Checkpoint(layout=self.name, num_draws=num_draws, state=state, params=params)

    def restore(self, point: ResumePoint, structure: jax.tree_util.PyTreeDef) -> None:
        """Continue from a stored state; ``structure`` is that of ``(state, params)`` for this run."""
        state, params = jax.tree.unflatten(structure, [*point.state_leaves, *point.params_leaves])
        self._load(state, params)

    def close(self) -> None:
        self._await_prepared()

    # -- compiling ahead -----------------------------------------------------------------------
    def prepare_sampling(self, chunk: int, *, with_log_likelihood: bool = False) -> None:
        """Compile the finish, sampling and constrain programs in a background thread (call after
        `init`). Warmup runs meanwhile: XLA releases the GIL while it compiles and while chains run,
        so the compilation (or the load from the program store) overlaps the warmup. The programs
        are kept by their `StoredProgram`; the phases that need them wait for the thread. Layouts
        that cannot be described ahead (sharded) and float32 runs compile on first call."""
        if not self.storable or self._float32 or self._prepared is not None or self._start_shape is None:
            return
        p, (chains, dims) = self.programs, self._start_shape
        carry, key = self._one_carry_and_key()
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

    # -- what subclasses define ----------------------------------------------------------------
    def _one_carry_and_key(self) -> tuple[Any, Any]:
        """The warmup state and key one call of the finish/sample programs takes."""
        return self.carry, self.keys

    def _init(self, positions: np.ndarray) -> Any:
        raise NotImplementedError

    def _warmup(self, start: int, n_valid: int, rows: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _finish(self) -> tuple[Any, Any]:
        raise NotImplementedError

    def _sample(self, start: int, n_valid: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        raise NotImplementedError

    def _state(self) -> tuple[Any, Any]:
        return _host(self.carry), None if self.params is None else _host(self.params)

    def _load(self, state: Any, params: Any) -> None:
        self.carry = jax.device_put(state)
        self.params = None if params is None else jax.device_put(params)


class Vectorized(ChainLayout):
    """All chains in one vmapped program."""

    name = "vectorized"

    @classmethod
    def build(cls, base: Programs, mesh: Mesh | None) -> Programs:
        return _jit_all(base, vmap_chains=True)

    def _init(self, positions):
        return self.programs.warmup_init(self.keys, positions, self.data)

    def _warmup(self, start, n_valid, rows):
        self.carry, stats = self.programs.warmup(self.carry, self.keys, start, n_valid, rows, self.data)
        return _host(stats)

    def _finish(self):
        return self.programs.finish(self.carry)

    def _sample(self, start, n_valid):
        self.carry, (pos, stats) = self.programs.sample(
            self.carry, self.params, self.keys, start, n_valid, self.data
        )
        return _host(pos), _host(stats)


class Ensemble(Vectorized):
    """Samplers that adapt across chains: one program sees every chain, under the run's key."""

    name = "ensemble"

    def __init__(self, programs: Programs, keys: jax.Array, seed: int, data: tuple, *, precision: str):
        super().__init__(programs, keys, seed, data, precision=precision)
        self.keys = root_key(seed)

    @classmethod
    def build(cls, base: Programs, mesh: Mesh | None) -> Programs:
        return _jit_all(base, vmap_chains=False)

    def _warmup(self, start, n_valid, rows):
        return _steps_last(super()._warmup(start, n_valid, rows))

    def _sample(self, start, n_valid):
        pos, stats = super()._sample(start, n_valid)
        return _steps_last(pos), _steps_last(stats)


def _steps_last(tree):
    # ensemble programs scan over steps outermost: (steps, chains, ...) -> (chains, steps, ...)
    return jax.tree.map(lambda x: np.swapaxes(x, 0, 1) if x.ndim >= 2 else x, tree)


class Threaded(ChainLayout):
    """One single-chain program called from one thread per core."""

    name = "threaded"

    def __init__(self, programs: Programs, keys: jax.Array, seed: int, data: tuple, *, precision: str):
        super().__init__(programs, keys, seed, data, precision=precision)
        workers = min(self.chains, available_cores())
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
        return _jit_all(base, vmap_chains=False)

    def close(self) -> None:
        super().close()
        self._pool.shutdown(wait=True)
        if self._blas_limits is not None:
            self._blas_limits.restore_original_limits()
            self._blas_limits = None

    def _each(self, fn) -> list:
        return list(self._pool.map(fn, range(self.chains)))

    def _one_carry_and_key(self):
        return self.carry[0], self._chain_keys[0]

    def _init(self, positions):
        p = self.programs
        return self._each(lambda i: p.warmup_init(self._chain_keys[i], positions[i], self.data))

    def _warmup(self, start, n_valid, rows):
        p = self.programs

        def one(i):
            carry, stats = p.warmup(self.carry[i], self._chain_keys[i], start, n_valid, rows, self.data)
            return carry, _host(stats)

        results = self._each(one)
        self.carry = [r[0] for r in results]
        return _stack([r[1] for r in results])

    def _finish(self):
        out = [self.programs.finish(c) for c in self.carry]
        return [o[0] for o in out], [o[1] for o in out]

    def _sample(self, start, n_valid):
        p = self.programs

        def one(i):
            carry, (pos, stats) = p.sample(
                self.carry[i], self.params[i], self._chain_keys[i], start, n_valid, self.data
            )
            return carry, _host(pos), _host(stats)

        results = self._each(one)
        self.carry = [r[0] for r in results]
        return np.stack([r[1] for r in results]), _stack([r[2] for r in results])

    def _state(self):
        state = _stack([_host(c) for c in self.carry])
        params = None if self.params is None else _stack([_host(q) for q in self.params])
        return state, params

    def _load(self, state, params):
        n = self.chains
        self.carry = [jax.device_put(_index(state, i)) for i in range(n)]
        self.params = None if params is None else [jax.device_put(_index(params, i)) for i in range(n)]


def chain_mesh(chains: int) -> Mesh:
    """The devices chains are sharded over: all global devices when several processes take part
    (each must hold a share), else at most one device per chain."""
    devices = jax.devices()
    if jax.process_count() == 1:
        devices = devices[: max(1, min(len(devices), chains))]
    return Mesh(np.array(devices), (CHAIN_AXIS,))


class Sharded(ChainLayout):
    """Chains split over a mesh of devices, vmapped within a device. Keys travel as raw key data
    (uint32) so they can be laid out like any other array."""

    name = "sharded"
    storable = False

    def __init__(self, programs: Programs, keys: jax.Array, seed: int, data: tuple, *, precision: str):
        super().__init__(programs, keys, seed, data, precision=precision)
        mesh = self.mesh_for(self.chains)
        self.padded = math.ceil(self.chains / mesh.size) * mesh.size
        self._split = NamedSharding(mesh, PartitionSpec(CHAIN_AXIS))
        self._whole = NamedSharding(mesh, PartitionSpec())
        self._key_data = self._spread(np.asarray(jax.random.key_data(keys)))
        self._global_data = self._replicated(data)

    @classmethod
    def mesh_for(cls, chains: int) -> Mesh:
        return chain_mesh(chains)

    @classmethod
    def build(cls, base: Programs, mesh: Mesh | None) -> Programs:
        if mesh is None:
            raise ValueError("the sharded chain layout needs a device mesh")
        chains, rep = PartitionSpec(CHAIN_AXIS), PartitionSpec()
        wrap = jax.random.wrap_key_data
        v_init = jax.vmap(base.warmup_init, in_axes=(0, 0, None))
        v_warmup = jax.vmap(base.warmup, in_axes=(0, 0, None, None, None, None))
        v_sample = jax.vmap(base.sample, in_axes=(0, 0, 0, None, None, None))

        def mapped(fn, *specs):
            # no collectives inside: each device runs its chains alone, so replication checks are moot
            # (and would reject the samplers' lax.cond branches that return fresh constants)
            return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=chains, check_vma=False))

        return Programs(
            mapped(lambda kd, pos, data: v_init(wrap(kd), pos, data), chains, chains, rep),
            mapped(
                lambda ws, kd, start, n, rows, data: v_warmup(ws, wrap(kd), start, n, rows, data),
                chains, chains, rep, rep, rep, rep,
            ),
            mapped(jax.vmap(base.finish), chains),
            mapped(
                lambda st, params, kd, start, n, data: v_sample(st, params, wrap(kd), start, n, data),
                chains, chains, chains, rep, rep, rep,
            ),
            jax.jit(base.constrain),
            jax.jit(base.log_likelihood),
        )  # fmt: skip

    # host arrays <-> global arrays over the mesh
    def _put(self, x, sharding):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    def _spread(self, tree):
        """Host tree with ``chains`` rows -> global arrays with ``padded`` rows, split over devices."""

        def pad(x):
            x = np.asarray(x)
            extra = np.repeat(x[:1], self.padded - self.chains, axis=0)
            return self._put(np.concatenate([x, extra]), self._split)

        return jax.tree.map(pad, tree)

    def _replicated(self, tree):
        return jax.tree.map(lambda x: self._put(x, self._whole), tree)

    def _gather(self, tree):
        """Global arrays -> host arrays of the real chains (every process receives all of them)."""
        if jax.process_count() > 1:
            tree = multihost_utils.process_allgather(tree, tiled=True)
        return jax.tree.map(lambda x: np.asarray(x)[: self.chains], _host(tree))

    def _init(self, positions):
        return self.programs.warmup_init(self._key_data, self._spread(positions), self._global_data)

    def _warmup(self, start, n_valid, rows):
        put = self._replicated
        self.carry, stats = self.programs.warmup(
            self.carry, self._key_data, put(np.int32(start)), put(np.int32(n_valid)), put(rows),
            self._global_data,
        )  # fmt: skip
        return self._gather(stats)

    def _finish(self):
        return self.programs.finish(self.carry)

    def _sample(self, start, n_valid):
        put = self._replicated
        self.carry, out = self.programs.sample(
            self.carry, self.params, self._key_data, put(np.int32(start)), put(np.int32(n_valid)),
            self._global_data,
        )  # fmt: skip
        return self._gather(out)

    def _state(self):
        return self._gather(self.carry), None if self.params is None else self._gather(self.params)

    def _load(self, state, params):
        self.carry = self._spread(state)
        self.params = None if params is None else self._spread(params)


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
