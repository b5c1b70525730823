"""The rat-tumor model (Gelman et al., BDA3 ch. 5): 71 groups, Beta-Binomial hierarchy.

alpha, beta > 0 with p(alpha, beta) proportional to (alpha + beta)^(-5/2);
theta_j ~ Beta(alpha, beta); y_j ~ Binomial(n_j, theta_j).
"""

from __future__ import annotations

import csv
from importlib.resources import files

import numpy as np
import pytensor.tensor as pt
from pytensor.tensor.special import gammaln

from pytensor_blackjax.model import Model, ModelBuilder

__all__ = ["rat_tumor_data", "rat_tumors"]


def rat_tumor_data() -> tuple[np.ndarray, np.ndarray]:
    """(tumours, group sizes) of the 71 historical control groups, shipped with the package."""
    with files("pytensor_blackjax.examples").joinpath("data/rat_tumors.csv").open() as f:
        rows = list(csv.DictReader(f))
    y = np.array([int(r["n_of_positives"]) for r in rows], dtype=np.int64)
    n = np.array([int(r["group_size"]) for r in rows], dtype=np.int64)
    return y, n


def rat_tumors() -> Model:
    """The embedded default model, written with `ModelBuilder`.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> model = pbj.examples.rat_tumors()
        >>> model.value_names
        ('alpha_log__', 'beta_log__', 'theta_logodds__')
    """
    y_values, n_values = rat_tumor_data()
    m = ModelBuilder(name="rat_tumors")
    m.coords(group=list(range(len(y_values))))
    alpha = m.param("alpha", transform="positive")
    beta = m.param("beta", transform="positive")
    theta = m.param("theta", shape=(len(y_values),), transform="unit", dims=("group",))
    y = m.data("y", y_values, dims=("group",), observed=True)
    n = m.data("n", n_values, dims=("group",))
    m.add_logp(-2.5 * pt.log(alpha + beta))
    m.add_logp(
        gammaln(alpha + beta)
        - gammaln(alpha)
        - gammaln(beta)
        + (alpha - 1) * pt.log(theta)
        + (beta - 1) * pt.log1p(-theta)
    )
    pointwise = (
        gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1) + y * pt.log(theta) + (n - y) * pt.log1p(-theta)
    )
    m.add_logp(pointwise)
    m.log_likelihood("y", pointwise)
    m.deterministic("mean_rate", alpha / (alpha + beta))
    return m.build()
