"""The one place that touches PyTensor's JAX backend.

PyTensor's own graph rewrites (the JAX mode's optimizer) run first; then ``jax_funcify`` turns the
rewritten graph into a plain Python function of JAX arrays. Importing PyTensor's JAX dispatch sets
``jax_enable_x64`` from ``pytensor.config.floatX``; it is imported here, lazily, when a model is
compiled, never when this package is imported.

That import also imports NumPyro when it is installed (0.2-0.6 s, most of a second run's model
compilation), only to sample binomial and von Mises random variables, which no log-density graph holds.
`_import_dispatch` keeps NumPyro out of it and then marks it available, so those samplers import it
when one is actually built; tests/test_jaxify.py checks both halves against the installed PyTensor.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable, Sequence

import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.replace import graph_replace
from pytensor.tensor.variable import TensorVariable

__all__ = ["jaxify"]

_DISPATCH = "pytensor.link.jax.dispatch"
_IMPORT_LOCK = threading.Lock()


def _import_dispatch() -> None:
    """Import PyTensor's JAX dispatch without importing NumPyro along with it (see the module doc)."""
    with _IMPORT_LOCK:
        if _DISPATCH in sys.modules:
            return
        hide = "numpyro" not in sys.modules
        if hide:
            sys.modules["numpyro"] = None  # `import numpyro` raises ImportError meanwhile
        try:
            importlib.import_module(_DISPATCH)
        finally:
            if hide:
                del sys.modules["numpyro"]
        random = sys.modules.get(f"{_DISPATCH}.random")
        if hide and random is not None and importlib.util.find_spec("numpyro") is not None:
            random.numpyro_available = True


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

    _import_dispatch()
    from pytensor.link.jax.dispatch import jax_funcify

    outputs = _freeze_shared(outputs)
    fgraph = FunctionGraph(list(inputs), list(outputs), clone=True)
    get_mode("JAX").optimizer.rewrite(fgraph)
    return jax_funcify(fgraph)
