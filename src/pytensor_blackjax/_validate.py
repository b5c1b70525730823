"""Checks of ``sample`` arguments; each error names the argument, the value and the fix."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["check_count", "check_data", "check_seed"]


# a typical value of each count, for the error message; 1000 for the rest (draws, tune, simulations)
EXAMPLES = {
    "chains": 4,
    "thin": 1,
    "chunk_size": 100,
    "workers": 2,
    "threads_per_worker": 1,
    "fits_at_once": 4,
    "batch_size": 64,
    "studies": 200,
    "num_ranks": 100,
}


def check_count(name: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        example = EXAMPLES.get(name, 1000)
        raise ValueError(
            f"{name}={value!r} is not valid: {name} must be an integer >= {minimum}, e.g. {name}={example}."
        )
    return int(value)


def check_seed(seed: Any) -> int:
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) < 2**64:
        raise TypeError(
            f"seed={seed!r} is not valid: give a non-negative integer below 2**64 (e.g. seed=1) "
            "or None for a random one."
        )
    return int(seed)


def check_data(
    defaults: Mapping[str, np.ndarray],
    data: Mapping[str, Any] | None,
    index_limits: Mapping[str, int | None] | None = None,
) -> dict[str, np.ndarray]:
    """New values for declared data: same shape, compatible dtype, finite; index data within the
    dimension they index (``index_limits``: name -> its length, None: the original data's range)."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise TypeError(f"data must be a dict of name -> array, got {type(data).__name__}.")
    out = {}
    for name, value in data.items():
        if name not in defaults:
            known = sorted(defaults) or "none"
            raise ValueError(
                f"data[{name!r}]: the model declares no data named {name!r}; its data are {known}. "
                "Declare it with ModelBuilder.data (or pm.Data) to swap it at sample time."
            )
        ref = defaults[name]
        array = np.asarray(value)
        if array.shape != ref.shape:
            raise ValueError(
                f"data[{name!r}] has shape {array.shape} but the model was built with shape {ref.shape}; "
                "new data must keep the shape (build a new model for a different size)."
            )
        if array.dtype.kind not in "biuf":
            raise TypeError(f"data[{name!r}] must be numeric, got dtype {array.dtype}.")
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError(f"data[{name!r}] contains NaN or inf values; remove or impute them first.")
        if ref.dtype.kind in "biu" and array.dtype.kind == "f":
            if not np.all(array == np.round(array)):
                raise TypeError(
                    f"data[{name!r}] holds non-integer values but the model declared it as {ref.dtype}; "
                    "pass integers."
                )
        out[name] = array.astype(ref.dtype)
        if index_limits and name in index_limits:
            _check_index(name, out[name], ref, index_limits[name])
    return out


def _check_index(name: str, array: np.ndarray, original: np.ndarray, length: int | None) -> None:
    # JAX clamps out-of-range indices without a word: an index of 25 for 10 groups would read group 9.
    if length is not None:
        low, high, what = (
            (-length if original.min(initial=0) < 0 else 0),
            length - 1,
            f"a dimension of length {length}",
        )
    else:
        low, high, what = (
            int(original.min(initial=0)),
            int(original.max(initial=0)),
            "the original data's range",
        )
    bad = np.flatnonzero((array < low) | (array > high))
    if bad.size:
        raise ValueError(
            f"data[{name!r}] indexes {what} (valid {low}..{high}) but holds {array.flat[bad[0]]} at position "
            f"{int(bad[0])} ({bad.size} out of range); JAX would clamp it silently. Fix the index, or build "
            "the model with the new number of entries."
        )
