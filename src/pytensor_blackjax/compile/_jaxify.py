"""The one place that touches PyTensor's JAX backend.

PyTensor's own graph rewrites (the JAX mode's optimizer) run first; then ``jax_funcify`` turns the
rewritten graph into a plain Python function of JAX arrays. Importing PyTensor's JAX dispatch sets
``jax_enable_x64`` from ``pytensor.config.floatX``; it is imported here, lazily, when a model is
compiled, never when this package is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.replace import graph_replace
from pytensor.tensor.variable import TensorVariable

__all__ = ["jaxify"]


def _freeze_shared(outputs: Sequence[TensorVariable]) -> list[TensorVariable]:
    """Shared variables become constants of their current value (data to swap must be declared)."""
    shared = [v for v in pytensor.graph.traversal.graph_inputs(outputs) if isinstance(v, SharedVariable)]
    if not shared:
        return list(outputs)
    replace = {v: pt.constant(v.get_value(borrow=True), name=v.name, dtype=v.type.dtype) for v in shared}
    return list(graph_replace(list(outputs), replace, strict=False))


def jaxify(inputs: Sequence[TensorVariable], outputs: Sequence[TensorVariable]) -> Callable:
    """Rewrite ``outputs`` (a graph of ``inputs``) and return a JAX function ``f(*inputs) -> tuple``."""
    from pytensor.compile.mode import get_mode
    from pytensor.link.jax.dispatch import jax_funcify

    outputs = _freeze_shared(outputs)
    fgraph = FunctionGraph(list(inputs), list(outputs), clone=True)
    get_mode("JAX").optimizer.rewrite(fgraph)
    return jax_funcify(fgraph)
