"""What is compiled: the pure programs the driver runs (warmup init, warmup chunk, finish, sampling
chunk, constrain, log-likelihood), written for one chain or, for ensemble samplers, for all chains.

A chain layout (`run._layouts`) turns them into the programs it calls (jit, vmap, shard_map). They are
built once per (sampler, chunk length, thinning, layout, devices, precision) and kept in the compiled
model's program cache, so a second ``sample`` call - even with new data of the same shape - reuses
them; beneath that cache, the program store (`run._stored`) keeps them across processes.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from functools import partial, wraps
from typing import Any, ClassVar, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.run._keys import SAMPLING, WARMUP, step_key
from pytensor_blackjax.run._program_keys import signature
from pytensor_blackjax.run._stored import StoredProgram, config_identity, digest_of
from pytensor_blackjax.samplers import RunSize, Sampler
from pytensor_blackjax.samplers._base import PhaseStates, size_key

__all__ = [
    "CHAIN_AXIS",
    "Programs",
    "build_programs",
    "float32_scope",
    "has_warmup_draws",
    "PhaseCalls",
    "jit_program",
    "map_programs",
    "programs_for",
    "runs_one_step",
    "shares_one_program",
    "vmap_over_chains",
]

CHAIN_AXIS = "chains"


class Programs(NamedTuple):
    """Pure functions of one chain (per-chain samplers) or of all chains (ensemble samplers).

    With one program for both phases (`build_programs` with ``one_step``), ``warmup`` is that program,
    ``(wstate, key, start, n_valid, rows, data, phase, steps) -> (wstate, (positions, stats))`` (``steps``
    transitions per kept draw), and ``sample`` is None until `programs_for` puts the callers of both
    phases in (`PhaseCalls`).
    """

    warmup_init: Any  # (key, position, data) -> wstate
    warmup: Any  # (wstate, key, start, n_valid, rows, data) -> (wstate, stats)
    finish: Any  # (wstate) -> (state, params)
    sample: Any  # (state, params, key, start, n_valid, data) -> (state, (positions, stats))
    constrain: Any  # (flat positions (n, dims), data) -> dict of arrays (n, ...)
    log_likelihood: Any  # same, pointwise log-likelihood
    # (wstate) -> wstate at an adaptation window's end (on the host for layouts with host_chains);
    # None: inside `warmup`
    window_end: Any = None


class ChainLayoutLike(Protocol):
    """What `programs_for` needs of a chain layout class (`run._layouts`)."""

    name: ClassVar[str]
    storable: ClassVar[bool]

    one_step: ClassVar[bool]
    host_chains: ClassVar[bool]

    @classmethod
    def build(cls, base: Programs, mesh: Mesh | None) -> Programs: ...


def _skip_or(step, i, n_valid, carry, *args):
    """Run ``step`` for the first ``n_valid`` indices of a chunk; afterwards carry through unchanged.

    The skip branch needs the shapes of ``step``'s outputs. ``lax.cond`` traces the branches in order,
    so ``run`` records them as it is traced and ``skip`` reuses them; should the order ever differ,
    ``skip`` traces ``step`` itself (tracing a sampler step is the costly part of building a program).
    """
    seen = []

    def run(c):
        result = step(c, *args)
        seen.append(jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), result[1]))
        return result

    def skip(c):
        out = seen[-1] if seen else jax.eval_shape(lambda c2: step(c2, *args), c)[1]
        return c, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out)

    return jax.lax.cond(i < n_valid, run, skip, carry)


def build_programs(
    compiled: CompiledModel,
    sampler: Sampler,
    size: RunSize,
    chunk: int,
    thin: int,
    *,
    warmup_draws: bool = False,
    one_step: bool = False,
) -> Programs:
    """The pure programs of one run; ``warmup_draws``: the warmup program also returns the chain's
    position after every step, ``(wstate, (positions, stats))`` (samplers whose kernel has a
    ``warmup_position``), for ``sample(keep_warmup=True)``. ``one_step``: one program for warmup and
    sampling (see `Programs`; kernels with a `PhaseStep`)."""

    # whether the window ends run as a program of their own: the sampler says so without building a
    # kernel (building one imports Blackjax, which a run loading its programs never does)
    window_program = bool(getattr(sampler, "window_program", False))

    def kernel(data):
        return sampler.build(partial(compiled.flat_logdensity, data=data), compiled.num_dims, size)

    def checked_kernel(data):
        # the class attributes restate what the kernel has; a window_end no program ran would skip
        # every window's end without a word
        k = kernel(data)
        if (k.window_end is not None) != window_program:
            raise TypeError(
                f"{type(sampler).__name__}.window_program is {window_program} but its kernel's window_end "
                f"is {'set' if k.window_end is not None else 'None'}: set the class attribute "
                f"window_program = {k.window_end is not None}."
            )
        if one_step and k.phase_step is None:
            raise TypeError(
                f"{type(sampler).__name__}.phase_states is set but its kernel has no phase_step: give the "
                "kernel one, or set the class attribute phase_states = None."
            )
        return k

    def phases(wstate, key, start, n_valid, rows, data, phase, steps):
        # the transition compiles once for both phases: XLA compiled it twice, in the warmup and the
        # sampling program, which was half of a first run's compile time; the loop carries the chain
        # alone (a warmup state riding through it made every sampling step 40% slower when it last
        # shared one program), the estimator is fed after it. ``steps`` transitions per kept draw
        # (1 in warmup, ``thin`` when sampling): a runtime number, so that a thinned run warms up and
        # moves with the very executable an unthinned one uses
        k = checked_kernel(data)
        ph = k.phase_step
        adapt = phase == WARMUP
        carry, fixed = ph.split(wstate)

        def body(carry, i):
            def one(c):
                # the loop's first carry needs the types of a transition's stats: the transition is
                # traced once, for them, and JAX's trace cache gives the loop's body that same trace
                # (inlined: the program is the one a direct call makes). Tracing it a second time was
                # ~60% of the tracing of this program, on a first run's critical path
                transition = jax.jit(lambda k, c2: ph.step(k, c2, fixed, adapt), inline=True)

                def inner(state):
                    t, c2, _ = state
                    c2, stats = transition(step_key(key, phase, (start + i) * steps + t), c2)
                    return t + 1, c2, stats

                shapes = jax.eval_shape(transition, step_key(key, phase, 0), c)[1]
                blank = jax.tree.map(lambda t: jnp.zeros(t.shape, t.dtype), shapes)
                _, c, stats = jax.lax.while_loop(lambda state: state[0] < steps, inner, (0, c, blank))
                return c, (*ph.record(c), stats)

            return _skip_or(one, i, n_valid, carry)

        carry, (positions, fed, stats) = jax.lax.scan(body, carry, jnp.arange(chunk))
        mask = (rows[:, 0] == 1) & (jnp.arange(chunk) < n_valid)
        return ph.absorb(ph.join(carry, fixed), fed, mask), (positions, stats)

    def warmup_init(key, position, data):
        return kernel(data).warmup_init(key, position)

    def warmup(wstate, key, start, n_valid, rows, data):
        k = checked_kernel(data)

        def body(carry, xs):
            i, row = xs

            def one(c):
                return k.warmup_step(step_key(key, WARMUP, start + i), c, row)

            if warmup_draws:

                def with_position(c):
                    c, stats = one(c)
                    return c, (k.warmup_position(c), stats)

                return _skip_or(with_position, i, n_valid, carry)
            return _skip_or(lambda c: one(c), i, n_valid, carry)

        return jax.lax.scan(body, wstate, (jnp.arange(chunk), rows))

    def placeholder():
        # the finish and window-end steps need no log-density: built with a placeholder never called
        # (when traced: building a kernel imports Blackjax, which a run loading its programs never does)
        return sampler.build(lambda x: jnp.sum(x), compiled.num_dims, size)

    def finish(wstate):
        out = placeholder().warmup_finish(wstate)
        # strongly typed outputs: the sampling program compiled ahead from this program's output types
        # must be the one the sampling phase calls (a weak-typed step size made it compile twice)
        return jax.tree.map(lambda a: jax.lax.convert_element_type(a, jnp.result_type(a)), out)

    def sample(state, params, key, start, n_valid, data):
        k = kernel(data)

        def body(carry, i):
            def one(c):
                def inner(c2, t):
                    c2, stats = k.step(step_key(key, SAMPLING, (start + i) * thin + t), c2, params)
                    return c2, stats

                c, stats = jax.lax.scan(inner, c, jnp.arange(thin))
                return c, (k.position(c), jax.tree.map(lambda s: s[-1], stats))

            return _skip_or(one, i, n_valid, carry)

        return jax.lax.scan(body, state, jnp.arange(chunk))

    def constrain(flat, data):
        return jax.vmap(lambda x: compiled.flat_constrain(x, data))(flat)

    def log_likelihood(flat, data):
        return jax.vmap(lambda x: compiled.flat_log_likelihood(x, data))(flat)

    def window_end(wstate):
        return placeholder().window_end(wstate)

    window = window_end if window_program else None
    if one_step:
        return Programs(warmup_init, phases, finish, None, constrain, log_likelihood, window)
    return Programs(warmup_init, warmup, finish, sample, constrain, log_likelihood, window)


def runs_one_step(sampler: Sampler) -> bool:
    """Whether ``sampler`` warms up and samples with one program: its kernels have a `PhaseStep`
    (the class says so with ``phase_states``, known without building a kernel)."""
    return not sampler.ensemble and getattr(sampler, "phase_states", None) is not None


class PhaseCalls:
    """The warmup and sampling phases' calls of one program (`Programs` with ``one_step``), with the
    signatures of separate ``warmup`` and ``sample`` programs, so that layouts call either alike.

    The sampling phase's warmup state is the chain and parameters put into a placeholder of the
    warmup state's types (its step-size and estimator states are neither used nor kept), taken from
    the warmup-init program's output types: loaded or compiled, never traced (a warm run traces
    nothing).

    Args:
        program: the layout's (jitted, stored) program of both phases.
        init: the layout's warmup-init program (a `StoredProgram`), for the placeholder's types.
        phases: the sampler's `PhaseStates`.
        rows: the zero schedule rows of one sampling chunk.
        thin: transitions per kept draw in the sampling phase.
        positions: the warmup call also returns the positions (``warmup_draws``).
    """

    def __init__(self, program, init, phases: PhaseStates, rows: np.ndarray, thin: int, *, positions=False):
        self.program, self.init, self.phases = program, init, phases
        self.rows, self.thin, self.positions = rows, thin, positions
        self._templates: dict[tuple, Any] = {}

    def with_positions(self) -> PhaseCalls:
        return PhaseCalls(self.program, self.init, self.phases, self.rows, self.thin, positions=True)

    # the warmup phase: (wstate, key, start, n_valid, rows, data) -> (wstate, stats | (positions, stats))
    def warmup(self, wstate, key, start, n_valid, rows, data):
        wstate, (positions, stats) = self.program(wstate, key, start, n_valid, rows, data, WARMUP, 1)
        return wstate, ((positions, stats) if self.positions else stats)

    def warmup_compiled(self, wstate, key, start, n_valid, rows, data):
        return self.program.compiled(wstate, key, start, n_valid, rows, data, WARMUP, 1)

    # the sampling phase: (state, params, key, start, n_valid, data) -> (state, (positions, stats))
    def sample(self, state, params, key, start, n_valid, data):
        wstate = self.phases.rebuild(self._template(key, state, data), state, params)
        wstate, out = self.program(wstate, key, start, n_valid, self.rows, data, SAMPLING, self.thin)
        return self.phases.chain(wstate), out

    def sample_compiled(self, state, params, key, start, n_valid, data):
        wstate = self.phases.rebuild(self._template(key, state, data, types=True), state, params)
        return self.program.compiled(wstate, key, start, n_valid, self.rows, data, SAMPLING, self.thin)

    def _template(self, key, state, data, *, types: bool = False):
        position = self.phases.position(state)
        sig = signature((key, position, data))
        if sig not in self._templates:
            out = self.init.compiled(key, position, data).out_info
            self._templates[sig] = jax.tree.map(lambda t: np.zeros(t.shape, t.dtype), out)
        zeros = self._templates[sig]
        return jax.tree.map(lambda z: jax.ShapeDtypeStruct(z.shape, z.dtype), zeros) if types else zeros


class _Bound:
    """A `PhaseCalls` phase as a program: callable, with the ``compiled`` of `StoredProgram`."""

    def __init__(self, call, compiled, owner: PhaseCalls):
        self._call, self.compiled, self.owner = call, compiled, owner

    def __call__(self, *args):
        return self._call(*args)

    def compiled_count(self) -> int:
        return self.owner.program.compiled_count()


def shares_one_program(programs: Programs) -> bool:
    """Whether ``programs`` warm up and sample with one program (`programs_for` made it so)."""
    return isinstance(programs.sample, _Bound)


# XLA options for programs that run a few times per chain, not once per step: LLVM's optimisation
# passes are most of their compile time (the window-end program's 1.6 s -> 1.0 s; on a first run it
# compiles beside the warmup and sampling programs) and buy nothing measurable at run time
QUICK_COMPILE = {"xla_backend_optimization_level": 0}
_RARE = frozenset({"window_end", "finish"})


def jit_program(name: str, fn):
    """``jax.jit`` of the program ``name`` of `Programs` (`QUICK_COMPILE` for the rarely run ones)."""
    return jax.jit(fn, compiler_options=QUICK_COMPILE if name in _RARE else None)


def map_programs(fn, progs: Programs) -> Programs:
    """``fn(name, program)`` for every program there is (a sampler without a window-end program has
    None there, and keeps it)."""
    return Programs(
        *(None if p is None else fn(name, p) for name, p in zip(Programs._fields, progs, strict=True))
    )


# how each per-chain program maps over a leading chain axis (`jax.vmap`'s in_axes); None: the program
# is not per chain
_CHAIN_AXES = Programs(
    warmup_init=(0, 0, None),
    warmup=(0, 0, None, None, None, None),
    finish=0,
    sample=(0, 0, 0, None, None, None),
    constrain=None,
    log_likelihood=None,
    window_end=0,
)


def vmap_over_chains(progs: Programs) -> Programs:
    """The per-chain programs mapped over a leading chain axis; the others as they are."""

    def mapped(name, fn):
        axes = getattr(_CHAIN_AXES, name)
        if name == "warmup" and progs.sample is None:
            axes = (*axes, None, None)  # one program for both phases: the phase and steps per draw
        return fn if axes is None else jax.vmap(fn, in_axes=axes)

    return map_programs(mapped, progs)


# where each program takes the data tuple (None: the program does not evaluate the model)
_DATA_ARG = Programs(
    warmup_init=2, warmup=5, finish=None, sample=5, constrain=1, log_likelihood=1, window_end=None
)


def _stored(progs: Programs, compiled: CompiledModel, identity: str | None) -> Programs:
    """The programs looked up in, or saved to, the program store (see `_stored`); None: never stored."""
    model = digest_of(compiled)

    def stored(name, fn):
        arg = getattr(_DATA_ARG, name)
        return StoredProgram(
            fn, None if identity is None else f"{name}|{identity}", None if arg is None else model, arg
        )

    return map_programs(stored, progs)


_TRUNCATION = "Explicitly requested dtype (float64|int64|uint64|complex128) "


@contextlib.contextmanager
def float32_scope():
    """32-bit JAX for the current thread; PyTensor's 64-bit casts are truncated to 32 bits.

    The truncation warnings come from tracing only. The warnings filter is process-wide state, so it
    is changed from the main thread alone (which waits while worker threads trace).
    """
    with contextlib.ExitStack() as stack:
        stack.enter_context(jax.enable_x64(False))
        if threading.current_thread() is threading.main_thread():
            stack.enter_context(warnings.catch_warnings())
            warnings.filterwarnings("ignore", message=_TRUNCATION, category=UserWarning)
        yield


def _in_float32(fn):
    @wraps(fn)
    def call(*args):
        with float32_scope():
            return fn(*args)

    return call


def programs_for(
    compiled: CompiledModel,
    sampler: Sampler,
    layout: type[ChainLayoutLike],
    size: RunSize,
    chunk: int,
    thin: int,
    *,
    mesh: Mesh | None = None,
    precision: str = "float64",
    warmup_draws: bool = False,
) -> Programs:
    """The programs one chain layout calls (``layout.build`` of `build_programs`), looked up in the
    program store for layouts that allow it; ``precision="float32"`` traces and runs them with 32-bit
    JAX. Kept in the compiled model's program cache, under the sizes the sampler's programs depend on
    (`size_key`).

    ``warmup_draws``: the warmup program is the variant that also returns positions (see
    `build_programs`), kept under a key of its own; every other program is the default run's."""
    devices = None if mesh is None else tuple(d.id for d in mesh.devices.flat)
    size = size.only(sampler.size_fields)
    key = ("programs", sampler, size_key(sampler, size), chunk, thin, layout.name, devices, precision)
    progs = compiled.programs.get(
        key, lambda: _build(compiled, sampler, layout, size, chunk, thin, mesh, precision)
    )
    if not warmup_draws:
        return progs
    if isinstance(progs.warmup, _Bound):
        # one program for both phases returns the positions anyway
        calls = progs.warmup.owner.with_positions()
        return progs._replace(warmup=_Bound(calls.warmup, calls.warmup_compiled, calls))

    def with_draws() -> Programs:
        variant = _build(compiled, sampler, layout, size, chunk, thin, mesh, precision, warmup_draws=True)
        return progs._replace(warmup=variant.warmup)

    return compiled.programs.get((*key, "warmup_draws"), with_draws)


def _end_window_on_host(sampler: Sampler, num_dims: int, wstate):
    """A window's end for chains on this host: the sampler's `end_window` in NumPy (a program of its own
    cost a first run ~0.9 s of CPU to trace, lower and compile on rat tumors, a warm run its load and
    XLA's LAPACK set-up, ~0.35 s), its state left on the host for the next warmup call."""
    return sampler.end_window(jax.tree.map(np.asarray, jax.device_get(wstate)), num_dims)  # type: ignore[attr-defined]


def has_warmup_draws(sampler: Sampler, num_dims: int, size: RunSize) -> bool:
    """Whether ``sampler``'s warmup moves its chains step by step, so that its draws can be kept."""
    # building a kernel only makes closures; the log-density placeholder is never called
    kernel = sampler.build(lambda x: jnp.sum(x), num_dims, size.only(sampler.size_fields))
    return getattr(kernel, "warmup_position", None) is not None


def _build(compiled, sampler, layout, size, chunk, thin, mesh, precision, *, warmup_draws=False) -> Programs:
    one_step = layout.one_step and runs_one_step(sampler)
    base = build_programs(compiled, sampler, size, chunk, thin, warmup_draws=warmup_draws, one_step=one_step)
    progs = layout.build(base, mesh)
    if layout.storable:
        identity = config_identity(sampler)
        sizes = size_key(sampler, size)
        variant = "|warmup_draws" if warmup_draws else ""
        progs = _stored(
            progs,
            compiled,
            None
            if identity is None
            else f"{identity}|{sizes}|{chunk}|{thin}|{layout.name}|{precision}{variant}",
        )
    stored_init = progs.warmup_init
    if precision == "float32":
        progs = map_programs(lambda _, f: _in_float32(f), progs)
    if progs.window_end is not None and layout.host_chains:
        progs = progs._replace(window_end=partial(_end_window_on_host, sampler, compiled.num_dims))
    if one_step:
        rows = sampler.schedule(0)
        zero_rows = np.zeros((chunk, *rows.shape[1:]), rows.dtype)
        calls = PhaseCalls(progs.warmup, stored_init, sampler.phase_states, zero_rows, thin)
        progs = progs._replace(
            warmup=_Bound(calls.warmup, calls.warmup_compiled, calls),
            sample=_Bound(calls.sample, calls.sample_compiled, calls),
        )
    return progs
