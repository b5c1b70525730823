"""Static shapes for inputs declared without them (``pt.vector``): inferred from the graph, or given.

PyTensor does not broadcast at run time, so an elementwise operation between an input of unknown
length and a tensor of known, non-broadcastable length fixes the input's length; so do the contracted
and kept axes of a matrix product, and the axes a dimshuffle (``x[:, None]``, squeeze, transpose) moves.
We propagate known lengths through such nodes (forwards and backwards) until nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import graph_replace
from pytensor.tensor.blockwise import Blockwise
from pytensor.tensor.elemwise import DimShuffle, Elemwise
from pytensor.tensor.math import Dot
from pytensor.tensor.variable import TensorVariable

__all__ = ["fix_input_shapes"]


def _ties(node) -> list[tuple[tuple, tuple]]:
    """Pairs ``((var, axis), (var, axis))`` whose lengths ``node`` forces to be equal."""
    op = node.op
    if isinstance(op, DimShuffle):
        (x,), (out,) = node.inputs, node.outputs
        return [((x, src), (out, dst)) for dst, src in enumerate(op.new_order) if src != "x"]
    if isinstance(op, Dot) and all(v.type.ndim == 2 for v in (*node.inputs, *node.outputs)):
        (a, b), (out,) = node.inputs, node.outputs
        return [((a, 1), (b, 0)), ((a, 0), (out, 0)), ((b, 1), (out, 1))]
    if isinstance(op, Blockwise) and isinstance(op.core_op, Dot) and len(node.inputs) == 2:
        (a, b), (out,) = node.inputs, node.outputs
        if min(a.type.ndim, b.type.ndim) >= 2:
            na, nb, no = a.type.ndim, b.type.ndim, out.type.ndim
            return [((a, na - 1), (b, nb - 2)), ((a, na - 2), (out, no - 2)), ((b, nb - 1), (out, no - 1))]
    return []


def _infer_lengths(outputs: Sequence[TensorVariable]) -> dict[TensorVariable, list[int | None]]:
    nodes = list(
        pytensor.graph.traversal.io_toposort(
            list(pytensor.graph.traversal.graph_inputs(outputs)), list(outputs)
        )
    )
    known: dict = {}

    def shape_of(var):
        return known.setdefault(var, list(var.type.shape))

    changed = True
    while changed:
        changed = False
        for node in nodes:
            for (v1, ax1), (v2, ax2) in _ties(node):
                s1, s2 = shape_of(v1), shape_of(v2)
                if s1[ax1] is None and s2[ax2] is not None:
                    s1[ax1], changed = s2[ax2], True
                elif s2[ax2] is None and s1[ax1] is not None:
                    s2[ax2], changed = s1[ax1], True
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
    names = {str(v.name) for v in inputs}
    unknown = sorted(set(shapes) - names)
    if unknown:
        raise ValueError(f"shapes names {unknown} that are not inputs; the inputs are {sorted(names)}.")
    inferred = None
    replacements = {}
    new_inputs = []
    for var in inputs:
        static = list(var.type.shape)
        if var.name is not None and var.name in shapes:
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
    replaced = graph_replace(list(outputs), replacements, strict=False)  # type: ignore[arg-type]
    return new_inputs, list(replaced)  # type: ignore[arg-type]
