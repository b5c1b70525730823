"""What every chain layout shares (see `run._layouts`): the phases the driver calls, the precision
scope, compiling the sampling programs while warmup runs, and checkpoints."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import numpy as np
from jax.sharding import Mesh

from pytensor_blackjax._checkpoint import Checkpoint, ResumePoint
from pytensor_blackjax.run._programs import Programs, float32_scope, map_programs

__all__ = ["ChainLayout", "host", "jit_all", "stack"]


def host(tree):
    """A tree of device arrays as host (NumPy) arrays."""
    return jax.tree.map(np.asarray, jax.device_get(tree))


def stack(trees):
    """Trees of the same structure stacked leaf by leaf on a new first axis."""
    return jax.tree.map(lambda *xs: np.stack(xs), *trees)


def jit_all(progs: Programs, *, vmap_chains: bool) -> Programs:
    """Every program jitted; with ``vmap_chains`` the per-chain ones mapped over a leading chain axis."""
    if not vmap_chains:
        return map_programs(lambda _, f: jax.jit(f), progs)
    return Programs(
        jax.jit(jax.vmap(progs.warmup_init, in_axes=(0, 0, None))),
        jax.jit(jax.vmap(progs.warmup, in_axes=(0, 0, None, None, None, None))),
        jax.jit(jax.vmap(progs.finish)),
        jax.jit(jax.vmap(progs.sample, in_axes=(0, 0, 0, None, None, None))),
        jax.jit(progs.constrain),
        jax.jit(progs.log_likelihood),
        None if progs.window_end is None else jax.jit(jax.vmap(progs.window_end)),
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
        self._window_ahead: threading.Thread | None = None
        self._cancel = threading.Event()  # set by `close`: compile nothing more ahead
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
        """End an adaptation window: the window-end program (`Programs.window_end`) on every chain."""
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
        state, params = jax.tree.unflatten(structure, [*point.state_leaves, *point.params_leaves])
        self._load(state, params)

    def close(self, *, wait: bool = True) -> None:
        """End the run. ``wait=False`` (after a Ctrl-C or an error) returns at once: a compilation
        running in the background is left to finish on its own, and no further one starts."""
        self._cancel.set()
        if wait:
            self._await_prepared()
            if self._window_ahead is not None:
                self._window_ahead.join()

    # -- compiling ahead -----------------------------------------------------------------------
    def prepare_sampling(self, chunk: int, *, with_log_likelihood: bool = False) -> None:
        """Compile the finish, sampling and constrain programs in a background thread, and the
        window-end program in another (call after `init`). Warmup runs meanwhile: XLA releases the GIL
        while it compiles and while chains run, so the compilation (or the load from the program store)
        overlaps the warmup program's compilation and the warmup. The programs are kept by their
        `StoredProgram`; the phases that need them wait for it. Layouts that cannot be described ahead
        (sharded) and float32 runs compile on first call."""
        if not self.storable or self._float32 or self._prepared is not None or self._start_shape is None:
            return
        p, (chains, dims) = self.programs, self._start_shape
        carry, key = self._one_carry_and_key()
        if p.window_end is not None:
            # needed first, after the first window (40 steps): it starts first
            window = p.window_end
            self._window_ahead = threading.Thread(
                target=lambda: _quietly(lambda: window.compiled(carry)),
                name="pbj-compile-window",
                daemon=True,
            )
            self._window_ahead.start()
        # one chunk of draws, flattened over chains, as `constrain` receives it
        flat = jax.ShapeDtypeStruct((chains * chunk, dims), np.float64)

        cancel = self._cancel

        def compile_ahead():
            # XLA cannot stop a compilation midway; after a Ctrl-C the one running ends and no other starts
            with contextlib.suppress(Exception):  # a failure here resurfaces in the phase's own call
                state, params = p.finish.compiled(carry).out_info
                steps = [lambda: p.sample.compiled(state, params, key, 0, chunk, self.data)]
                steps.append(lambda: p.constrain.compiled(flat, self.data))
                if with_log_likelihood:
                    steps.append(lambda: p.log_likelihood.compiled(flat, self.data))
                for step in steps:
                    if cancel.is_set():
                        return
                    step()

        self._prepared = threading.Thread(target=compile_ahead, name="pbj-compile", daemon=True)
        self._prepared.start()

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

    def _one_carry_and_key(self) -> tuple[Any, Any]:
        """The warmup state and key one call of the finish/sample programs takes."""
        return self.carry, self.keys

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


def _quietly(step: Callable[[], Any]) -> None:
    """Compile ahead; a failure resurfaces in the phase's own call."""
    with contextlib.suppress(Exception):
        step()
