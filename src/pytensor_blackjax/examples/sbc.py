"""Models for simulation-based calibration, each with its simulator: the prior and the data model in JAX.

Each `SBCCase` pairs a `ModelBuilder` model with ``simulate(key) -> (truth, data)``, which draws the
parameters from the same prior and data from the same likelihood, and the sampler settings it is fitted
with. Together they cover what a calibration study should reach:

- `eight_schools`: a hierarchical funnel (8 groups with the eight-schools standard errors, non-centered
  so that NUTS explores the neck), with a ``"positive"`` group scale.
- `dirichlet_multinomial`: a ``"simplex"`` parameter with an asymmetric Dirichlet prior.
- `normal_scale`: an unknown mean and a ``"positive"`` scale.
- `conjugate_normal`: an unknown mean with a closed-form posterior (fast, for CI), and
  `conjugate_normal_wrong_noise`, the same simulator fitted by a model that misstates the noise sd
  (0.7 for 1): its posterior is 28% too narrow, and SBC must reject it.

Example:
    >>> from pytensor_blackjax.examples import sbc
    >>> [case.name for case in sbc.cases()]
    ['eight_schools', 'dirichlet_multinomial', 'normal_scale']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import pytensor.tensor as pt

from pytensor_blackjax.model import Model, ModelBuilder
from pytensor_blackjax.samplers import NUTS, Sampler

__all__ = [
    "SBCCase",
    "cases",
    "conjugate_normal",
    "conjugate_normal_wrong_noise",
    "dirichlet_multinomial",
    "eight_schools",
    "normal_scale",
]

Simulator = Callable[[jax.Array], tuple[Mapping[str, jax.Array], Mapping[str, jax.Array]]]

SCHOOL_SE = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
DIRICHLET_ALPHA = np.array([1.0, 2.0, 3.0, 4.0])
DIRICHLET_COUNT = 20


@dataclass(frozen=True)
class SBCCase:
    """One SBC model: how to build it, how to simulate from its prior, and how to fit it.

    Attributes:
        name: short name, used in reports.
        build: returns the `Model` (its data are placeholders of the simulated shapes).
        simulate: ``key -> (truth, data)``, JAX, as `simulation_based_calibration` takes it.
        sampler: the sampler settings of every fit.
        description: one line for reports.
    """

    name: str
    build: Callable[[], Model]
    simulate: Simulator
    sampler: Sampler = field(default_factory=NUTS)
    description: str = ""


def _half_normal(key: jax.Array, scale: float, shape: tuple[int, ...] = ()) -> jax.Array:
    return scale * jnp.abs(jax.random.normal(key, shape))


# -- a hierarchical funnel ----------------------------------------------------------------------------
def _eight_schools_model() -> Model:
    """mu ~ N(0, 5), tau ~ half-N(0, 5), z_j ~ N(0, 1), theta = mu + tau z, y_j ~ N(theta_j, se_j)."""
    m = ModelBuilder(name="sbc_eight_schools")
    y = m.data("y", np.zeros(len(SCHOOL_SE)), observed=True)
    se = m.data("se", SCHOOL_SE)
    mu = m.param("mu")
    tau = m.param("tau", transform="positive")
    z = m.param("z", shape=(len(SCHOOL_SE),))
    theta = m.deterministic("theta", mu + tau * z)
    m.add_logp(-0.5 * (mu / 5.0) ** 2 - 0.5 * (tau / 5.0) ** 2 - 0.5 * pt.sum(z**2))
    m.add_logp(pt.sum(-0.5 * ((y - theta) / se) ** 2))
    return m.build()


def _simulate_eight_schools(key: jax.Array):
    k_mu, k_tau, k_z, k_y = jax.random.split(key, 4)
    mu = 5.0 * jax.random.normal(k_mu)
    tau = _half_normal(k_tau, 5.0)
    theta = mu + tau * jax.random.normal(k_z, (len(SCHOOL_SE),))
    y = theta + jnp.asarray(SCHOOL_SE) * jax.random.normal(k_y, (len(SCHOOL_SE),))
    return {"mu": mu, "tau": tau, "theta": theta}, {"y": y}


def eight_schools() -> SBCCase:
    """The funnel: eight groups, non-centered, ``target_accept=0.95`` (as for posteriordb's eight
    schools, where 0.8 leaves a few divergences near small ``tau``)."""
    return SBCCase(
        "eight_schools",
        _eight_schools_model,
        _simulate_eight_schools,
        NUTS(target_accept=0.95),
        "hierarchical funnel, 8 groups, non-centered; ranks of mu, tau, theta[8]",
    )


# -- a simplex -----------------------------------------------------------------------------------------
def _dirichlet_multinomial_model() -> Model:
    """p ~ Dirichlet(1, 2, 3, 4) on the simplex, counts ~ Multinomial(20, p)."""
    m = ModelBuilder(name="sbc_dirichlet_multinomial")
    counts = m.data("counts", np.zeros(len(DIRICHLET_ALPHA)), observed=True)
    p = m.param("p", shape=(len(DIRICHLET_ALPHA),), transform="simplex")
    m.add_logp(pt.sum((DIRICHLET_ALPHA - 1.0) * pt.log(p)))
    m.add_logp(pt.sum(counts * pt.log(p)))
    return m.build()


def _simulate_dirichlet_multinomial(key: jax.Array):
    k_p, k_y = jax.random.split(key)
    p = jax.random.dirichlet(k_p, jnp.asarray(DIRICHLET_ALPHA))
    draws = jax.random.categorical(k_y, jnp.log(p), shape=(DIRICHLET_COUNT,))
    counts = jnp.zeros(len(DIRICHLET_ALPHA)).at[draws].add(1.0)
    return {"p": p}, {"counts": counts}


def dirichlet_multinomial() -> SBCCase:
    """A simplex with an asymmetric prior, 20 multinomial observations."""
    return SBCCase(
        "dirichlet_multinomial",
        _dirichlet_multinomial_model,
        _simulate_dirichlet_multinomial,
        NUTS(),
        "p ~ Dirichlet(1, 2, 3, 4) (simplex transform), 20 multinomial counts; ranks of p[4]",
    )


# -- a positive scale ----------------------------------------------------------------------------------
def _normal_scale_model(size: int = 10) -> Model:
    """mu ~ N(0, 1), sigma ~ half-N(0, 1), y_i ~ N(mu, sigma)."""
    m = ModelBuilder(name="sbc_normal_scale")
    y = m.data("y", np.zeros(size), observed=True)
    mu = m.param("mu")
    sigma = m.param("sigma", transform="positive")
    m.add_logp(-0.5 * mu**2 - 0.5 * sigma**2)
    m.add_logp(pt.sum(-0.5 * ((y - mu) / sigma) ** 2 - pt.log(sigma)))
    return m.build()


def _simulate_normal_scale(key: jax.Array, size: int = 10):
    k_mu, k_sigma, k_y = jax.random.split(key, 3)
    mu = jax.random.normal(k_mu)
    sigma = _half_normal(k_sigma, 1.0)
    return {"mu": mu, "sigma": sigma}, {"y": mu + sigma * jax.random.normal(k_y, (size,))}


def normal_scale() -> SBCCase:
    """An unknown mean and a positive scale from 10 observations."""
    return SBCCase(
        "normal_scale",
        _normal_scale_model,
        _simulate_normal_scale,
        NUTS(),
        "mu ~ N(0, 1), sigma ~ half-N(0, 1) (positive transform), 10 observations; ranks of mu, sigma",
    )


# -- conjugate: fast, with a known-wrong twin ----------------------------------------------------------
def _conjugate_model(noise_sd: float = 1.0, size: int = 10) -> Model:
    m = ModelBuilder(name="sbc_conjugate_normal")
    y = m.data("y", np.zeros(size), observed=True)
    mu = m.param("mu")
    m.add_logp(-0.5 * mu**2 - 0.5 * pt.sum(((y - mu) / noise_sd) ** 2))
    return m.build()


def _simulate_conjugate(key: jax.Array, size: int = 10):
    k_mu, k_y = jax.random.split(key)
    mu = jax.random.normal(k_mu)
    return {"mu": mu}, {"y": mu + jax.random.normal(k_y, (size,))}


def conjugate_normal() -> SBCCase:
    """mu ~ N(0, 1), y_i ~ N(mu, 1), 10 observations: the posterior is N(sum(y) / 11, 1 / 11)."""
    return SBCCase(
        "conjugate_normal",
        _conjugate_model,
        _simulate_conjugate,
        NUTS(),
        "mu ~ N(0, 1), 10 observations of N(mu, 1)",
    )


def conjugate_normal_wrong_noise() -> SBCCase:
    """The conjugate simulator fitted by a model that takes the noise sd for 0.7: posterior sd
    ``sqrt(11 / (1 + 10 / 0.49))`` = 0.72 of the right one, its mean slightly less shrunk."""
    return SBCCase(
        "conjugate_normal_wrong_noise",
        lambda: _conjugate_model(noise_sd=0.7),
        _simulate_conjugate,
        NUTS(),
        "as conjugate_normal, but fitted with noise sd 0.7: posterior 28% too narrow",
    )


def cases() -> list[SBCCase]:
    """The three models of the full study (docs/validation.md, section SBC)."""
    return [eight_schools(), dirichlet_multinomial(), normal_scale()]
