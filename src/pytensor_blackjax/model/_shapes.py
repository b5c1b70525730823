"""Static shapes for inputs declared without them (``pt.vector``): inferred from the graph, or given.

PyTensor does not broadcast at run time, so an elementwise operation between an input of unknown
length and a tensor of known, non-broadcastable length fixes the input's length. We propagate known
lengths through elementwise nodes (forwards and backwards) until nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import graph_replace
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.variable import TensorVariable

__all__ = ["fix_input_shapes"]


def _infer_lengths(outputs: Sequence[TensorVariable]) -> dict[TensorVariable, list[int | None]]:
    nodes = list(pytensor.graph.traversal.io_toposort(
        list(pytensor.graph.traversal.graph_inputs(outputs)), list(outputs)))
    known: dict = {}

    def shape_of(var):
        return known.setdefault(var, list(var.type.shape))

    changed = True
    while changed:
        changed = False
        for node in nodes:
            if not isinstance(node.op, Elemwise):
                continue
            members = [v for v in (*node.inputs, *node.outputs) if hasattr(v.type, "shape")]
            ndim = node.outputs[0].type.ndim
            for axis in range(1, ndim + 1):
                lengths = set()
                for v in members:
                    s = shape_of(v)
                    if len(s) >= axis and s[-axis] is not None and s[-axis] != 1:
                        lengths.add(s[-axis])
                if len(lengths) != 1:
                    continue
                (length,) = lengths
                for v in members:
                    s = shape_of(v)
                    if len(s) >= axis and s[-axis] is None:
                        s[-axis] = length
                        changed = True
    return known


def fix_input_shapes(
    inputs: list[TensorVariable],
    outputs: list[TensorVariable],
    shapes: Mapping[str, Sequence[int]],
) -> tuple[list[TensorVariable], list[TensorVariable]]:
    """Give every input a full static shape; return the new inputs and the outputs rebuilt on them.

    Raises:
        ValueError: an input whose shape is unknown, not inferable and not in ``shapes``, or a
            ``shapes`` entry that does not fit the input.
    """
    names = {v.name for v in inputs}
    unknown = sorted(set(shapes) - names)
    if unknown:
        raise ValueError(
            f"shapes names {unknown} that are not inputs; the inputs are {sorted(names)}."
        )
    inferred = None
    replacements = {}
    new_inputs = []
    for var in inputs:
        static = list(var.type.shape)
        if var.name in shapes:
            given = tuple(int(s) for s in shapes[var.name])
            if len(given) != var.type.ndim or any(
                s < 0 or (k is not None and k != s) for s, k in zip(given, static, strict=False)
            ):
                raise ValueError(
                    f"shapes[{var.name!r}]={tuple(shapes[var.name])} does not fit input {var.name!r} "
                    f"of static shape {tuple(var.type.shape)}; give {var.type.ndim} non-negative lengths."
                )
            static = list(given)
        if None in static:
            if inferred is None:
                inferred = _infer_lengths(outputs)
            guess = inferred.get(var, static)
            static = [g if s is None else s for s, g in zip(static, guess, strict=True)]
        if None in static:
            raise ValueError(
                f"input {var.name!r} has no static shape ({tuple(var.type.shape)}) and it cannot be "
                f"inferred from the graph; pass shapes={{{var.name!r}: (...)}} or declare it with "
                f"pt.tensor({var.name!r}, shape=(...))."
            )
        if tuple(static) != tuple(var.type.shape):
            new = pt.tensor(name=var.name, dtype=var.type.dtype, shape=tuple(static))
            replacements[var] = new
            new_inputs.append(new)
        else:
            new_inputs.append(var)
    if not replacements:
        return new_inputs, list(outputs)
    return new_inputs, list(graph_replace(list(outputs), replacements, strict=False))
