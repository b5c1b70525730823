"""ModelBuilder: declare constrained parameters and data, add log-density terms, get a `Model`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.replace import graph_replace
from pytensor.graph.traversal import graph_inputs
from pytensor.tensor.variable import TensorVariable

from pytensor_blackjax.model._checks import check_name, check_scalar_logp
from pytensor_blackjax.model._model import DataVar, Model, Unconstrain
from pytensor_blackjax.model._transforms import Transform, resolve

__all__ = ["ModelBuilder"]


def _check_shape(shape: object, *, what: str) -> tuple[int, ...]:
    if isinstance(shape, int | np.integer):
        shape = (shape,)
    try:
        dims: tuple[Any, ...] = tuple(shape)  # type: ignore[arg-type]  # not iterable: reported below
    except TypeError:
        raise TypeError(
            f"{what}: shape={shape!r} must be a tuple of non-negative integers, e.g. (3,)."
        ) from None
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 0:
            raise ValueError(f"{what}: shape={shape!r} must hold non-negative integers; got {d!r}.")
    return tuple(int(d) for d in dims)


class ModelBuilder:
    """Build a model from constrained parameters: transforms and their Jacobians are added for you.

    Example:
        >>> import pytensor.tensor as pt
        >>> import pytensor_blackjax as pbj
        >>> m = pbj.ModelBuilder()
        >>> mu = m.param("mu")
        >>> sigma = m.param("sigma", transform="positive")
        >>> y = m.data("y", [1.2, 0.4, 2.2])
        >>> m.add_logp(pt.sum(-0.5 * ((y - mu) / sigma) ** 2 - pt.log(sigma)))
        >>> model = m.build()
    """

    def __init__(self, name: str = "model"):
        self._name = name
        self._values: list[TensorVariable] = []
        self._params: dict[str, TensorVariable] = {}
        self._jacobians: dict[str, TensorVariable] = {}
        self._unconstrain: dict[str, Unconstrain] = {}
        self._terms: list[TensorVariable] = []
        self._priors: dict[str, TensorVariable] = {}  # param name -> its prior term(s), pointwise
        self._deterministics: dict[str, TensorVariable] = {}
        self._data: dict[str, DataVar] = {}
        self._log_likelihood: dict[str, TensorVariable] = {}
        self._coords: dict[str, list[Any]] = {}
        self._dims: dict[str, tuple[str, ...]] = {}

    def _claim(self, name: str, *, what: str) -> str:
        check_name(name, what=what)
        taken = {**self._params, **self._deterministics, **self._data}
        if name in taken or name in {v.name for v in self._values}:
            raise ValueError(
                f"{what} name {name!r} is already used in this model; every name must be unique."
            )
        return name

    def param(
        self,
        name: str,
        *,
        shape: int | Sequence[int] = (),
        transform: str | Transform | None = None,
        dims: Sequence[str] | None = None,
    ) -> TensorVariable:
        """Declare a free parameter and return it in its constrained space.

        Args:
            name: the parameter's name in the posterior.
            shape: its (constrained) shape; () for a scalar.
            transform: None/"real", "positive", "unit", "simplex" (shape ``(K,)``, K-1 free values),
                "ordered", "cholesky_corr" (shape ``(n, n)``, n(n-1)/2 free values), or an object such
                as ``pbj.transforms.Interval(lower, upper)``, ``LowerBound(l)``, ``UpperBound(u)``.
            dims: optional dimension names for the ArviZ result (see `coords`).

        Returns:
            The constrained parameter as a PyTensor expression, to use in `add_logp`.

        Raises:
            ValueError: a name already used, a shape with negative or non-integer lengths, an unknown
                transform name, or a shape the transform cannot take.
        """
        self._claim(name, what="param")
        shape = _check_shape(shape, what=f"param {name!r}")
        kind = resolve(transform, param=name)
        value_shape = kind.value_shape(shape)
        value_name = f"{name}_{kind.suffix}__" if kind.suffix else name
        value = pt.tensor(name=value_name, dtype="float64", shape=value_shape)
        constrained = kind.forward(value)
        self._values.append(value)
        self._params[name] = constrained
        self._jacobians[name] = kind.log_jacobian(value)
        given = pt.tensor(name=name, dtype="float64", shape=shape)
        self._unconstrain[name] = Unconstrain(value_name, given, kind.backward(given))
        self._set_dims(name, dims, len(shape))
        return constrained

    def data(
        self,
        name: str,
        value: Any,
        *,
        dims: Sequence[str] | None = None,
        observed: bool = False,
    ) -> TensorVariable:
        """Declare named data; new values of the same shape can be passed to ``sample(data=...)``.

        Args:
            name: the data's name.
            value: array-like; its dtype and shape are fixed here.
            dims: optional dimension names.
            observed: True for the modelled outcome (``observed_data`` group), else ``constant_data``.
        """
        self._claim(name, what="data")
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"data {name!r} must be numeric, got dtype {array.dtype}.")
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError(f"data {name!r} contains NaN or inf; drop or impute those entries.")
        if array.dtype.kind == "b":
            array = array.astype("int8")
        var = pt.tensor(name=name, dtype=str(array.dtype), shape=array.shape)
        self._data[name] = DataVar(
            name, var, array, "observed" if observed else "constant", tuple(dims) if dims else None
        )
        self._set_dims(name, dims, array.ndim)
        return var

    def add_logp(self, term: TensorVariable, *, prior: str | None = None) -> None:
        """Add a term to the log-density; non-scalar terms are summed.

        Args:
            term: a log-density term, a function of parameters and data.
            prior: the name of the param whose prior density ``term`` is (e.g. ``prior="mu"`` for
                ``normal_logpdf(mu, 0, 5)``). The term is then also kept, pointwise (unsummed), in the
                ``log_prior`` group of ``sample(..., log_prior=True)``, which power-scaling sensitivity
                (``arviz_stats.psense_summary``) needs. Several terms for one param add up.

        Raises:
            ValueError: ``prior`` names no param declared so far.
        """
        pointwise = pt.as_tensor_variable(term)
        term = pt.sum(pointwise) if pointwise.type.ndim else pointwise
        check_scalar_logp(term, where="add_logp")
        if prior is not None:
            if prior not in self._params:
                raise ValueError(
                    f"add_logp(prior={prior!r}): {prior!r} is not a param of this model; name the param "
                    f"whose prior this term is, one of {list(self._params)} (declare it with "
                    "m.param(...) first)."
                )
            earlier = self._priors.get(prior)
            self._priors[prior] = pointwise if earlier is None else earlier + pointwise
        self._terms.append(term)

    def deterministic(self, name: str, expr: Any, *, dims: Sequence[str] | None = None) -> TensorVariable:
        """Report ``expr`` (a function of parameters and data) in the posterior under ``name``."""
        self._claim(name, what="deterministic")
        expr = pt.as_tensor_variable(expr)
        self._deterministics[name] = expr
        self._set_dims(name, dims, expr.type.ndim)
        return expr

    def log_likelihood(self, name: str, pointwise: Any) -> None:
        """Register a pointwise log-likelihood (one entry per observation) for LOO/WAIC; not added to logp."""
        check_name(name, what="log_likelihood")
        self._log_likelihood[name] = pt.as_tensor_variable(pointwise)

    def coords(self, **coords: Sequence[Any]) -> None:
        """Labels for named dimensions, e.g. ``m.coords(school=["A", "B"])``."""
        for key, labels in coords.items():
            self._coords[key] = list(labels)

    def _set_dims(self, name: str, dims: Sequence[str] | None, ndim: int) -> None:
        if dims is None:
            return
        dims = (dims,) if isinstance(dims, str) else tuple(dims)
        if len(dims) != ndim:
            raise ValueError(f"{name!r}: dims={dims} has {len(dims)} names for {ndim} dimensions.")
        self._dims[name] = dims

    def _check_coords(self) -> None:
        """Every labelled dimension has one label per entry (ArviZ would relabel it 0..n-1 silently)."""
        exprs = {**self._params, **self._deterministics, **{k: d.variable for k, d in self._data.items()}}
        seen: dict[str, tuple[int, str]] = {}
        for name, dims in self._dims.items():
            for dim, length in zip(dims, exprs[name].type.shape, strict=True):
                if length is None:
                    continue
                if dim in self._coords and len(self._coords[dim]) != length:
                    raise ValueError(
                        f"coords {dim!r} has {len(self._coords[dim])} labels but {name!r} has {length} "
                        f"entries along {dim!r}; give one label per entry."
                    )
                if dim in seen and seen[dim][0] != length:
                    raise ValueError(
                        f"dimension {dim!r} has length {seen[dim][0]} in {seen[dim][1]!r} but {length} in "
                        f"{name!r}; one dimension name must mean one length."
                    )
                seen.setdefault(dim, (length, name))

    def build(self) -> Model:
        """Freeze the description into a `Model`."""
        if not self._values:
            raise ValueError(
                "ModelBuilder.build: the model has no parameters; declare some with m.param(...)."
            )
        if not self._terms:
            raise ValueError("ModelBuilder.build: no log-density terms; add them with m.add_logp(...).")
        self._check_coords()
        parts = [*self._terms, *self._jacobians.values()]
        logp = pt.sum(pt.stack([pt.cast(t, "float64") for t in parts]))
        terms = {f"add_logp term {i + 1}": t for i, t in enumerate(self._terms)}
        terms.update({f"{k} (Jacobian)": j for k, j in self._jacobians.items()})
        outputs = {**self._params, **self._deterministics}
        return Model(
            values=tuple(self._values),
            logp=logp,
            outputs=outputs,
            data=dict(self._data),
            log_likelihood=dict(self._log_likelihood),
            coords=dict(self._coords),
            dims=dict(self._dims),
            name=self._name,
            terms=terms,
            log_prior=self._prior_graphs(),
            unconstrain=dict(self._unconstrain),
        )

    def _prior_graphs(self) -> dict[str, TensorVariable]:
        """The declared prior terms as graphs of the constrained params (inputs named after them), in
        the params' order: what ``log_prior`` evaluates at the posterior draws."""
        names = [name for name in self._params if name in self._priors]
        if not names:
            return {}
        inputs = {
            name: pt.tensor(name=name, dtype=c.type.dtype, shape=c.type.shape)
            for name, c in self._params.items()
        }
        replace = {self._params[name]: inputs[name] for name in self._params}
        graphs = graph_replace([self._priors[name] for name in names], replace, strict=False)  # type: ignore[arg-type]
        left = {str(v.name) for v in graph_inputs(graphs) if v in set(self._values)}
        if left:
            raise ValueError(
                f"ModelBuilder.build: the prior terms of {names} use the unconstrained values {sorted(left)} "
                "other than through their params; write prior terms in the params that m.param returns."
            )
        return dict(zip(names, graphs, strict=True))  # type: ignore[arg-type]  # PyTensor types Variable
