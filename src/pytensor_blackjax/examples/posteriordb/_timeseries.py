"""Time series: AR(K), ARMA(1,1) and GARCH(1,1); recursions are written with ``pytensor.scan``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytensor
import pytensor.tensor as pt

from pytensor_blackjax.examples.posteriordb._common import array, half_cauchy, normal
from pytensor_blackjax.model import Model, ModelBuilder

__all__ = ["TriangleGarch", "arK", "arma11", "garch11"]


def arK(data: Mapping[str, Any]) -> Model:  # noqa: N802 - the posterior's own name
    """AR(K) on a series, conditional on its first K values; Normal(0, 10) priors, half-Cauchy sigma."""
    lags = int(data["K"])
    m = ModelBuilder(name="arK-arK")
    y = m.data("y", array(data, "y"), observed=True)
    length = int(y.type.shape[0])
    alpha = m.param("alpha")
    beta = m.param("beta", shape=(lags,))
    sigma = m.param("sigma", transform="positive")
    m.add_logp(normal(alpha, 0.0, 10.0) + normal(beta, 0.0, 10.0) + half_cauchy(sigma, 2.5))
    # column k-1 holds y[t-k] for t = K..T-1 (0-based)
    lagged = pt.stack([y[lags - k : length - k] for k in range(1, lags + 1)], axis=1)
    m.add_logp(normal(y[lags:], alpha + lagged @ beta, sigma))
    return m.build()


def arma11(data: Mapping[str, Any]) -> Model:
    """ARMA(1,1) through the one-step prediction errors; no stationarity or invertibility constraint."""
    m = ModelBuilder(name="arma-arma11")
    y = m.data("y", array(data, "y"), observed=True)
    mu = m.param("mu")
    phi = m.param("phi")
    theta = m.param("theta")
    sigma = m.param("sigma", transform="positive")
    m.add_logp(
        normal(mu, 0.0, 10.0) + normal(phi, 0.0, 2.0) + normal(theta, 0.0, 2.0) + half_cauchy(sigma, 2.5)
    )
    # y[0] is replaced by mu before the series starts, and the error before it is 0
    previous = pt.concatenate([pt.stack([mu]), y[:-1]])
    shocks = y - mu - phi * previous

    def error(shock, err_before, theta):
        return shock - theta * err_before

    errors = pytensor.scan(
        error,
        sequences=[shocks],
        outputs_info=[pt.zeros((), dtype="float64")],
        non_sequences=[theta],
        return_updates=False,
    )
    m.add_logp(normal(errors, 0.0, sigma))
    return m.build()


@dataclass(frozen=True)
class TriangleGarch:
    """``(a, b)`` -> ``(alpha1, beta1)`` with ``alpha1 > 0``, ``beta1 > 0``, ``alpha1 + beta1 < 1``.

    ``alpha1 = sigmoid(a)``, ``beta1 = (1 - alpha1) * sigmoid(b)``. With the log-Jacobian below, a flat
    density on (a, b) plus the Jacobian is the uniform density on the triangle.
    """

    suffix: str = "triangle"

    def forward(self, x):
        alpha1 = pt.sigmoid(x[..., 0])
        return pt.stack([alpha1, (1.0 - alpha1) * pt.sigmoid(x[..., 1])], axis=-1)

    def backward(self, y):
        alpha1, beta1 = y[..., 0], y[..., 1]
        frac = beta1 / (1.0 - alpha1)
        return pt.stack([pt.log(alpha1) - pt.log1p(-alpha1), pt.log(frac) - pt.log1p(-frac)], axis=-1)

    def log_jacobian(self, x):
        a, b = x[..., 0], x[..., 1]
        log_sig = lambda v: -pt.softplus(-v)  # noqa: E731
        # d alpha1/da = s(a)(1-s(a)); d beta1/db = (1-s(a)) s(b)(1-s(b)); triangular Jacobian
        return pt.sum(log_sig(a) + 2.0 * log_sig(-a) + log_sig(b) + log_sig(-b))

    def value_shape(self, shape):
        if tuple(shape) != (2,):
            raise ValueError(f"TriangleGarch needs shape=(2,), got {shape}.")
        return shape


def garch11(data: Mapping[str, Any]) -> Model:
    """GARCH(1,1) with a flat prior on ``mu``, ``alpha0 > 0`` and the triangle of (alpha1, beta1)."""
    m = ModelBuilder(name="garch-garch11")
    y = m.data("y", array(data, "y"), observed=True)
    sigma1 = m.data("sigma1", array(data, "sigma1"))
    mu = m.param("mu")
    alpha0 = m.param("alpha0", transform="positive")
    pair = m.param("alpha1_beta1", shape=(2,), transform=TriangleGarch())
    alpha1 = m.deterministic("alpha1", pair[0])
    beta1 = m.deterministic("beta1", pair[1])
    # variances are linear in the previous variance: v[t] = alpha0 + alpha1 (y[t-1]-mu)^2 + beta1 v[t-1]
    innovations = alpha0 + alpha1 * pt.sqr(y[:-1] - mu)

    def variance(innovation, v_before, beta1):
        return innovation + beta1 * v_before

    later = pytensor.scan(
        variance,
        sequences=[innovations],
        outputs_info=[pt.sqr(sigma1)],
        non_sequences=[beta1],
        return_updates=False,
    )
    scale = pt.sqrt(pt.concatenate([pt.stack([pt.sqr(sigma1)]), later]))
    m.add_logp(normal(y, mu, scale))
    return m.build()
