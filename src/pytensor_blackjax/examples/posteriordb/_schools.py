"""Eight schools (Rubin 1981): the hierarchical normal model, centered and non-centered."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytensor_blackjax.examples.posteriordb._common import array, half_cauchy, normal
from pytensor_blackjax.model import Model, ModelBuilder

__all__ = ["eight_schools_centered", "eight_schools_noncentered"]


def _start(data: Mapping[str, Any], name: str):
    y_values = array(data, "y")
    m = ModelBuilder(name=name)
    m.coords(school=list(range(len(y_values))))
    y = m.data("y", y_values, dims=("school",), observed=True)
    sigma = m.data("sigma", array(data, "sigma"), dims=("school",))
    mu = m.param("mu")
    tau = m.param("tau", transform="positive")
    m.add_logp(normal(mu, 0.0, 5.0) + half_cauchy(tau, 5.0))
    return m, y, sigma, mu, tau


def eight_schools_noncentered(data: Mapping[str, Any]) -> Model:
    """Non-centered: ``theta = mu + tau * theta_trans`` with ``theta_trans ~ Normal(0, 1)``.

    Args:
        data: the posterior's data.json (``y``, ``sigma``).

    Returns:
        A `Model` reporting ``mu``, ``tau``, ``theta_trans`` and the derived ``theta``.
    """
    m, y, sigma, mu, tau = _start(data, "eight_schools-eight_schools_noncentered")
    theta_trans = m.param("theta_trans", shape=y.type.shape, dims=("school",))
    theta = m.deterministic("theta", mu + tau * theta_trans, dims=("school",))
    m.add_logp(normal(theta_trans, 0.0, 1.0))
    m.add_logp(normal(y, theta, sigma))
    return m.build()


def eight_schools_centered(data: Mapping[str, Any]) -> Model:
    """Centered: ``theta ~ Normal(mu, tau)`` sampled directly (a funnel: expect divergences).

    Args:
        data: the posterior's data.json (``y``, ``sigma``).

    Returns:
        A `Model` reporting ``mu``, ``tau`` and ``theta``.
    """
    m, y, sigma, mu, tau = _start(data, "eight_schools-eight_schools_centered")
    theta = m.param("theta", shape=y.type.shape, dims=("school",))
    m.add_logp(normal(theta, mu, tau))
    m.add_logp(normal(y, theta, sigma))
    return m.build()
