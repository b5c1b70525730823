"""CompiledModel: a `Model` turned into JAX callables over named or flat unconstrained positions."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytensor

from pytensor_blackjax._validate import check_data
from pytensor_blackjax.compile._cache import ProgramCache
from pytensor_blackjax.compile._fingerprint import graph_fingerprint
from pytensor_blackjax.compile._indices import index_limits
from pytensor_blackjax.compile._jaxify import _freeze_shared, _import_dispatch, enable_x64, jaxify
from pytensor_blackjax.model import Model

__all__ = ["CompiledModel", "compile"]

Position = dict[str, jax.Array]


@dataclass(frozen=True)
class Block:
    """Where one named array sits in the flat vector."""

    name: str
    shape: tuple[int, ...]
    start: int
    size: int


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """JAX callables for one model; data travel as arguments, so new data never recompile.

    Attributes:
        model: the source description.
        blocks: layout of the flat unconstrained vector (one `Block` per value, in order).
        num_dims: length of the flat vector.
        output_shapes: name -> shape of each reported quantity (parameters, deterministics).
        default_data: name -> the data declared with the model.
        programs: the programs compiled for this model (start points, warmup, sampling, ...), built
            on first use by the driver and kept as long as the model.
    """

    model: Model
    blocks: tuple[Block, ...]
    num_dims: int
    output_shapes: Mapping[str, tuple[int, ...]]
    output_dtypes: Mapping[str, str]
    loglik_shapes: Mapping[str, tuple[int, ...]]
    default_data: Mapping[str, np.ndarray]
    _logp: Callable = field(repr=False)
    _outputs: Callable = field(repr=False)
    _loglik: Callable | None = field(repr=False)
    programs: ProgramCache = field(default_factory=ProgramCache, repr=False)
    # integer data used as indices -> length of the dimension indexed (None: not static); see _indices
    index_limits: Mapping[str, int | None] = field(default_factory=dict)
    # digest of the PyTensor graphs (`_fingerprint`), None if they cannot be digested; the program store
    # keeps the JAX model's digest under it
    fingerprint: bytes | None = field(default=None, repr=False)

    # -- layout -----------------------------------------------------------------------------
    @property
    def value_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.blocks)

    @property
    def data_names(self) -> tuple[str, ...]:
        return tuple(self.default_data)

    def ravel(self, position: Mapping[str, Any]) -> jax.Array:
        """Dict of unconstrained arrays -> flat vector (trailing batch axes not allowed)."""
        return jnp.concatenate([jnp.reshape(v, (-1,)) for v in self._values_of(position)])

    def unravel(self, flat: jax.Array) -> Position:
        """Flat vector -> dict of unconstrained arrays."""
        return {b.name: jnp.reshape(flat[b.start : b.start + b.size], b.shape) for b in self.blocks}

    def data_tuple(self, data: Mapping[str, Any] | None = None) -> tuple:
        """The data arguments of the compiled functions: the model's own, replaced by ``data``.

        Raises:
            ValueError, TypeError: ``data`` names unknown data, or has another shape or kind.
        """
        if data and not any(isinstance(v, jax.core.Tracer) for v in data.values()):
            data = check_data(self.default_data, data)
        data = {**self.default_data, **(data or {})}
        # device_put, not jnp.asarray: the latter compiles a small program per shape in every process
        return tuple(_as_array(data[name]) for name in self.default_data)

    # -- densities --------------------------------------------------------------------------
    def flat_logdensity(self, flat: jax.Array, data: tuple) -> jax.Array:
        """Log-density of a flat unconstrained vector given a data tuple (see `data_tuple`)."""
        values = [flat[b.start : b.start + b.size].reshape(b.shape) for b in self.blocks]
        (out,) = self._logp(*values, *data)
        return out

    def _values_of(self, position: Mapping[str, Any]) -> list[jax.Array]:
        missing = [b.name for b in self.blocks if b.name not in position]
        if missing:
            raise KeyError(
                f"position lacks {missing}: positions are keyed by the unconstrained value names "
                f"{list(self.value_names)} (e.g. from initial_position), not by constrained parameter names."
            )
        return [jnp.asarray(position[b.name]) for b in self.blocks]

    def logdensity_fn(self, position: Mapping[str, Any]) -> jax.Array:
        """Log-density of a position keyed by value name, with the model's own data.

        Works under ``jax.jit``, ``jax.grad`` and ``jax.vmap``.

        Raises:
            KeyError: ``position`` lacks one of the value names.
        """
        (out,) = self._logp(*self._values_of(position), *self.data_tuple())
        return out

    def logdensity_with(self, data: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], jax.Array]:
        """``logdensity_fn`` with other data of the same shapes."""
        data_args = self.data_tuple(data)

        def logdensity(position):
            (out,) = self._logp(*self._values_of(position), *data_args)
            return out

        return logdensity

    def initial_position(self, rng_key: jax.Array, radius: float = 2.0) -> Position:
        """A Stan-style starting point: uniform(-radius, radius) in unconstrained space, as a chain of
        the driver starts (`pytensor_blackjax.samplers._start`, which decides starting points)."""
        # imported here: the samplers sit above this stage, and their start module needs none of them
        from pytensor_blackjax.samplers._start import uniform_point

        return self.unravel(uniform_point(rng_key, self.num_dims, radius))

    # -- reporting --------------------------------------------------------------------------
    def flat_constrain(self, flat: jax.Array, data: tuple) -> dict[str, jax.Array]:
        values = [flat[b.start : b.start + b.size].reshape(b.shape) for b in self.blocks]
        outs = self._outputs(*values, *data)
        return dict(zip(self.output_shapes, outs, strict=True))

    def flat_log_likelihood(self, flat: jax.Array, data: tuple) -> dict[str, jax.Array]:
        if self._loglik is None:
            return {}
        values = [flat[b.start : b.start + b.size].reshape(b.shape) for b in self.blocks]
        outs = self._loglik(*values, *data)
        return dict(zip(self.loglik_shapes, outs, strict=True))

    def constrain(self, position: Mapping[str, Any], data: Mapping[str, Any] | None = None) -> Position:
        """Constrained parameters and deterministics at one unconstrained position."""
        return self.flat_constrain(self.ravel(position), self.data_tuple(data))


# one conversion at a time in the process: PyTensor's rewrites were never meant to run in two threads
_JAXIFY_LOCK = threading.Lock()


class _Jaxified:
    """``jaxify(inputs, outputs)`` under ``jax.jit(inline=True)``, made on first call. A run whose
    programs all come from the program store never calls it: PyTensor's JAX dispatch, its rewrites and
    the conversion to JAX are skipped."""

    def __init__(self, inputs: list, outputs: list):
        # shared variables become constants of their value now, as when the functions were made here
        self._inputs, self._outputs = inputs, _freeze_shared(outputs)
        self._fn: Callable | None = None

    def build(self) -> Callable:
        with _JAXIFY_LOCK:
            if self._fn is None:
                # inlined into every program that calls it (the same program as a direct call), while
                # JAX's trace cache keeps its trace: each further program of the run (start points,
                # warmup init, the phases) reuses it instead of running the conversion's Python again
                self._fn = jax.jit(_outside_traces(lambda: jaxify(self._inputs, self._outputs)), inline=True)
            return self._fn

    def __call__(self, *args):
        return (self._fn or self.build())(*args)


def _outside_traces(make: Callable[[], Callable]) -> Callable:
    """``make()`` run as ``compile`` runs it: outside any JAX trace, in 64-bit mode. The first call may
    come from inside a trace (a program of the model being traced); the model's constants made there
    would belong to that trace (a program compiled so expected one argument more than it was given).
    JAX's trace and precision contexts belong to a thread: a new thread starts outside both."""
    out: list[Any] = []

    def run() -> None:
        try:
            # first, outside the 64-bit context: the import puts back the process's flag as it reads it
            _import_dispatch()
            with jax.enable_x64(True):
                out.append(make())
        except BaseException as e:  # noqa: BLE001 - raised again in the calling thread
            out.append(e)

    thread = threading.Thread(target=run, name="pbj-jaxify")
    thread.start()
    thread.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


# The compiled model is kept on the model itself (``_compiled``): a model <-> compiled-model cycle that the
# garbage collector frees together, where a weak-keyed cache whose values refer to their keys never would.
_SLOT = "_compiled"


def _static_shapes(exprs) -> dict[str, tuple[int, ...]]:
    """Output shapes from the static types, when every one is known; else ``{}``, and `compile` finds
    them by abstract evaluation once the model's layout is known."""
    if not exprs:
        return {}
    static = {k: v.type.shape for k, v in exprs.items()}
    if all(None not in s for s in static.values()):
        return {k: tuple(int(d) for d in s) for k, s in static.items()}
    return {}


def compile(model: Model) -> CompiledModel:  # noqa: A001 - the public verb of this stage
    """Turn a `Model` into JAX callables; the result is cached on the model object.

    Compiling switches on JAX's 64-bit mode for the process (`enable_x64`): the compiled model computes
    in float64 unless a run asks for ``precision="float32"``.

    When the program store holds this model's programs (an earlier process sampled it: see
    `run._stored`), its JAX functions are made on first call instead of here; a run that loads every
    program never makes them.

    Args:
        model: from ``Model.from_logp``, `ModelBuilder` or ``Model.from_pymc``.

    Returns:
        A frozen `CompiledModel`.

    Raises:
        ValueError: the graphs depend on root variables that are neither values nor declared data.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> compiled = pbj.compile(pbj.examples.rat_tumors())
        >>> compiled.num_dims
        73
    """
    if not isinstance(model, Model):
        raise TypeError(
            f"compile(model): expected a pbj.Model, got {type(model).__name__}; build one with "
            "pbj.Model.from_logp, pbj.ModelBuilder or pbj.Model.from_pymc."
        )
    enable_x64()
    cached = model.__dict__.get(_SLOT)
    if cached is not None:
        return cached
    stray = model.free_graph_inputs()
    if stray:
        raise ValueError(
            f"the model's graphs depend on {[str(v) for v in stray]}, which are neither inputs nor data; "
            "list them as inputs (free parameters) or declare them as data."
        )
    blocks, start = [], 0
    for name, shape in model.value_shapes.items():
        size = math.prod(shape)
        blocks.append(Block(name, shape, start, size))
        start += size
    data_vars = [d.variable for d in model.data.values()]
    inputs = [*model.values, *data_vars]
    logp_fn = _Jaxified(inputs, [model.logp])
    outputs_fn = _Jaxified(inputs, list(model.outputs.values())) if model.outputs else None
    loglik_fn = _Jaxified(inputs, list(model.log_likelihood.values())) if model.log_likelihood else None
    functions = {
        "logp": {"logp": model.logp},
        "outputs": model.outputs,
        "log_likelihood": model.log_likelihood,
    }
    layout = tuple((b.name, b.shape, b.start, b.size) for b in blocks)
    compiled = CompiledModel(
        model=model,
        blocks=tuple(blocks),
        num_dims=start,
        output_shapes=_static_shapes(model.outputs),
        output_dtypes={k: v.type.dtype for k, v in model.outputs.items()},
        loglik_shapes=_static_shapes(model.log_likelihood),
        default_data={k: np.asarray(d.value) for k, d in model.data.items()},
        _logp=logp_fn,
        _outputs=outputs_fn or (lambda *a: ()),
        _loglik=loglik_fn,
        index_limits=index_limits(model),
        fingerprint=graph_fingerprint(inputs, functions, layout),
    )
    if not _programs_stored(compiled):
        # made now, as they always were: a graph JAX cannot run fails here, not in a program's trace
        for fn in (logp_fn, outputs_fn, loglik_fn):
            if fn is not None:
                fn.build()
    for attr, fn, exprs in (
        ("output_shapes", outputs_fn, model.outputs),
        ("loglik_shapes", loglik_fn, model.log_likelihood),
    ):
        if exprs and not getattr(compiled, attr):
            shapes = jax.eval_shape(
                lambda flat, data, fn=fn: fn(*_split(compiled, flat), *data),
                jax.ShapeDtypeStruct((compiled.num_dims,), jnp.float64),
                compiled.data_tuple(),
            )
            found = {k: tuple(o.shape) for k, o in zip(exprs, shapes, strict=True)}
            object.__setattr__(compiled, attr, found)
    object.__setattr__(model, _SLOT, compiled)
    return compiled


def _programs_stored(compiled: CompiledModel) -> bool:
    """Whether the program store holds this model's digest for its own data: then its programs were
    stored by an earlier run, and making its JAX functions waits until something calls them."""
    if compiled.fingerprint is None:
        return False
    if pytensor.config.floatX != "float64":
        # importing PyTensor's JAX dispatch switches 64-bit mode off for the whole process meanwhile
        # (`_jaxify`): done here, never later while other threads trace
        _import_dispatch()
    # imported here: the program store belongs to the driver, a layer above this one
    from pytensor_blackjax.run._stored import known_model

    return known_model(compiled, tuple(compiled.default_data.values()))


def _as_array(value: Any) -> jax.Array:
    if isinstance(value, jax.Array):  # a JAX array, or a tracer when data are traced
        return value
    return jax.device_put(np.asarray(value))


def _split(compiled: CompiledModel, flat):
    return [flat[b.start : b.start + b.size].reshape(b.shape) for b in compiled.blocks]
