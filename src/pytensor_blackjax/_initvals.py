"""``initvals``: chains that start at given values, on the constrained scale, as PyMC's
``pm.sample(initvals=...)``.

The given values are checked (names, shapes, support), turned into unconstrained values through the
model's transforms (`Model.unconstrain`) and written over the default starting points (see
`run._start`), so every variable not named keeps its uniform(-init_radius, init_radius) start. The
log-density and its gradient must be finite at the resulting point.

Ensemble samplers (ChEES, MEADS, Pathfinder, VI) tune from the spread of their chains; given one
dict for all of them, each chain's named coordinates are jittered by uniform(-1, 1) in unconstrained
space (PyMC's ``jitter+adapt_diag`` jitter), keeping the exact value where the jittered point is not
finite. SMC starts its particles from its reference distribution and refuses ``initvals``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.compile._breakdown import describe_terms
from pytensor_blackjax.compile._jaxify import jaxify

__all__ = ["JITTER", "check_initvals", "start_points"]

JITTER = 1.0  # half-width of the uniform jitter of ensemble chains sharing one dict (PyMC's)
JITTER_TRIES = 10
_TOLERANCE = 1e-6  # relative: a value whose round trip through its transform moves more is outside


def check_initvals(initvals: Any, compiled: CompiledModel, chains: int) -> tuple[list[dict], bool]:
    """The given values as one dict of float arrays per chain, and whether one dict was shared.

    Raises:
        TypeError: ``initvals`` is neither a dict nor a list of dicts.
        ValueError: a list whose length is not ``chains``, an unknown name, a wrong shape or a value
            that is not a finite number.
    """
    if isinstance(initvals, Mapping):
        one = _check_one(initvals, compiled, where="initvals")
        return [one] * chains, True
    if isinstance(initvals, Sequence) and not isinstance(initvals, str):
        if len(initvals) != chains:
            raise ValueError(
                f"initvals has {len(initvals)} dicts for chains={chains}: give one dict per chain, or one "
                "dict (not in a list) for all chains."
            )
        out = []
        for i, given in enumerate(initvals):
            if not isinstance(given, Mapping):
                raise TypeError(
                    f"initvals[{i}]={given!r} is not a dict: give {{variable name: value}} for each chain."
                )
            out.append(_check_one(given, compiled, where=f"initvals[{i}]"))
        return out, False
    raise TypeError(
        f"initvals={initvals!r} is not valid: give a dict {{variable name: value}} for all chains, or a "
        "list of such dicts, one per chain."
    )


def _check_one(given: Mapping, compiled: CompiledModel, *, where: str) -> dict[str, np.ndarray]:
    model = compiled.model
    free = getattr(model, "unconstrain", None) or {}  # models pickled before initvals existed have none
    if not free:
        raise ValueError(
            f"{where}: this model does not say how its parameters map to unconstrained values (a model "
            "stored by an older release); rebuild it with ModelBuilder, Model.from_logp or Model.from_pymc."
        )
    out = {}
    for name, value in given.items():
        if name not in free:
            raise ValueError(f"{where}: {name!r} is not a free variable of the model{_hint(name, model)}")
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{where}[{name!r}]={value!r} is not a number or an array of numbers.") from None
        shape = tuple(free[name].constrained.type.shape)
        if array.shape != shape:
            raise ValueError(
                f"{where}[{name!r}] has shape {array.shape} but {name!r} has shape {shape}; give an array "
                f"of shape {shape}."
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{where}[{name!r}]={value!r} is not finite; give finite values.")
        out[name] = array
    return out


def _hint(name: str, model: Any) -> str:
    free = list(model.unconstrain)
    by_value = {u.value: k for k, u in model.unconstrain.items()}
    if name in by_value:
        return (
            f": {name!r} is the unconstrained value of {by_value[name]!r}; give {by_value[name]!r} on its "
            "constrained scale."
        )
    if name in model.outputs:
        return f": {name!r} is a deterministic; give values for the free variables {free}."
    close = difflib.get_close_matches(name, free, n=1, cutoff=0.6)
    near = f"; did you mean {close[0]!r}?" if close else "."
    return f"{near} Its free variables are {free}."


def start_points(
    given: list[dict[str, np.ndarray]],
    compiled: CompiledModel,
    default: np.ndarray,
    data: tuple,
    *,
    shared: bool = False,
    jitter_seed: int | None = None,
) -> np.ndarray:
    """The default starting points ``(chains, dims)`` with the given variables' unconstrained values
    written over them; ``shared``: one dict was given for all chains (for the messages);
    ``jitter_seed`` (ensemble samplers sharing one dict) jitters those coordinates.

    Raises:
        ValueError: a value outside its variable's support, or a start where the log-density or its
            gradient is not finite (the message gives the terms).
    """
    model = compiled.model
    blocks = {b.name: b for b in compiled.blocks}
    values = [*model.values, *(d.variable for d in model.data.values())]
    out = np.array(default, dtype=np.float64)
    rng = None if jitter_seed is None else np.random.default_rng([jitter_seed, 0x1717])
    for chain, chosen in enumerate(given):
        where = "initvals" if shared else f"initvals[{chain}]"
        named = []
        # model order: a bound given by another variable sees that variable's given value
        for name, entry in model.unconstrain.items():
            if name not in chosen:
                continue
            block = blocks[entry.value]
            fn = _program(compiled, name, entry, values)
            x = np.asarray(fn(chosen[name], *_split(compiled, out[chain]), *data)[0], dtype=np.float64)
            x = np.reshape(x, (-1,))
            if x.size != block.size or not np.all(np.isfinite(x)):
                raise ValueError(_outside(where, name, chosen[name]))
            out[chain, block.start : block.start + block.size] = x
            named.append(block)
        back = compiled.flat_constrain(out[chain], data)
        for name in chosen:
            if not np.allclose(np.asarray(back[name]), chosen[name], rtol=_TOLERANCE, atol=_TOLERANCE):
                raise ValueError(_outside(where, name, chosen[name]))
        _check_finite(compiled, out[chain], data, where, chosen)
        if rng is not None and named:
            out[chain] = _jittered(compiled, out[chain], named, data, rng)
    return out


def _program(compiled: CompiledModel, name: str, entry: Any, values: list) -> Any:
    return compiled.programs.get(
        ("unconstrain", name), lambda: jaxify([entry.constrained, *values], [entry.unconstrained])
    )


def _split(compiled: CompiledModel, flat: np.ndarray) -> list[np.ndarray]:
    return [flat[b.start : b.start + b.size].reshape(b.shape) for b in compiled.blocks]


def _outside(where: str, name: str, value: np.ndarray) -> str:
    return (
        f"{where}[{name!r}]={value.tolist()!r} is outside the support of {name!r} (its transform cannot map "
        "it to an unconstrained value: e.g. a negative value for a positive parameter, or a simplex that "
        f"does not sum to 1); give a value inside the support, or leave {name!r} out to start it at random."
    )


def _check_finite(compiled, flat, data, where: str, chosen: Mapping) -> None:
    lp, grad = jax.value_and_grad(compiled.flat_logdensity)(flat, data)
    if np.isfinite(float(lp)) and np.all(np.isfinite(np.asarray(grad))):
        return
    what = "log-density" if not np.isfinite(float(lp)) else "gradient of the log-density"
    raise ValueError(
        f"the {what} is not finite at the start given by {where} ({sorted(chosen)}; log-density = "
        f"{float(lp)}): give other values, or leave some variables out to start them at random."
        + describe_terms(compiled, flat, data)
    )


def _jittered(compiled, flat, named, data, rng) -> np.ndarray:
    for _ in range(JITTER_TRIES):
        moved = flat.copy()
        for b in named:
            moved[b.start : b.start + b.size] += rng.uniform(-JITTER, JITTER, b.size)
        lp, grad = jax.value_and_grad(compiled.flat_logdensity)(moved, data)
        if np.isfinite(float(lp)) and np.all(np.isfinite(np.asarray(grad))):
            return moved
    return flat
