"""What every chain layout shares (see `run._layouts`): the phases the driver calls, the precision
scope, compiling the sampling programs while warmup runs, and checkpoints."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from pytensor_blackjax._checkpoint import Checkpoint, ResumePoint
from pytensor_blackjax._preload import release as release_preload
from pytensor_blackjax.run._programs import (
    Programs,
    float32_scope,
    jit_program,
    map_programs,
    shares_one_program,
    vmap_over_chains,
)
from pytensor_blackjax.run._stored import LowerFirst, wait_for_lowerings

__all__ = ["ChainLayout", "available_cores", "host", "jit_all", "stack"]


def available_cores() -> int:
    """The processors this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def host(tree):
    """A tree of device arrays as host (NumPy) arrays."""
    return jax.tree.map(np.asarray, jax.device_get(tree))


def stack(trees):
    """Trees of the same structure stacked leaf by leaf on a new first axis."""
    return jax.tree.map(lambda *xs: np.stack(xs), *trees)


def jit_all(progs: Programs, *, vmap_chains: bool) -> Programs:
    """Every program jitted; with ``vmap_chains`` the per-chain ones mapped over a leading chain axis."""
    return map_programs(jit_program, vmap_over_chains(progs) if vmap_chains else progs)


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
    # whether each chain has a state of its own on this host: the warmup-init program then judges
    # random starts (`finite_chains`, `run._start.random_starts`) and a window's end runs on the host
    # in NumPy, not as a program (`run._programs._end_window_on_host`)
    host_chains: ClassVar[bool] = False
    # whether it runs one program for warmup and sampling where the sampler allows
    # (`run._programs.runs_one_step`); such a layout's programs are stored
    one_step: ClassVar[bool] = True

    def __init__(self, programs: Programs, keys: jax.Array, seed: int, data: tuple, *, precision: str):
        self.programs, self.keys, self.data = programs, keys, data
        self.chains = int(keys.shape[0])
        self.carry: Any = None
        self.params: Any = None
        self._float32 = precision == "float32"
        self._prepared: threading.Thread | None = None
        self._side: list[threading.Thread] = []  # further programs compiling ahead (see `prepare`)
        self._cancel = threading.Event()  # set by `close`: compile nothing more ahead

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
        with self._scope():
            self.carry = self._init(positions)

    def finite_chains(self) -> np.ndarray:
        """Per chain, whether every number in its warmup state is finite: for per-chain samplers, whether
        the log-density and its gradient are finite at its start (the state holds both, and nothing
        else in it is infinite or NaN at a finite start; tests/test_sample_core.py)."""
        per_chain = isinstance(self.carry, list)  # one state per chain, or one with a chain axis
        finite = np.ones(self.chains, bool)
        for i, tree in enumerate(self.carry if per_chain else [self.carry]):
            for leaf in jax.tree.leaves(tree):
                if jnp.issubdtype(leaf.dtype, jnp.inexact):  # not keys, counts or flags
                    ok = np.isfinite(np.asarray(leaf))
                    if per_chain:
                        finite[i] &= bool(ok.all())
                    else:
                        finite &= ok.reshape(self.chains, -1).all(axis=1)
        return finite

    def warmup(
        self, start: int, n_valid: int, rows: np.ndarray
    ) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
        """One chunk of warmup steps: the flat positions after each step, ``(chains, chunk, dims)``, when
        the warmup program is the variant that returns them (else None), and the stats, ``(chains,
        chunk)`` each."""
        with self._scope():
            out = self._warmup(start, n_valid, rows)
        return out if isinstance(out, tuple) else (None, out)

    def window_end(self) -> None:
        """End an adaptation window: `Programs.window_end` (a program, or a host function for layouts
        with ``host_chains``) on every chain."""
        with self._scope():
            self.carry = self._window_end()

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
        release_preload()  # nothing is compiled ahead here: the results side imports from now on
        state, params = jax.tree.unflatten(structure, [*point.state_leaves, *point.params_leaves])
        self._load(state, params)

    def close(self, *, wait: bool = True) -> None:
        """End the run. ``wait=False`` (after a Ctrl-C or an error) returns at once: a compilation
        running in the background is left to finish on its own, and no further one starts."""
        self._cancel.set()
        if wait:
            self._await_prepared()
            for thread in list(self._side):
                thread.join()

    # -- compiling ahead -----------------------------------------------------------------------
    def prepare(
        self,
        start_shape: tuple[int, int],
        chunk: int,
        rows: np.ndarray | None,
        *,
        with_log_likelihood: bool = False,
    ) -> None:
        """Compile the run's programs in background threads, from their argument types: call it before
        the start points are found. One thread compiles the warmup-init program, then starts one for
        the warmup program and one for the window-end program, and goes on with the finish, sampling
        and constrain programs. XLA releases the GIL while it compiles and while chains run, so these
        compilations (or loads from the program store) overlap each other, the start-point search and
        the warmup. The programs are kept by their `StoredProgram`: a phase that calls one while it
        compiles waits for it. Layouts that cannot be described ahead (sharded) and float32 runs
        compile on first call.

        Args:
            start_shape: ``(chains, dims)`` of the start points.
            chunk: the chunk length.
            rows: one warmup chunk's schedule rows (their types); None: there is no warmup.
            with_log_likelihood: compile the pointwise log-likelihood program too.
        """
        if not self.storable or self._float32 or self._prepared is not None:
            release_preload()  # these compile on first call, after the results side would have loaded
            return
        p, (chains, dims) = self.programs, start_shape
        init_args, key = self._ahead_args(start_shape)
        # one chunk of draws, flattened over chains, as `constrain` receives it
        flat = jax.ShapeDtypeStruct((chains * chunk, dims), np.float64)
        cancel, side = self._cancel, self._side
        _CANCELS.add(cancel)

        def beside(step: Callable[[], Any]) -> None:
            if not cancel.is_set():
                side.append(_start_compiling(step))

        def compile_ahead(first: LowerFirst):
            # XLA cannot stop a compilation midway; after a Ctrl-C the one running ends and no other starts
            # the warmup-init program's output types from its trace: the warmup program (the longest
            # compilation) starts beside it, not after it, and is lowered before any other program
            # (the warmup-init one's lowering waits for it: `LowerFirst`)
            with first.exempt():  # a stored warmup-init program that fails to load is compiled here
                carry = p.warmup_init.out_types(*init_args)
            if rows is not None:

                def warmup_first():
                    with first.carried():
                        p.warmup.compiled(carry, key, 0, chunk, rows, self.data)

                beside(warmup_first)
                if p.window_end is not None and not self.host_chains:
                    beside(lambda: p.window_end.compiled(carry))
            if rows is None or cancel.is_set():  # no thread carries the claim
                first.release()
            p.warmup_init.compiled(*init_args)
            state, params = p.finish.compiled(carry).out_info
            # the warmup program is lowered beside this thread meanwhile; then XLA compiles (or, with the
            # programs loaded from the store, the chains run) without the GIL, and the results side can
            # import (`_preload`, yielding cores and GIL to the chains) without delaying a trace
            wait_for_lowerings()
            release_preload()
            steps = [lambda: p.constrain.compiled(flat, self.data)]
            if with_log_likelihood:
                steps.append(lambda: p.log_likelihood.compiled(flat, self.data))
            sampling = [lambda: p.sample.compiled(state, params, key, 0, chunk, self.data)]
            # with one program for both phases the sampling program is the warmup program, compiling in
            # another thread: waiting for it first put the small programs' compilations after it, on
            # the first run's critical path (the first chunk of draws needs `constrain`), while a
            # core idled beside XLA; a sampling program of its own is the larger one and goes first
            steps = steps + sampling if shares_one_program(p) else sampling + steps
            for step in steps:
                if cancel.is_set():
                    return
                step()

        # claimed before any thread starts: a chain's warmup-init program may be traced at once
        first = LowerFirst()

        def compile_ahead_then_release():
            try:
                compile_ahead(first)
            finally:
                first.release()
                release_preload()

        self._prepared = _start_compiling(compile_ahead_then_release)

    def await_prepared(self, stop: Callable[[], bool]) -> bool:
        """Wait for the programs compiling in the background; False as soon as ``stop()`` is true
        (checked every 0.1 s: a Ctrl-C need not wait for a compilation it does not need)."""
        while self._prepared is not None and self._prepared.is_alive():
            if stop():
                return False
            self._prepared.join(0.1)
        return not stop()

    def _await_prepared(self) -> None:
        if self._prepared is not None:
            self._prepared.join()

    # -- what subclasses define ----------------------------------------------------------------
    def _window_end(self) -> Any:
        raise NotImplementedError

    def _ahead_args(self, start_shape: tuple[int, int]) -> tuple[tuple, Any]:
        """The arguments (types) of one call of the warmup-init program for start points of this shape,
        and the key one call of the warmup and sampling programs takes."""
        return (self.keys, jax.ShapeDtypeStruct(start_shape, np.float64), self.data), self.keys

    def _init(self, positions: np.ndarray) -> Any:
        raise NotImplementedError

    def _warmup(self, start: int, n_valid: int, rows: np.ndarray) -> Any:
        """The warmup program's output on the host: stats, or ``(positions, stats)``."""
        raise NotImplementedError

    def _finish(self) -> tuple[Any, Any]:
        raise NotImplementedError

    def _sample(self, start: int, n_valid: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        raise NotImplementedError

    def _state(self) -> tuple[Any, Any]:
        return host(self.carry), None if self.params is None else host(self.params)

    def _load(self, state: Any, params: Any) -> None:
        self.carry = jax.device_put(state)
        self.params = None if params is None else jax.device_put(params)


# Compilations running ahead, and their layouts' cancel flags. A process that exits while XLA compiles
# in a daemon thread aborts ("FATAL: exception not rethrown", exit status 134) after its work is done
# (e.g. a run that raised on bad input before its programs were needed): at exit no further program
# starts and the running ones are waited for.
_COMPILING: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_CANCELS: weakref.WeakSet[threading.Event] = weakref.WeakSet()


@atexit.register
def _finish_compiling() -> None:
    for cancel in list(_CANCELS):
        cancel.set()
    for thread in list(_COMPILING):
        thread.join()


def _start_compiling(step: Callable[[], Any]) -> threading.Thread:
    """``step`` (compiling ahead) started in a daemon thread that the process waits for at exit; a
    failure there resurfaces in the call of the phase that needs the program."""

    def quietly() -> None:
        with contextlib.suppress(Exception):
            step()

    thread = threading.Thread(target=quietly, name="pbj-compile", daemon=True)
    _COMPILING.add(thread)
    thread.start()
    return thread
