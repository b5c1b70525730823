"""Log-density pieces shared by the posteriordb models (normalising constants dropped)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytensor.tensor as pt

__all__ = ["array", "half_cauchy", "normal", "student_t"]


def normal(x, mu, sigma):
    """Normal(mu, sigma) log-density of ``x`` (sigma is a standard deviation), summed."""
    return pt.sum(-0.5 * pt.sqr((x - mu) / sigma) - pt.log(sigma))


def half_cauchy(x, scale):
    """Cauchy(0, scale) on x > 0, up to a constant."""
    return pt.sum(-pt.log1p(pt.sqr(x / scale)))


def student_t(x, nu, mu, sigma):
    """Student-t(nu, mu, sigma) log-density of ``x``, up to a constant that does not involve sigma."""
    z = (x - mu) / sigma
    return pt.sum(-0.5 * (nu + 1.0) * pt.log1p(pt.sqr(z) / nu) - pt.log(sigma))


def array(data: Mapping[str, Any], key: str, *, dtype: str = "float64") -> np.ndarray:
    """One field of a posteriordb data set as an array; a missing field names the fields there are."""
    if key not in data:
        raise KeyError(
            f"the data set has no field {key!r} (fields: {sorted(data)}); pass the data.json of the "
            "matching posterior."
        )
    return np.asarray(data[key], dtype=dtype)
