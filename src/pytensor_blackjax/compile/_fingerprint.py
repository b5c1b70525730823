"""A digest of a model's PyTensor graphs, made without turning them into JAX.

The program store (`run._stored`) keys programs on the model as JAX traces it (`run._program_keys`),
which needs the model's JAX functions: PyTensor's JAX dispatch imported, its rewrites run, the graphs
turned into JAX and traced - about a quarter of a second of a warm run. This digest stands in for
that trace once the store has seen the model: the store keeps, under it, the digest the trace gave.
It must therefore change whenever what the trace would give can change, and it refuses (None) whatever
it cannot describe completely:

* every Op and Type by its class (from PyTensor only: a class of another package may have a JAX
  conversion of its own that no digest of its fields sees) and its fields: ``__props__`` where
  PyTensor declares them (the fields its Ops are compared by), else every attribute;
* the graph's structure, the bytes of every constant and shared value, the inputs' types and order;
* the names and layout of what the functions return;
* PyTensor's configuration and the rewrites its databases hold (its rewrites read the one; another
  package, PyMC, adds to the other). What importing PyTensor's JAX dispatch adds, its JAX conversions
  and the rewrites of the modules it imports, is PyTensor's own, fixed by its version, and left out: a
  digest made before this process imported the dispatch and one made after agree. A conversion
  registered by another package is refused, but for this package's stand-ins for PyTensor's own
  (`PYTENSORS_OWN`: the sparse conversions that load on first use, `compile._jaxify`).

Values are plain Python values, NumPy arrays and scalars, slices, and PyTensor objects built from
them; an Op's inner graph (``Scan``, ``OpFromGraph``) is described as a model's graph is, its inputs by
position. Anything else (a function of another package, a random generator) refuses.
"""

from __future__ import annotations

import hashlib
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytensor
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Apply, Constant, Variable
from pytensor.graph.fg import AbstractFunctionGraph
from pytensor.graph.traversal import io_toposort

__all__ = ["PYTENSORS_OWN", "graph_fingerprint", "import_dispatch"]

_DISPATCH = "pytensor.link.jax.dispatch"
_MAX_DEPTH = 12
# ids of conversions registered outside PyTensor that stand for PyTensor's own (`compile._jaxify`: its
# sparse conversions, which load on first use and convert as PyTensor does)
PYTENSORS_OWN: set[int] = set()
# PyTensor configuration that cannot change a rewrite or a conversion (paths, compilers, printing)
_NEUTRAL = ("compiledir", "base_compiledir", "cxx", "gcc__", "cmodule__", "blas__ldflags", "print")


class _Unkeyable(Exception):
    """Something in the graph this digest cannot describe completely."""


def _from_pytensor(module: Any) -> bool:
    return str(module).startswith("pytensor.")


def _pytensor_class(obj: Any) -> str:
    cls = type(obj)
    if not _from_pytensor(cls.__module__):
        raise _Unkeyable(cls)
    return f"{cls.__module__}.{cls.__qualname__}"


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as nested tuples of plain values whose ``repr`` tells apart what differs."""
    if depth > _MAX_DEPTH:
        raise _Unkeyable("too deep")
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.ascontiguousarray(value)
        if array.dtype.kind == "O":
            raise _Unkeyable("object array")
        return ("array", array.dtype.str, array.shape, hashlib.sha256(array.tobytes()).hexdigest())
    if isinstance(value, np.dtype):
        return ("dtype", value.str)
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v, depth + 1) for v in value)
    if isinstance(value, slice):
        return ("slice", *(_plain(v, depth + 1) for v in (value.start, value.stop, value.step)))
    if isinstance(value, Mapping):
        return (
            "map",
            tuple(sorted((repr(_plain(k, depth + 1)), _plain(v, depth + 1)) for k, v in value.items())),
        )
    if isinstance(value, AbstractFunctionGraph):  # an Op's inner graph (Scan, OpFromGraph)
        return ("graph", _pytensor_class(value), tuple(_graph_rows(value.inputs, value.outputs, depth + 1)))
    if isinstance(value, (Variable, Apply)):
        raise _Unkeyable("a graph outside a function graph")  # e.g. a fused Composite's scalar graph
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        if not _from_pytensor(value.__module__):
            raise _Unkeyable(value)
        return ("function", value.__module__, value.__qualname__)
    if isinstance(value, type):  # e.g. the NumPy scalar type a cast makes
        # (NumPy's own modules only: a prefix "numpy" would also let in numpyro's)
        module = value.__module__
        if not (module in ("numpy", "builtins") or module.startswith("numpy.") or _from_pytensor(module)):
            raise _Unkeyable(value)
        return ("class", value.__module__, value.__qualname__)
    name = _pytensor_class(value)
    props = getattr(type(value), "__props__", None)
    if props is not None:
        fields = tuple((p, _plain(getattr(value, p), depth + 1)) for p in props)
    else:
        attrs = getattr(value, "__dict__", None)
        if attrs is None:
            raise _Unkeyable(type(value))
        fields = tuple((k, _plain(v, depth + 1)) for k, v in sorted(attrs.items()) if not k.startswith("__"))
    return (name, fields)


def _leaf(value: Variable) -> Any:
    """A graph input that is neither a value nor data: a constant or a shared variable's value."""
    if isinstance(value, Constant):
        return ("constant", _plain(value.type), _plain(value.data))
    if isinstance(value, SharedVariable):  # frozen into a constant of its current value when compiled
        return ("shared", _plain(value.type), _plain(value.get_value(borrow=True)))
    raise _Unkeyable(value)


def _config() -> Any:
    items = []
    for name in sorted(pytensor.config._config_var_dict):  # the same listing ``print(pytensor.config)`` uses
        if not name.startswith(_NEUTRAL):
            try:
                items.append((name, repr(getattr(pytensor.config, name))))
            except Exception:  # noqa: BLE001 - a setting that cannot be read here cannot be compared
                raise _Unkeyable(name) from None
    return tuple(items)


def _rewrite_entries() -> list[tuple[str, Any]]:
    """Every rewrite PyTensor's databases hold, nested databases included, by its name."""
    from pytensor.compile.mode import optdb
    from pytensor.graph.rewriting.db import RewriteDatabase

    seen: set[int] = set()
    out: list[tuple[str, Any]] = []

    def walk(db: RewriteDatabase) -> None:
        for name in sorted(db._names):
            for entry in db.__db__[name]:
                if id(entry) in seen:
                    continue
                seen.add(id(entry))
                out.append((name, entry))
                if isinstance(entry, RewriteDatabase):
                    walk(entry)

    walk(optdb)
    return out


# The rewrites registered while `import_dispatch` imported PyTensor's JAX dispatch (it imports
# pytensor.sparse: 12 rewrites). They are PyTensor's own, fixed by its version; listed, they would make a
# model's digest depend on whether this process had imported the dispatch yet (a process's first compile
# digests before it does), so a model compiled after another would miss the store. (Rewrite objects
# stay in their databases for the life of the process, so their ids stay theirs.)
_DISPATCH_REWRITES: set[int] = set()


def import_dispatch(load: Callable[[], Any]) -> None:
    """``load()``, the import of PyTensor's JAX dispatch, noting the rewrites it registers."""
    before = {id(entry) for _, entry in _rewrite_entries()}
    try:
        load()
    finally:
        _DISPATCH_REWRITES.update(id(e) for _, e in _rewrite_entries() if id(e) not in before)


def _pytensor_attributes() -> set[int]:
    """The ids of every attribute of every PyTensor module this process has imported."""
    return {
        id(value)
        for name, module in list(sys.modules.items())
        if _from_pytensor(name + ".") and module is not None
        for value in list(vars(module).values())
    }


def _from_pytensor_rewrite(entry: Any, attributes: Callable[[], set[int]]) -> bool:
    """Whether a rewrite is PyTensor's own: its function is (or wraps one that is) defined in a PyTensor
    module, or it is an attribute of one (a rewrite made from a pattern)."""
    inner = getattr(entry, "node_rewriter", None)
    if inner is not None:
        return _from_pytensor_rewrite(inner, attributes)
    fn = getattr(entry, "fn", None)
    if fn is not None:
        return _from_pytensor(getattr(fn, "__module__", ""))
    return id(entry) in attributes()


def _rewrites() -> Any:
    """The names and classes of the rewrites PyTensor's databases hold that are not PyTensor's own:
    another package (PyMC) or the user may register rewrites, which change what a graph becomes.
    PyTensor's own are fixed by its version; which of them are registered depends only on which of its
    modules the process has imported so far (``pytensor.scan`` imports ``pytensor.sparse`` when first
    called, the JAX dispatch imports it too), and listing them would give one model two digests."""
    found: list[set[int]] = []

    def attributes() -> set[int]:  # read once, and only if a rewrite has no function to tell
        if not found:
            found.append(_pytensor_attributes())
        return found[0]

    return tuple(
        (name, type(entry).__module__, type(entry).__qualname__)
        for name, entry in _rewrite_entries()
        if id(entry) not in _DISPATCH_REWRITES and not _from_pytensor_rewrite(entry, attributes)
    )


def _check_conversions() -> None:
    """Refuse if another package registered a JAX conversion. PyTensor's own are fixed by its version
    (in the digest): listing them would make a model's digest depend on whether this process has
    imported them yet (the first compile of a process does, after its digest), and so miss the store."""
    dispatch = sys.modules.get(_DISPATCH)
    if dispatch is None:  # not imported: nothing can have registered one
        return
    for registry in (dispatch.jax_funcify.registry, dispatch.jax_typify.registry):
        for fn in registry.values():
            if not _from_pytensor(getattr(fn, "__module__", "")) and id(fn) not in PYTENSORS_OWN:
                raise _Unkeyable(fn)


def _graph_rows(inputs: Sequence[Variable], targets: Sequence[Variable], depth: int = 0) -> list[Any]:
    """The graph from ``inputs`` to ``targets`` as rows of plain values: the inputs' types, then every
    node in topological order (its Op's class and fields, its arguments and outputs by number), then
    which numbers are the targets. Inputs are numbered by position, so an Op's inner graph (whose inputs
    are placeholders) reads the same wherever the Op is."""
    refs: dict[Variable, int] = {v: i for i, v in enumerate(inputs)}
    rows: list[Any] = [tuple(_plain(v.type, depth) for v in inputs)]

    def ref(v: Variable) -> int:
        if v not in refs:
            refs[v] = len(refs)
            rows.append(("leaf", refs[v], _leaf(v)))
        return refs[v]

    for node in io_toposort(list(inputs), list(targets)):
        args = tuple(ref(v) for v in node.inputs)
        outs = []
        for out in node.outputs:
            refs[out] = len(refs)
            outs.append((refs[out], _plain(out.type, depth)))
        rows.append(("apply", _pytensor_class(node.op), _plain(node.op, depth), args, tuple(outs)))
    rows.append(("outputs", tuple(ref(v) for v in targets)))
    return rows


def graph_fingerprint(
    inputs: Sequence[Variable], functions: Mapping[str, Mapping[str, Variable]], layout: Any
) -> bytes | None:
    """Digest of the graphs of ``functions`` (function name -> output name -> expression, each a graph
    of ``inputs``) and of ``layout`` (plain values: shapes, names), or None if something in them
    cannot be described completely (see the module doc)."""
    h = hashlib.sha256()
    try:
        _check_conversions()
        h.update(repr((pytensor.__version__, _config(), _rewrites(), _plain(layout))).encode())
        for function, outputs in functions.items():
            rows = _graph_rows(inputs, list(outputs.values()))
            h.update(repr((("function", function, tuple(outputs)), rows)).encode())
    except (_Unkeyable, RecursionError, TypeError, ValueError, AttributeError):
        return None
    return h.digest()
