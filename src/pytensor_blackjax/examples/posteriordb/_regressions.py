"""Linear regressions: ARM (kidiq, earnings, mesquite, nes2000), kilpisjarvi, sblrc and diamonds.

The design matrices are built from the data set here, with NumPy, and declared as data; the
coefficients keep the reference's names (``beta[1]`` is ``beta`` index 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pytensor_blackjax.examples.posteriordb._common import array, half_cauchy, normal, student_t
from pytensor_blackjax.model import Model, ModelBuilder

__all__ = [
    "diamonds",
    "earnings_logearn_interaction",
    "kidiq_kidscore_interaction",
    "kilpisjarvi",
    "mesquite_logmesquite_logvas",
    "nes2000_nes",
    "sblrc_blr",
]


def _regression(
    name: str, design: np.ndarray, outcome: np.ndarray, *, sigma_prior=None, beta_prior=None
) -> Model:
    """``outcome ~ Normal(design @ beta, sigma)``; priors default to flat."""
    m = ModelBuilder(name=name)
    m.coords(coefficient=list(range(design.shape[1])))
    x = m.data("X", design)
    y = m.data("y", outcome, observed=True)
    beta = m.param("beta", shape=(design.shape[1],), dims=("coefficient",))
    sigma = m.param("sigma", transform="positive")
    if beta_prior is not None:
        m.add_logp(beta_prior(beta))
    if sigma_prior is not None:
        m.add_logp(sigma_prior(sigma))
    m.add_logp(normal(y, x @ beta, sigma))
    return m.build()


def kidiq_kidscore_interaction(data: Mapping[str, Any]) -> Model:
    """Kid score on mother's high school, IQ and their interaction; half-Cauchy(0, 2.5) on sigma."""
    hs, iq = array(data, "mom_hs"), array(data, "mom_iq")
    design = np.column_stack([np.ones_like(hs), hs, iq, hs * iq])
    return _regression(
        "kidiq-kidscore_interaction",
        design,
        array(data, "kid_score"),
        sigma_prior=lambda s: half_cauchy(s, 2.5),
    )


def earnings_logearn_interaction(data: Mapping[str, Any]) -> Model:
    """Log earnings on height, sex and their interaction; flat priors."""
    height, male = array(data, "height"), array(data, "male")
    design = np.column_stack([np.ones_like(height), height, male, height * male])
    return _regression("earnings-logearn_interaction", design, np.log(array(data, "earn")))


def mesquite_logmesquite_logvas(data: Mapping[str, Any]) -> Model:
    """Log leaf weight on log canopy volume, area, shape, height, density and group; flat priors."""
    d1, d2 = array(data, "diam1"), array(data, "diam2")
    design = np.column_stack(
        [
            np.ones_like(d1),
            np.log(d1 * d2 * array(data, "canopy_height")),
            np.log(d1 * d2),
            np.log(d1 / d2),
            np.log(array(data, "total_height")),
            np.log(array(data, "density")),
            array(data, "group"),
        ]
    )
    return _regression("mesquite-logmesquite_logvas", design, np.log(array(data, "weight")))


def nes2000_nes(data: Mapping[str, Any]) -> Model:
    """Party identification on ideology, race, age dummies, education, gender, income; flat priors."""
    age = array(data, "age_discrete")
    ideo = array(data, "real_ideo")
    design = np.column_stack(
        [
            np.ones_like(ideo),
            ideo,
            array(data, "race_adj"),
            (age == 2).astype(float),
            (age == 3).astype(float),
            (age == 4).astype(float),
            array(data, "educ1"),
            array(data, "gender"),
            array(data, "income"),
        ]
    )
    return _regression("nes2000-nes", design, array(data, "partyid7"))


def sblrc_blr(data: Mapping[str, Any]) -> Model:
    """No-intercept regression with Normal(0, 10) coefficients and a half-Normal(0, 10) sigma."""
    return _regression(
        "sblrc-blr",
        array(data, "X"),
        array(data, "y"),
        beta_prior=lambda b: normal(b, 0.0, 10.0),
        sigma_prior=lambda s: normal(s, 0.0, 10.0),
    )


def kilpisjarvi(data: Mapping[str, Any]) -> Model:
    """Temperature trend on the (shifted) year; priors on alpha and beta from the data set."""
    m = ModelBuilder(name="kilpisjarvi_mod-kilpisjarvi")
    x = m.data("x", array(data, "x"))
    y = m.data("y", array(data, "y"), observed=True)
    alpha = m.param("alpha")
    beta = m.param("beta")
    sigma = m.param("sigma", transform="positive")
    m.add_logp(normal(alpha, float(data["pmualpha"]), float(data["psalpha"])))
    m.add_logp(normal(beta, float(data["pmubeta"]), float(data["psbeta"])))
    m.add_logp(normal(y, alpha + beta * x, sigma))
    return m.build()


def diamonds(data: Mapping[str, Any]) -> Model:
    """brms-style regression of log price on 24 centered predictors (26 parameters)."""
    raw = array(data, "X")[:, 1:]
    centered = raw - raw.mean(axis=0)
    m = ModelBuilder(name="diamonds-diamonds")
    m.coords(predictor=list(range(centered.shape[1])))
    x = m.data("Xc", centered)
    y = m.data("Y", array(data, "Y"), observed=True)
    b = m.param("b", shape=(centered.shape[1],), dims=("predictor",))
    intercept = m.param("Intercept")
    sigma = m.param("sigma", transform="positive")
    m.add_logp(normal(b, 0.0, 1.0))
    m.add_logp(student_t(intercept, 3.0, 8.0, 10.0))
    m.add_logp(student_t(sigma, 3.0, 0.0, 10.0))
    if not int(data.get("prior_only", 0)):
        m.add_logp(normal(y, intercept + x @ b, sigma))
    return m.build()
