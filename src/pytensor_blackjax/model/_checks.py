"""Checks of user-built graphs, each raising an error that names the culprit and the fix."""

from __future__ import annotations

import keyword
import re

from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant, Variable
from pytensor.tensor.variable import TensorVariable

__all__ = ["check_from_logp", "check_name", "check_scalar_logp"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\[\]-]*$")


def check_name(name: object, *, what: str) -> str:
    if not isinstance(name, str) or not name or not _NAME.match(name) or keyword.iskeyword(name):
        raise ValueError(
            f"{what} name {name!r} is not usable: give a non-empty string of letters, digits and '_' "
            "that does not start with a digit."
        )
    return name


def check_scalar_logp(logp: object, *, where: str) -> None:
    if not isinstance(logp, Variable) or not isinstance(logp, TensorVariable):
        raise TypeError(
            f"{where}: the log-density must be a PyTensor tensor expression, got {type(logp).__name__}."
        )
    if logp.type.ndim != 0:
        raise ValueError(
            f"{where}: the log-density must be a scalar, got ndim={logp.type.ndim} "
            f"(shape {logp.type.shape}); wrap it in pt.sum(...) if it is a sum of terms."
        )
    if not logp.type.dtype.startswith("float"):
        raise TypeError(f"{where}: the log-density must be floating point, got dtype {logp.type.dtype}.")


def _check_input(var: object, index: int) -> TensorVariable:
    label = f"inputs[{index}]"
    if not isinstance(var, TensorVariable):
        raise TypeError(f"{label} must be a PyTensor tensor variable, got {type(var).__name__}.")
    if isinstance(var, Constant | SharedVariable):
        raise ValueError(
            f"{label} ({var}) is a {'constant' if isinstance(var, Constant) else 'shared variable'}, "
            "which the sampler cannot move; pass a free variable such as pt.vector('theta', shape=(3,)) "
            "(to swap data at sample time, declare it with ModelBuilder.data)."
        )
    if var.owner is not None:
        raise ValueError(
            f"{label} ({var}) is not a root input: it is computed from other variables. Pass the free "
            "variables the log-density is written in (e.g. pt.scalar('log_a')), not expressions of them."
        )
    if not var.type.dtype.startswith("float"):
        raise TypeError(
            f"{label} {var.name!r} has dtype {var.type.dtype}: integer (discrete) parameters cannot be "
            "sampled by gradient-based samplers; marginalise them out or declare the input as a float."
        )
    if not var.name:
        raise ValueError(f"{label} has no name; create it with a name, e.g. pt.vector('theta').")
    check_name(var.name, what=label)
    return var


def check_from_logp(logp, inputs, deterministics) -> None:
    check_scalar_logp(logp, where="Model.from_logp")
    if isinstance(inputs, Variable) or not hasattr(inputs, "__iter__"):
        raise TypeError("Model.from_logp: inputs must be a list of variables, e.g. inputs=[log_a, log_b].")
    inputs = [_check_input(v, i) for i, v in enumerate(inputs)]
    if not inputs:
        raise ValueError("Model.from_logp: inputs is empty; pass the free variables of the log-density.")
    names = [v.name for v in inputs]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"Model.from_logp: duplicate input names {dups}; every input needs its own name.")
    for key, expr in deterministics.items():
        check_name(key, what="deterministic")
        if key in names:
            raise ValueError(
                f"deterministic {key!r} has the same name as an input; rename the deterministic."
            )
        if not isinstance(expr, TensorVariable):
            raise TypeError(
                f"deterministic {key!r} must be a PyTensor expression, got {type(expr).__name__}."
            )
