"""Integer data used as indices, and the length of the dimension each indexes.

JAX clamps out-of-range indices instead of raising, so a group index of 25 for 10 groups would run
silently; ``sample(data=...)`` checks new index data against these lengths (`_validate.check_data`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pytensor.graph.traversal import ancestors
from pytensor.tensor.subtensor import AdvancedIncSubtensor, AdvancedSubtensor

from pytensor_blackjax.model import Model

__all__ = ["index_limits"]


def _indexed(node) -> list[tuple[object, int | None]]:
    """(index input, length of the axis it indexes or None) of one advanced-indexing node."""
    # idx_list holds, per indexed axis, the position of its index among the index inputs (or a slice)
    op, x = node.op, node.inputs[0]
    if isinstance(op, AdvancedSubtensor | AdvancedIncSubtensor):
        first = 1 if isinstance(op, AdvancedSubtensor) else 2
        return [
            (node.inputs[first + entry], x.type.shape[axis] if axis < x.type.ndim else None)
            for axis, entry in enumerate(getattr(op, "idx_list", ()))
            if isinstance(entry, int | np.integer) and first + entry < len(node.inputs)
        ]
    return []


def index_limits(model: Model) -> Mapping[str, int | None]:
    """Integer data name -> the length of the dimension it indexes (the smallest, if several; None when
    the length is not static)."""
    integer = {d.variable: k for k, d in model.data.items() if np.asarray(d.value).dtype.kind in "iu"}
    if not integer:
        return {}
    graphs = [model.logp, *model.outputs.values(), *model.log_likelihood.values()]
    limits: dict[str, int | None] = {}
    seen = set()
    for var in ancestors(graphs):
        node = var.owner
        if node is None or node in seen:
            continue
        seen.add(node)
        for index, length in _indexed(node):
            name = integer.get(index)  # type: ignore[call-overload]  # PyTensor types graph inputs as object
            if name is None:
                continue
            known = [n for n in (limits.get(name), length) if n is not None]
            limits[name] = min(known) if known else None
    return limits
