"""Three posteriors written in PyMC and brought in with ``Model.from_pymc`` (needs the pymc extra).

The same posteriors as the builder versions, written the way a PyMC user would; the validation
suite can run them (``run_validation(..., source="pymc")``) to check the PyMC route end to end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pytensor_blackjax.examples.posteriordb._common import array
from pytensor_blackjax.model import Model

__all__ = ["PYMC_MODELS", "pymc_model"]


def _pymc():
    try:
        import pymc
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the PyMC versions of the posteriordb models need PyMC; install the extra: "
            "pip install 'pytensor-blackjax[pymc]'."
        ) from err
    return pymc


def _eight_schools_noncentered(data: Mapping[str, Any]):
    pm = _pymc()
    y, sigma = array(data, "y"), array(data, "sigma")
    with pm.Model(coords={"school": list(range(len(y)))}) as pm_model:
        mu = pm.Normal("mu", 0.0, 5.0)
        tau = pm.HalfCauchy("tau", 5.0)
        theta_trans = pm.Normal("theta_trans", 0.0, 1.0, dims="school")
        theta = pm.Deterministic("theta", mu + tau * theta_trans, dims="school")
        pm.Normal("y", theta, sigma, observed=y, dims="school")
    return pm_model


def _kidiq(data: Mapping[str, Any]):
    pm = _pymc()
    hs, iq = array(data, "mom_hs"), array(data, "mom_iq")
    design = np.column_stack([np.ones_like(hs), hs, iq, hs * iq])
    with pm.Model() as pm_model:
        beta = pm.Flat("beta", shape=4)
        sigma = pm.HalfCauchy("sigma", 2.5)
        pm.Normal("kid_score", pm.math.dot(design, beta), sigma, observed=array(data, "kid_score"))
    return pm_model


def _ark(data: Mapping[str, Any]):
    pm = _pymc()
    y, lags = array(data, "y"), int(data["K"])
    lagged = np.column_stack([y[lags - k : len(y) - k] for k in range(1, lags + 1)])
    with pm.Model() as pm_model:
        alpha = pm.Normal("alpha", 0.0, 10.0)
        beta = pm.Normal("beta", 0.0, 10.0, shape=lags)
        sigma = pm.HalfCauchy("sigma", 2.5)
        pm.Normal("y", alpha + pm.math.dot(lagged, beta), sigma, observed=y[lags:])
    return pm_model


PYMC_MODELS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "eight_schools-eight_schools_noncentered": _eight_schools_noncentered,
    "kidiq-kidscore_interaction": _kidiq,
    "arK-arK": _ark,
}


def pymc_model(name: str, data: Mapping[str, Any]) -> Model:
    """The PyMC version of posterior ``name``, translated with ``Model.from_pymc``.

    Args:
        name: one of `PYMC_MODELS`.
        data: the posterior's data set (its data.json).

    Returns:
        A `Model` with the same posterior names as the builder version.

    Raises:
        KeyError: ``name`` has no PyMC version.
        ImportError: PyMC is not installed.

    Example:
        >>> from pytensor_blackjax.examples import posteriordb
        >>> data = {"J": 8, "y": [28, 8, -3, 7, -1, 1, 18, 12], "sigma": [15, 10, 16, 11, 9, 11, 10, 18]}
        >>> m = posteriordb.pymc_model("eight_schools-eight_schools_noncentered", data)
    """
    if name not in PYMC_MODELS:
        raise KeyError(f"posterior {name!r} has no PyMC version; those with one: {sorted(PYMC_MODELS)}.")
    return Model.from_pymc(PYMC_MODELS[name](data))
