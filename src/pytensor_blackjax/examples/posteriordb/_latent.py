"""A Gaussian mixture with ordered means and a latent Gaussian-process Poisson regression."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytensor.tensor as pt

from pytensor_blackjax.examples.posteriordb._common import array, normal
from pytensor_blackjax.model import Model, ModelBuilder

__all__ = ["gp_pois_regr", "low_dim_gauss_mix"]


def low_dim_gauss_mix(data: Mapping[str, Any]) -> Model:
    """Two-component 1-D normal mixture; ``mu`` ordered, ``theta`` the weight of the lower component."""
    m = ModelBuilder(name="low_dim_gauss_mix-low_dim_gauss_mix")
    y = m.data("y", array(data, "y"), observed=True)
    mu = m.param("mu", shape=(2,), transform="ordered")
    sigma = m.param("sigma", shape=(2,), transform="positive")
    theta = m.param("theta", transform="unit")
    m.add_logp(normal(mu, 0.0, 2.0) + normal(sigma, 0.0, 2.0))
    m.add_logp(4.0 * pt.log(theta) + 4.0 * pt.log1p(-theta))  # Beta(5, 5)
    component = -0.5 * pt.sqr((y[:, None] - mu) / sigma) - pt.log(sigma)
    weights = pt.stack([pt.log(theta), pt.log1p(-theta)])
    m.add_logp(pt.logsumexp(component + weights, axis=1))
    return m.build()


def gp_pois_regr(data: Mapping[str, Any]) -> Model:
    """Poisson counts with a log-rate ``f = L @ f_tilde``, ``L`` the Cholesky factor of a squared-exp kernel.

    Returns:
        A `Model` reporting ``rho``, ``alpha``, ``f_tilde`` and the derived ``f``.
    """
    m = ModelBuilder(name="gp_pois_regr-gp_pois_regr")
    x = m.data("x", array(data, "x"))
    k = m.data("k", array(data, "k", dtype="int64"), observed=True)
    size = int(x.type.shape[0])
    rho = m.param("rho", transform="positive")
    alpha = m.param("alpha", transform="positive")
    f_tilde = m.param("f_tilde", shape=(size,))
    m.add_logp(24.0 * pt.log(rho) - 4.0 * rho)  # Gamma(25, rate 4)
    m.add_logp(normal(alpha, 0.0, 2.0) + normal(f_tilde, 0.0, 1.0))
    sq_dist = pt.sqr(x[:, None] - x[None, :])
    cov = pt.sqr(alpha) * pt.exp(-sq_dist / (2.0 * pt.sqr(rho))) + 1e-10 * np.eye(size)
    f = m.deterministic("f", pt.linalg.cholesky(cov) @ f_tilde)
    m.add_logp(k * f - pt.exp(f))
    return m.build()
