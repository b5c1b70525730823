"""The model inside a store: a fingerprint of its graphs and data, and a pickled copy to rebuild it.

PyTensor graphs pickle with the standard library once the model's read-only mappings are taught to
(``MappingProxyType`` has no pickle support of its own). The source object (e.g. a PyMC model) is
left out: it is not needed to sample and often does not pickle.
"""

from __future__ import annotations

import copyreg
import dataclasses
import hashlib
import io
import json
import pickle
import types

import numpy as np
import pytensor
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import ancestors

from pytensor_blackjax.model import Model
from pytensor_blackjax.model._model import frozen_mapping

__all__ = ["dump_model", "fingerprint"]


def fingerprint(model: Model) -> str:
    """A hash of everything that decides the log-density and the reported values.

    Covers the printed graphs (logp, outputs, pointwise log-likelihood), the bytes of every constant
    and shared value in them, the value names and shapes, the declared data and the coords/dims.
    """
    graphs = [model.logp, *model.outputs.values(), *model.log_likelihood.values()]
    digest = hashlib.sha256()
    layout = {
        "values": [[v.name, list(v.type.shape), str(v.type.dtype)] for v in model.values],
        "outputs": list(model.outputs),
        "log_likelihood": list(model.log_likelihood),
        "data": [
            [k, d.kind, str(np.asarray(d.value).dtype), list(np.shape(d.value))]
            for k, d in model.data.items()
        ],
        "coords": {k: [str(c) for c in v] for k, v in model.coords.items()},
        "dims": {k: list(v) for k, v in model.dims.items()},
    }
    digest.update(json.dumps(layout, sort_keys=True).encode())
    text = pytensor.printing.debugprint(graphs, file="str", print_type=True)
    assert isinstance(text, str)  # file="str" returns the printout
    digest.update(text.encode())
    for var in ancestors(graphs):
        if isinstance(var, Constant):
            digest.update(np.ascontiguousarray(var.data).tobytes())
        elif isinstance(var, SharedVariable):
            value = var.get_value(borrow=True)
            if isinstance(value, np.ndarray):
                digest.update(np.ascontiguousarray(value).tobytes())
    for d in model.data.values():
        digest.update(np.ascontiguousarray(d.value).tobytes())
    return digest.hexdigest()


# the name stores written before `frozen_mapping` moved to the model layer refer to
_mapping_proxy = frozen_mapping


def _reduce_mapping_proxy(proxy: types.MappingProxyType) -> tuple:
    return frozen_mapping, (dict(proxy),)


def dump_model(model: Model) -> bytes:
    """Pickle ``model`` without its ``source``.

    Raises:
        pickle.PicklingError, TypeError, AttributeError: some part of the model does not pickle (e.g. a
            custom transform defined inside a function).
    """
    if model.source is not None:
        model = dataclasses.replace(model, source=None)
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = copyreg.dispatch_table.copy()
    pickler.dispatch_table[types.MappingProxyType] = _reduce_mapping_proxy
    pickler.dump(model)
    return buffer.getvalue()
