"""The one place that touches PyTensor's JAX backend.

PyTensor's own graph rewrites (the JAX mode's optimizer) run first; then ``jax_funcify`` turns the
rewritten graph into a plain Python function of JAX arrays. PyTensor's JAX dispatch is imported here,
lazily, when a model is compiled, never when this package is imported.

Precision is this package's choice, not PyTensor's: importing PyTensor's JAX dispatch sets the
process-wide ``jax_enable_x64`` from ``pytensor.config.floatX`` (``pytensor/link/jax/dispatch/basic.py``,
at module level: True for "float64", False otherwise). `_import_dispatch` puts the flag back as it was,
and `enable_x64` is the one place that sets it, called by ``compile`` (see its docstring for the rule).

One rewrite of our own follows PyTensor's (`stable_softplus`): its JAX dispatch computes ``softplus`` as
a three-way ``where`` over four exponentials and a ``log1p`` (each branch, and its gradient, for every
element); here it is ``max(x, 0) + log1p(exp(-|x|))`` written with selects (one exponential, one
``log1p``). ``softplus`` is the log-likelihood of every logit model (Bernoulli and binomial logits, log
sigmoids, interval transforms): the 5000 x 20 logistic regression's log-density and gradient took
86-94 us on one core with PyTensor's form and 43-48 us with this one (NumPyro's model: 78 us).

That import also imports NumPyro when it is installed (0.2-0.6 s, most of a second run's model
compilation), only to sample binomial and von Mises random variables, which no log-density graph holds.
`_import_dispatch` keeps NumPyro out of it and then marks it available, so those samplers import it
when one is actually built; tests/test_jaxify.py checks both halves against the installed PyTensor.

It imports the conversions of sparse matrices too (``pytensor/link/jax/dispatch/sparse.py``), and with
them ``jax.experimental.sparse`` and SciPy's sparse linear algebra: 0.085 s of the 0.09 s the dispatch
import takes, on the critical path of a process's first compile, for graphs that almost never hold a
sparse matrix. So the dispatch is imported without them (a stand-in module answers its import of them
meanwhile, and is removed after), and the types they convert get conversions that import them on first
use and hand over (`_sparse_on_demand`): the dispatch stays complete for every caller, ours or not.
tests/test_jaxify.py checks that the types are the ones the installed PyTensor's module registers.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import jax
import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.replace import graph_replace
from pytensor.tensor.variable import TensorVariable

from pytensor_blackjax.compile._fingerprint import PYTENSORS_OWN, import_dispatch

__all__ = ["enable_x64", "jaxify", "stable_softplus"]

_DISPATCH = "pytensor.link.jax.dispatch"
_SPARSE_DISPATCH = f"{_DISPATCH}.sparse"
_IMPORT_LOCK = threading.Lock()


def enable_x64() -> None:
    """Switch on JAX's 64-bit mode (``jax_enable_x64``) for the process: the package's default precision.

    The rule: compiling a model (``pbj.compile``, which ``pbj.sample`` calls) calls this, because
    ``precision="float64"``, the default, needs float64 arrays and JAX makes them only in 64-bit mode,
    which is a process-wide flag. It does so whatever PyTensor's ``floatX`` is. ``precision="float32"``
    then runs its programs with 64-bit mode off for its own thread only (``run._programs.float32_scope``),
    leaving the flag as it is for everyone else. Importing ``pytensor_blackjax`` changes no JAX setting.

    Example:
        >>> from pytensor_blackjax.compile._jaxify import enable_x64
        >>> enable_x64()
        >>> import jax.numpy as jnp
        >>> jnp.zeros(1).dtype
        dtype('float64')
    """
    if not jax.config.read("jax_enable_x64"):
        jax.config.update("jax_enable_x64", True)


def _import_dispatch() -> None:
    """Import PyTensor's JAX dispatch without importing NumPyro along with it, without keeping its
    change of ``jax_enable_x64``, and without its sparse conversions (see the module doc)."""
    with _IMPORT_LOCK:
        if _DISPATCH not in sys.modules:
            _import_dense_dispatch()


def _import_dense_dispatch() -> None:
    hide = "numpyro" not in sys.modules
    if hide:
        # `import numpyro` raises ImportError meanwhile (typeshed's sys.modules allows no None)
        sys.modules["numpyro"] = None  # type: ignore[assignment]
    # the dispatch package imports its sparse conversions by name: a stand-in answers (`_sparse_on_demand`)
    stand_in = ModuleType(_SPARSE_DISPATCH)
    sys.modules[_SPARSE_DISPATCH] = stand_in
    x64 = jax.config.read("jax_enable_x64")
    try:
        # (its rewrites noted: they leave the graph fingerprint as it was before the import)
        import_dispatch(lambda: importlib.import_module(_DISPATCH))
    finally:
        if hide:
            del sys.modules["numpyro"]
        _remove_stand_in(stand_in)
        if jax.config.read("jax_enable_x64") != x64:
            jax.config.update("jax_enable_x64", x64)
    _sparse_on_demand()
    random = sys.modules.get(f"{_DISPATCH}.random")
    if hide and random is not None and importlib.util.find_spec("numpyro") is not None:
        random.numpyro_available = True  # type: ignore[attr-defined]  # typeshed: ModuleType is read-only


def _remove_stand_in(stand_in: ModuleType) -> None:
    """Forget the stand-in for the sparse conversions: a later import of them loads the real module."""
    if sys.modules.get(_SPARSE_DISPATCH) is stand_in:
        del sys.modules[_SPARSE_DISPATCH]
    package = sys.modules.get(_DISPATCH)
    if package is not None and getattr(package, "sparse", None) is stand_in:
        delattr(package, "sparse")


def _sparse_on_demand() -> None:
    """Register conversions for what PyTensor's sparse JAX conversions handle (its sparse dot products,
    SciPy's sparse matrices as constants) that import them on first use; importing them registers
    theirs over these, and the call is dispatched again."""
    from pytensor.link.jax.dispatch import jax_funcify, jax_typify
    from pytensor.sparse.math import Dot, StructuredDot
    from scipy.sparse import spmatrix

    def load() -> None:
        with _IMPORT_LOCK:
            import_dispatch(lambda: importlib.import_module(_SPARSE_DISPATCH))

    @jax_funcify.register(Dot)
    @jax_funcify.register(StructuredDot)
    def sparse_dot(op: Any, **kwargs: Any) -> Any:
        load()
        return jax_funcify(op, **kwargs)

    @jax_typify.register(spmatrix)
    def sparse_matrix(matrix: Any, **kwargs: Any) -> Any:
        load()
        return jax_typify(matrix, **kwargs)

    # they convert as PyTensor's own do: the graph fingerprint counts them as PyTensor's
    PYTENSORS_OWN.update((id(sparse_dot), id(sparse_matrix)))


def _freeze_shared(outputs: Sequence[TensorVariable]) -> list[TensorVariable]:
    """Shared variables become constants of their current value (data to swap must be declared)."""
    shared = [v for v in pytensor.graph.traversal.graph_inputs(outputs) if isinstance(v, SharedVariable)]
    if not shared:
        return list(outputs)
    replace = {v: pt.constant(v.get_value(borrow=True), name=v.name, dtype=v.type.dtype) for v in shared}
    return list(graph_replace(list(outputs), replace, strict=False))  # type: ignore[arg-type]  # PyTensor types Variable


def _softplus(x: Any) -> TensorVariable:
    """``softplus(x) = max(x, 0) + log1p(exp(-|x|))``, with selects whose gradients are those of
    softplus everywhere (``sigmoid(x)``; 0.5 at 0, where ``maximum`` and ``abs`` would give 0)."""
    positive = pt.gt(x, 0)
    zero = pt.constant(np.zeros((), dtype=x.type.dtype))
    return pt.switch(positive, x, zero) + pt.log1p(pt.exp(pt.switch(positive, -x, x)))


def stable_softplus(fgraph: FunctionGraph) -> None:
    """Replace every elementwise ``softplus`` of ``fgraph`` by `_softplus` (after PyTensor's rewrites,
    which would turn ``log1p(exp(.))`` back into ``softplus``)."""
    from pytensor.scalar.math import Softplus
    from pytensor.tensor.elemwise import Elemwise

    nodes = [
        n for n in fgraph.apply_nodes if isinstance(n.op, Elemwise) and isinstance(n.op.scalar_op, Softplus)
    ]
    for node in nodes:
        (out,) = node.outputs
        fgraph.replace(out, _softplus(node.inputs[0]).astype(out.type.dtype), reason="stable_softplus")


def _constant(data: Any, **kwargs: Any) -> Any:
    """A graph constant as the JAX function holds it: an array as a copy put on the device, else as
    PyTensor's JAX backend converts it (``jax_typify``: a 0-d array as a Python scalar).

    PyTensor's conversion makes each array with ``jnp.array``, an operation JAX runs eagerly, compiling
    a small XLA program for every new shape and dtype (10-40 ms each): ~0.2 s of a first run of a PyMC
    regression whose predictor is a constant, on the critical path before any trace. ``device_put``
    of a copy makes the same array (values, dtype, strong type) without compiling anything, so the
    traced programs, the model digest and the draws are unchanged."""
    from pytensor.link.jax.dispatch import jax_typify

    if isinstance(data, np.ndarray) and data.ndim > 0:
        return jax.device_put(np.array(data))  # a copy: the caller's array may change later
    return jax_typify(data, **kwargs)


def jaxify(inputs: Sequence[TensorVariable], outputs: Sequence[TensorVariable]) -> Callable:
    """Rewrite ``outputs`` (a graph of ``inputs``) and return a JAX function ``f(*inputs) -> tuple``:
    PyTensor's ``jax_funcify`` of the graph, with its constants made by `_constant`."""
    from pytensor.compile.mode import get_mode
    from pytensor.link.utils import fgraph_to_python

    _import_dispatch()
    from pytensor.link.jax.dispatch import jax_funcify

    outputs = _freeze_shared(outputs)
    fgraph = FunctionGraph(list(inputs), list(outputs), clone=True)
    get_mode("JAX").optimizer.rewrite(fgraph)
    stable_softplus(fgraph)
    # what PyTensor's jax_funcify(fgraph) does, but for the conversion of the constants
    return fgraph_to_python(
        fgraph, jax_funcify, type_conversion_fn=_constant, fgraph_name="jax_funcified_fgraph"
    )
