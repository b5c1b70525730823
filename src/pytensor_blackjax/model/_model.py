"""The model description: a PyTensor log-density over unconstrained values, plus what to report.

A `Model` is pure PyTensor and never touches JAX. Every way in (``Model.from_logp``, `ModelBuilder`,
``Model.from_pymc``) produces the same frozen object, which `pytensor_blackjax.compile` turns into JAX.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pytensor
from pytensor.graph.basic import Variable
from pytensor.tensor.variable import TensorVariable

from pytensor_blackjax.model._shapes import fix_input_shapes

__all__ = ["DataVar", "LazyGraphs", "Model", "Unconstrain"]


@dataclass(frozen=True)
class DataVar:
    """Named data: a symbolic input of the graphs and its default value.

    ``kind`` is ``"observed"`` (the likelihood's outcome) or ``"constant"`` (covariates); it decides
    the ArviZ group the values land in.
    """

    name: str
    variable: TensorVariable
    value: np.ndarray
    kind: str = "constant"
    dims: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Unconstrain:
    """How a free variable's constrained value becomes its unconstrained value (for ``initvals``).

    Attributes:
        value: the name of the unconstrained value (one of ``Model.values``).
        constrained: a placeholder input of the variable's constrained shape.
        unconstrained: the value as a graph of ``constrained``; it may also depend on other values and
            on data (a PyMC bound given by another free variable).
    """

    value: str
    constrained: TensorVariable
    unconstrained: TensorVariable


class LazyGraphs(Mapping[str, TensorVariable]):
    """A read-only name -> graph mapping whose graphs are built on first use.

    For the graphs a run reads only on request (``Model.log_prior`` for ``sample(log_prior=True)``,
    ``Model.terms`` to explain a log-density that is not finite): building them eagerly would put their
    cost on every run. Thread-safe; pickles as its built graphs (the builder, which may hold a PyMC
    model, is never pickled).

    Args:
        build: returns the mapping; called at most once, by the first access of any kind (``len``,
            iteration, lookup).
    """

    def __init__(self, build: Callable[[], Mapping[str, TensorVariable]]):
        self._build: Callable[[], Mapping[str, TensorVariable]] | None = build
        self._graphs: Mapping[str, TensorVariable] | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._graphs is not None

    def _get(self) -> Mapping[str, TensorVariable]:
        with self._lock:
            if self._graphs is None:
                assert self._build is not None
                self._graphs = MappingProxyType(dict(self._build()))
                self._build = None  # drop what the builder holds
            return self._graphs

    def __getitem__(self, name: str) -> TensorVariable:
        return self._get()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return f"LazyGraphs({list(self._get())})" if self.built else "LazyGraphs(<not built>)"

    def __reduce__(self) -> tuple:
        return frozen_mapping, (dict(self._get()),)


def frozen_mapping(mapping: dict) -> MappingProxyType:
    """A read-only view of ``mapping``: how a pickled read-only mapping of a model is rebuilt."""
    return MappingProxyType(mapping)


def identity_unconstrain(values: Sequence[TensorVariable]) -> dict[str, Unconstrain]:
    """Values that are their own constrained variables (``Model.from_logp``)."""
    out = {}
    for v in values:
        y = v.type()
        out[str(v.name)] = Unconstrain(str(v.name), y, y)
    return out


@dataclass(frozen=True, eq=False)
class Model:
    """A log-density over named unconstrained values, with the quantities to report.

    Attributes:
        values: the unconstrained root inputs the sampler moves; positions are keyed by their names.
        logp: scalar log-density of the values (Jacobians included), a graph of ``values`` and data.
        outputs: name -> expression reported in the ``posterior`` group (constrained parameters first,
            then deterministics).
        data: name -> `DataVar`, swappable at sample time without recompiling.
        log_likelihood: name -> pointwise log-likelihood expression (for LOO), may be empty.
        coords: dimension name -> labels; dims: variable name -> dimension names.
        name: a label used in reports.
        terms: name -> scalar part of ``logp`` (each PyMC variable's log-density, each ``add_logp`` term
            and Jacobian), evaluated only to say which part is not finite; may be empty, or a
            `LazyGraphs` built when first read.
        log_prior: free variable name -> its pointwise prior log-density (no Jacobian), as PyMC's
            ``compute_log_prior`` gives it, for ``sample(log_prior=True)``; a graph of data and of
            inputs named after the posterior variables whose (constrained) draws they take. May be empty,
            or a `LazyGraphs` built when first read.
        unconstrain: free variable name -> `Unconstrain`, in the order of ``values``: how given
            initial values (constrained) become unconstrained ones; may be empty (no ``initvals``).
    """

    values: tuple[TensorVariable, ...]
    logp: TensorVariable
    outputs: Mapping[str, TensorVariable]
    data: Mapping[str, DataVar] = field(default_factory=dict)
    log_likelihood: Mapping[str, TensorVariable] = field(default_factory=dict)
    coords: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    dims: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    name: str = "model"
    source: Any = None  # the object the model came from (e.g. a PyMC model), for round trips
    terms: Mapping[str, TensorVariable] = field(default_factory=dict)  # logp's parts, to explain a -inf
    log_prior: Mapping[str, TensorVariable] = field(default_factory=dict)
    unconstrain: Mapping[str, Unconstrain] = field(default_factory=dict)  # for initvals

    def __post_init__(self):
        for attr in (
            "outputs",
            "data",
            "log_likelihood",
            "coords",
            "dims",
            "terms",
            "log_prior",
            "unconstrain",
        ):
            value = getattr(self, attr)
            if not isinstance(value, LazyGraphs):  # built on first use, already read-only
                object.__setattr__(self, attr, MappingProxyType(dict(value)))

    def __repr__(self) -> str:
        # Data can be large: shapes and dtypes, never values.
        data = ", ".join(
            f"{k}: {d.kind} {np.asarray(d.value).dtype}{list(np.shape(d.value))}"
            for k, d in self.data.items()
        )
        values = ", ".join(f"{k}{list(s)}" for k, s in self.value_shapes.items())
        coords = {k: len(v) for k, v in self.coords.items()}
        return (
            f"Model(name={self.name!r}, values=[{values}], outputs={list(self.outputs)}, data={{{data}}}, "
            f"log_likelihood={list(self.log_likelihood)}, coord_lengths={coords})"
        )

    def __getstate__(self) -> dict:
        # the compiled JAX functions that `compile` caches on the model are rebuilt, never pickled
        state = dict(self.__dict__)
        state.pop("_compiled", None)
        return state

    @property
    def value_names(self) -> tuple[str, ...]:
        return tuple(str(v.name) for v in self.values)

    @property
    def value_shapes(self) -> dict[str, tuple[int, ...]]:
        return {str(v.name): tuple(int(s) for s in v.type.shape) for v in self.values}

    @property
    def num_dims(self) -> int:
        return int(sum(np.prod(s, dtype=int) for s in self.value_shapes.values()))

    @classmethod
    def from_logp(
        cls,
        logp: TensorVariable,
        inputs: Sequence[TensorVariable],
        deterministics: Mapping[str, TensorVariable] | None = None,
        shapes: Mapping[str, Sequence[int]] | None = None,
        *,
        name: str = "model",
    ) -> Model:
        """Wrap a hand-written log-density over unconstrained inputs.

        Args:
            logp: scalar PyTensor expression: the log-density of ``inputs``, Jacobians included.
            inputs: the free root variables (``pt.scalar``/``pt.vector``...), named by ``.name``.
            deterministics: name -> expression of the inputs, reported in the posterior.
            shapes: name -> shape for inputs whose static shape is unknown and cannot be inferred.
            name: label for reports.

        Returns:
            A `Model` whose positions are keyed by the input names; the posterior reports the inputs
            and then the deterministics.

        Raises:
            ValueError: non-scalar ``logp``, an input that is not a root variable, an integer input,
                duplicate names, or a shape that is neither static, inferable nor given.

        Example:
            >>> import pytensor.tensor as pt
            >>> x = pt.vector("x", shape=(3,))
            >>> model = Model.from_logp(-0.5 * pt.sum(x**2), inputs=[x])
        """
        from pytensor_blackjax.model._checks import check_from_logp

        deterministics = dict(deterministics or {})
        check_from_logp(logp, inputs, deterministics)
        fixed, replaced = fix_input_shapes(list(inputs), [logp, *deterministics.values()], dict(shapes or {}))
        logp_new, *det_new = replaced
        # the inputs are the parameters the user wrote the model in: report them, then the deterministics
        outputs = {str(v.name): v for v in fixed}
        outputs.update(zip(deterministics, det_new, strict=True))
        return cls(
            values=tuple(fixed),
            logp=logp_new,
            outputs=outputs,
            name=name,
            unconstrain=identity_unconstrain(fixed),
        )

    @classmethod
    def from_pymc(cls, pymc_model: Any) -> Model:
        """Translate a PyMC model (needs the ``pymc`` extra); see `pytensor_blackjax.model._pymc`."""
        from pytensor_blackjax.model._pymc import model_from_pymc

        return model_from_pymc(pymc_model)

    def free_graph_inputs(self) -> list[Variable]:
        """Root variables of the graphs that are neither values nor data (should be none)."""
        known = set(self.values) | {d.variable for d in self.data.values()}
        graphs = [self.logp, *self.outputs.values(), *self.log_likelihood.values()]
        return [
            v
            for v in pytensor.graph.traversal.graph_inputs(graphs)
            if v not in known
            and v.owner is None
            and not isinstance(v, pytensor.graph.basic.Constant)
            and not isinstance(v, pytensor.compile.sharedvalue.SharedVariable)
        ]
