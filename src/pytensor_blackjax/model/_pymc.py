"""PyMC models in: the only module that imports ``pymc``.

A PyMC model already holds everything a `Model` needs: value variables (unconstrained, named like
``tau_log__``), a log-density with the transforms' Jacobians (``pm_model.logp(jacobian=True)``), the
constrained free variables and deterministics as graphs of those values
(``pm_model.replace_rvs_by_values``), pointwise log-likelihoods (``pm_model.logp(observed, sum=False)``),
``pm.Data`` containers, coords and dims. We take those graphs and swap their roots for plain symbolic
inputs of static shape:

- value variables -> inputs of the shape PyMC evaluates for them (as ``eval_rv_shapes`` does, but in
  Python: PyMC's own call compiles PyTensor's C virtual machine, seconds on a machine whose PyTensor
  cache is empty, for a few integers);
- ``pm.Data`` (shared variables) -> data inputs, so new values need no recompilation;
- observations given as arrays (constants) -> "observed" data inputs named after their variable.

Two graph changes make JAX agree with PyMC's own compiled functions:

- PyMC's parameter checks (``CheckParameterValue``) become ``switch(cond, logp, -inf)``, as PyMC's
  ``compile_fn`` does; with ``pm.Model(check_bounds=False)`` they are removed, as PyMC does.
- Any other assertion (``Assert``/``CheckAndRaise``) cannot run under JAX tracing; it is removed here
  (PyTensor's JAX backend would drop it anyway, with a warning at every compile).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.mode import Mode
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.replace import graph_replace
from pytensor.graph.rewriting.basic import in2out, node_rewriter
from pytensor.raise_op import CheckAndRaise
from pytensor.tensor.variable import TensorVariable

from pytensor_blackjax.model._model import DataVar, LazyGraphs, Model, Unconstrain

__all__ = ["initval_names", "model_from_pymc", "rv_shapes"]


def _import_pymc():
    try:
        import pymc
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Model.from_pymc needs PyMC; install the extra: pip install 'pytensor-blackjax[pymc]'."
        ) from err
    return pymc


def _check_model(pm_model: Any, pymc: Any) -> None:
    if not isinstance(pm_model, pymc.Model):
        raise TypeError(
            f"Model.from_pymc(pymc_model): expected a pymc.Model, got {type(pm_model).__name__}; "
            "pass the object of a `with pm.Model() as model:` block."
        )
    if not pm_model.free_RVs:
        raise ValueError(
            "Model.from_pymc: the PyMC model has no free random variables, so there is nothing to sample; "
            "add a prior (e.g. pm.Normal('mu', 0, 1)) or use pm.sample_prior_predictive."
        )
    discrete = [pm_model.values_to_rvs[v].name for v in pm_model.discrete_value_vars]
    if discrete:
        raise ValueError(
            f"Model.from_pymc: the PyMC model has discrete free variables {discrete}; gradient-based "
            "samplers cannot move them. Marginalise them out (e.g. pymc_extras.marginalize, or a "
            "pm.Mixture), or sample the model with PyMC's own samplers (pm.sample with a compound step)."
        )


# evaluating a few shapes and small constants: PyTensor's Python implementations, no C compiler
_PYTHON = Mode(linker="py", optimizer="fast_compile")


def _evaluate(pm_model: Any, outputs: Sequence[Variable]) -> list[np.ndarray]:
    """The values of graphs without free inputs (shapes, dimension lengths, derived observations),
    with the model's observations standing in for the observed variables."""
    givens = [(rv, pm_model.rvs_to_values[rv]) for rv in pm_model.observed_RVs]
    fn = pytensor.function([], outputs, givens=givens, mode=_PYTHON, on_unused_input="ignore")
    return [np.asarray(v) for v in fn()]


def rv_shapes(pm_model: Any) -> dict[str, tuple[int, ...]]:
    """The shape of each free variable and of its transformed value, by name: what PyMC's
    ``eval_rv_shapes`` returns, evaluated in Python."""
    names, outputs = [], []
    for rv in pm_model.free_RVs:
        transform = pm_model.rvs_to_transforms.get(rv)
        if transform is not None:
            names.append(pm_model.rvs_to_values[rv].name)
            outputs.append(pt.as_tensor(transform.forward(rv, *rv.owner.inputs).shape))
        names.append(rv.name)
        outputs.append(pt.as_tensor(rv.shape))
    values = _evaluate(pm_model, outputs)
    return {name: tuple(int(s) for s in shape) for name, shape in zip(names, values, strict=True)}


def _value_inputs(pm_model: Any, shapes: dict[str, tuple[int, ...]]) -> dict[Variable, TensorVariable]:
    """PyMC value variable -> an input of the same name and dtype with a static shape."""
    out = {}
    for value in pm_model.value_vars:
        out[value] = pt.tensor(name=value.name, dtype=value.type.dtype, shape=shapes[value.name])
    return out


def _unconstrain_graphs(
    pm_model: Any, shapes: dict[str, tuple[int, ...]]
) -> tuple[list[str], list[TensorVariable], list[TensorVariable]]:
    """Per free variable: its value's name, a placeholder of its constrained shape, and the value as a
    graph of the placeholder (PyMC's ``transform.forward``, whose parameters may be other variables)."""
    names, given, graphs = [], [], []
    for rv in pm_model.free_RVs:
        value = pm_model.rvs_to_values[rv]
        y = pt.tensor(name=rv.name, dtype=rv.type.dtype, shape=shapes[rv.name])
        transform = pm_model.rvs_to_transforms.get(rv)
        x = y if transform is None else transform.forward(y, *rv.owner.inputs)
        names.append(value.name)
        given.append(y)
        graphs.append(x)
    graphs = pm_model.replace_rvs_by_values(graphs)
    return names, given, graphs


def _data_inputs(pm_model: Any) -> tuple[dict[Variable, TensorVariable], dict[str, DataVar], dict[str, Any]]:
    """``pm.Data`` and array observations -> data inputs; observations of other kinds -> plain values.

    Returns the replacements, the `DataVar` entries, and observed values that cannot be inputs
    (observations computed from other data), kept for the ``observed_data`` group only.
    """
    dims = pm_model.named_vars_to_dims
    observed_values = {pm_model.rvs_to_values[rv]: rv for rv in pm_model.observed_RVs}
    replace: dict[Variable, TensorVariable] = {}
    data: dict[str, DataVar] = {}
    for var in pm_model.data_vars:
        value = np.asarray(var.get_value() if isinstance(var, SharedVariable) else var.data)
        kind = "observed" if var in observed_values else "constant"
        replace[var] = pt.tensor(name=var.name, dtype=var.type.dtype, shape=value.shape)
        data[var.name] = DataVar(var.name, replace[var], value, kind, _dims_of(var.name, dims))
    derived = {}
    for value_var, rv in observed_values.items():
        if value_var in replace:
            continue
        if isinstance(value_var, Constant):
            value = np.asarray(value_var.data)
            new = pt.tensor(name=rv.name, dtype=value_var.type.dtype, shape=value.shape)
            replace[value_var] = new
            data[rv.name] = DataVar(rv.name, new, value, "observed", _dims_of(rv.name, dims))
        else:
            derived[rv.name] = value_var
    return replace, data, derived


def _dims_of(name: str, dims: Any) -> tuple[str, ...] | None:
    """PyMC's dims of ``name``; a dimension PyMC leaves unnamed (None) gets ArviZ's default name."""
    given = dims.get(name)
    if not given:
        return None
    return tuple(d if d is not None else f"{name}_dim_{i}" for i, d in enumerate(given))


def _coords(pm_model: Any) -> dict[str, list[Any]]:
    # a dimension declared by length only: label it 0..n-1, as ArviZ would (all lengths in one call)
    unlabeled = [dim for dim, labels in pm_model.coords.items() if labels is None]
    lengths = _evaluate(pm_model, [pm_model.dim_lengths[d] for d in unlabeled]) if unlabeled else []
    counted = {dim: list(range(int(n))) for dim, n in zip(unlabeled, lengths, strict=True)}
    return {dim: counted[dim] if labels is None else list(labels) for dim, labels in pm_model.coords.items()}


@node_rewriter(tracks=[CheckAndRaise])
def _drop_assertion(fgraph, node):
    return [node.inputs[0]]


def _jax_ready(graphs: list[TensorVariable], check_bounds: bool) -> list[TensorVariable]:
    """Parameter checks -> -inf switches (or removed); other assertions removed (JAX cannot raise)."""
    from pymc.logprob.utils import local_check_parameter_to_ninf_switch, local_remove_check_parameter

    fgraph = FunctionGraph(outputs=graphs, clone=False)
    first = local_check_parameter_to_ninf_switch if check_bounds else local_remove_check_parameter
    in2out(first).rewrite(fgraph)
    in2out(_drop_assertion).rewrite(fgraph)
    return list(fgraph.outputs)  # type: ignore[arg-type]  # PyTensor types outputs as Variable


def model_from_pymc(pm_model: Any) -> Model:
    """Translate a PyMC model into a `Model` with the same log-density, names, coords and data.

    Args:
        pm_model: a ``pymc.Model`` with continuous free variables.

    Returns:
        A `Model`: positions keyed by PyMC's value-variable names (``tau_log__``); posterior outputs are
        the constrained free variables then the deterministics; ``pm.Data`` are swappable constant
        (or observed) data; array observations are observed data named after their variable; one
        pointwise log-likelihood per observed variable; ``source`` is ``pm_model``.

    Raises:
        TypeError: ``pm_model`` is not a ``pymc.Model``.
        ValueError: the model has no free variables, or has discrete ones (named in the message).

    Example:
        >>> import pymc as pm
        >>> import pytensor_blackjax as pbj
        >>> with pm.Model() as pm_model:
        ...     sigma = pm.HalfNormal("sigma", 1.0)
        ...     y = pm.Normal("y", 0.0, sigma, observed=[0.3, -1.2, 0.8])
        >>> model = pbj.Model.from_pymc(pm_model)
        >>> model.value_names
        ('sigma_log__',)
    """
    pymc = _import_pymc()
    _check_model(pm_model, pymc)
    free_names = [rv.name for rv in pm_model.free_RVs]
    det_names = [d.name for d in pm_model.deterministics]
    obs_names = [rv.name for rv in pm_model.observed_RVs]

    logp = pm_model.logp(jacobian=True)
    outputs = pm_model.replace_rvs_by_values([*pm_model.free_RVs, *pm_model.deterministics])
    shapes = rv_shapes(pm_model)
    value_names, given, unconstrained = _unconstrain_graphs(pm_model, shapes)
    pointwise = pm_model.logp(vars=list(pm_model.observed_RVs), sum=False) if obs_names else []

    values = _value_inputs(pm_model, shapes)
    data_replace, data, derived = _data_inputs(pm_model)
    replace = {**values, **data_replace}
    check_bounds = bool(pm_model.check_bounds)
    (logp,), outputs, pointwise, unconstrained = _translate(
        [[logp], outputs, pointwise, unconstrained], replace, check_bounds
    )
    named = {
        name: _dims_of(name, pm_model.named_vars_to_dims)
        for name in [*free_names, *det_names, *obs_names, *data]
    }
    dims = {name: given for name, given in named.items() if given}
    # an observation computed from other data: the log-density follows swaps of those data, but
    # observed_data can only show the value at build time (the Model has no slot for an expression)
    derived_values = _evaluate(pm_model, list(derived.values())) if derived else []
    for name, value in zip(derived, derived_values, strict=True):
        data[name] = DataVar(
            name,
            pt.tensor(name=name, dtype=str(value.dtype), shape=value.shape),
            value,
            "observed",
            dims.get(name),
        )

    return Model(
        values=tuple(values.values()),
        logp=pt.cast(logp, "float64"),
        outputs=dict(zip([*free_names, *det_names], outputs, strict=True)),
        data=data,
        log_likelihood=dict(zip(obs_names, pointwise, strict=True)),
        coords=_coords(pm_model),
        dims=dims,
        name=pm_model.name or "pymc_model",
        source=pm_model,
        terms=LazyGraphs(lambda: _terms(pm_model, replace, check_bounds)),
        log_prior=LazyGraphs(lambda: _log_prior(pm_model, data, shapes, replace, check_bounds)),
        unconstrain={
            name: Unconstrain(value, y, x)
            for name, value, y, x in zip(free_names, value_names, given, unconstrained, strict=True)
        },
    )


def _translate(
    parts: list[list[TensorVariable]], replace: dict, check_bounds: bool
) -> list[list[TensorVariable]]:
    """Groups of PyMC graphs with their roots replaced (`replace`) and made ready for JAX, in one pass
    (graphs that share parts stay shared)."""
    graphs = graph_replace([g for part in parts for g in part], replace, strict=False)
    ready = iter(_jax_ready(list(graphs), check_bounds=check_bounds))  # type: ignore[arg-type]
    return [[next(ready) for _ in part] for part in parts]


def _terms(pm_model: Any, replace: dict, check_bounds: bool) -> dict[str, TensorVariable]:
    """One scalar factor of the log-density per basic variable, then per potential, named as
    ``pm.Model.point_logps`` names them (built only to say which part of a log-density is not finite)."""
    factors = [pt.sum(f) for f in pm_model.logp(jacobian=True, sum=False)]
    names = [rv.name for rv in pm_model.basic_RVs]
    names += [p.name or f"potential {i + 1}" for i, p in enumerate(pm_model.potentials)]
    (factors,) = _translate([factors], replace, check_bounds)
    return dict(zip(names, factors, strict=True))


def _log_prior(
    pm_model: Any,
    data: dict[str, DataVar],
    shapes: dict[str, tuple[int, ...]],
    replace: dict,
    check_bounds: bool,
) -> dict[str, TensorVariable]:
    """`_prior_graphs`, translated (built only for ``sample(log_prior=True)``)."""
    priors, prior_replace = _prior_graphs(pm_model, data, shapes)
    (graphs,) = _translate([list(priors.values())], {**replace, **prior_replace}, check_bounds)
    return dict(zip(priors, graphs, strict=True))


def initval_names(pm_model: Any) -> list[str]:
    """The variables of ``pm_model`` (None or any other object: none) with ``initval=`` set, which PyMC
    cannot copy, so that the converted model has no log prior."""
    initvals = getattr(pm_model, "rvs_to_initial_values", None) or {}
    return sorted(rv.name for rv, value in initvals.items() if value is not None)


def _prior_graphs(
    pm_model: Any, data: dict[str, DataVar], shapes: dict[str, tuple[int, ...]]
) -> tuple[dict[str, TensorVariable], dict]:
    """Each free variable's pointwise prior log-density at its constrained value, as PyMC's
    ``compute_log_prior`` computes it (on the model without value transforms, so without Jacobians), in
    ``free_RVs`` order; and the replacements of that model's value and data variables by inputs named
    after the free variables (of their constrained shapes, ``shapes``) and by the data inputs."""
    from pymc.model.transform.conditioning import remove_value_transforms

    try:
        plain = remove_value_transforms(pm_model)  # a copy: its own variables, named as the original's
    except NotImplementedError:  # PyMC copies no model with initval= set (`initval_names`): no log_prior
        return {}, {}
    rvs = {rv.name: rv for rv in plain.free_RVs}
    names = [rv.name for rv in pm_model.free_RVs]
    terms = plain.logp(vars=[rvs[n] for n in names], sum=False)
    replace = {}
    for name in names:
        value = plain.rvs_to_values[rvs[name]]
        replace[value] = pt.tensor(name=name, dtype=value.type.dtype, shape=shapes[name])
    for var in plain.data_vars:
        if var.name in data:
            replace[var] = data[var.name].variable
    return dict(zip(names, terms, strict=True)), replace
