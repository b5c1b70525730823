"""The pointwise log prior of every draw (the ``log_prior`` group that power-scaling sensitivity,
``arviz_stats.psense_summary``, reads), evaluated from the constrained posterior draws as PyMC's
``compute_log_prior`` does: each free variable's prior log-density, without Jacobians."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import graph_inputs

from pytensor_blackjax.compile._compiled import CompiledModel
from pytensor_blackjax.compile._jaxify import jaxify

__all__ = ["has_log_prior", "log_prior_draws"]


def has_log_prior(compiled: CompiledModel) -> bool:
    """Whether the model declares prior terms (models pickled before ``log_prior`` existed have none)."""
    return bool(getattr(compiled.model, "log_prior", None))


def log_prior_draws(
    compiled: CompiledModel, posterior: Mapping[str, np.ndarray], data: tuple
) -> dict[str, np.ndarray]:
    """Each free variable's pointwise log prior at every draw, ``(chain, draw, ...)``, in model order.

    Args:
        compiled: a model whose ``log_prior`` is not empty.
        posterior: the constrained draws by name, ``(chain, draw, ...)``; every variable the prior
            terms take must be there.
        data: the run's data tuple (`CompiledModel.data_tuple`).
    """
    names, fn = compiled.programs.get(("log_prior",), lambda: _build(compiled))
    draws = [np.asarray(posterior[name], dtype=np.float64) for name in names]
    chains = draws[0].shape[0]
    # one chain at a time bounds the memory of the intermediate values
    per_chain = [jax.device_get(fn([d[c] for d in draws], data)) for c in range(chains)]
    return {
        name: np.stack([np.asarray(p[i]) for p in per_chain])
        for i, name in enumerate(compiled.model.log_prior)
    }


def _build(compiled: CompiledModel):
    """The names of the posterior variables the prior terms take, and a jitted function of their draws
    (each ``(draw, ...)``) and the data that returns one array ``(draw, ...)`` per prior term."""
    model = compiled.model
    graphs = list(model.log_prior.values())
    data_vars = [d.variable for d in model.data.values()]
    known = set(data_vars)
    roots: list[Any] = [
        v
        for v in graph_inputs(graphs)
        if v not in known and v.owner is None and not isinstance(v, Constant | SharedVariable)
    ]
    unknown = sorted({str(v.name) for v in roots} - set(compiled.output_shapes))
    if unknown:
        raise ValueError(
            f"the model's log_prior terms take {unknown}, which are not posterior variables; a prior term "
            f"may use only the posterior's variables {list(compiled.output_shapes)} and declared data."
        )
    order = {name: i for i, name in enumerate(compiled.output_shapes)}
    roots.sort(key=lambda v: order[str(v.name)])
    fn = jaxify([*roots, *data_vars], graphs)

    @jax.jit
    def evaluate(values, data):
        return jax.vmap(lambda *one: fn(*one, *data))(*values)

    return tuple(str(v.name) for v in roots), evaluate
