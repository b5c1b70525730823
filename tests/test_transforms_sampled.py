"""Every transform sampled against a constrained-scale distribution known in closed form (fast: 4 chains x
1000 draws, one model holding them all), and the power of that check: without the log-Jacobians it fails.

Mean and variance of each constrained parameter are checked by `moment_z` (|estimate - truth| / MCSE,
after R-hat and ESS). A missing Jacobian moves each of these targets by 8 MCSE or more.
"""

import numpy as np
import pytensor.tensor as pt
import pytest
from conftest import moment_z

import pytensor_blackjax as pbj
from pytensor_blackjax.model import transforms

Z_MAX = 5.0
RUN = dict(draws=1000, tune=500, chains=4, seed=31, progressbar=False)
DIRICHLET = np.array([2.0, 3.0, 4.0, 5.0])
LKJ_ETA, LKJ_N = 2.0, 3
LKJ_B = LKJ_ETA - 1 + LKJ_N / 2  # each correlation is 2 * Beta(b, b) - 1


def _gamma(shape, rate):
    return shape / rate, shape / rate**2


def _beta(a, b, lower=0.0, upper=1.0):
    width = upper - lower
    return lower + width * a / (a + b), width**2 * a * b / ((a + b) ** 2 * (a + b + 1))


# name -> (mean, variance) on the constrained scale
TRUTH = {
    "pos": _gamma(3.0, 2.0),  # Gamma(3, rate 2)
    "unit": _beta(3.0, 4.0),  # Beta(3, 4)
    "interval": _beta(2.0, 3.0, -3.0, 5.0),  # -3 + 8 Beta(2, 3)
    "low": (2.0 + _gamma(2.0, 1.5)[0], _gamma(2.0, 1.5)[1]),  # 2 + Gamma(2, 1.5)
    "high": (-1.0 - _gamma(2.0, 0.5)[0], _gamma(2.0, 0.5)[1]),  # -1 - Gamma(2, 0.5)
    "w": (DIRICHLET / DIRICHLET.sum(), _beta(DIRICHLET, DIRICHLET.sum() - DIRICHLET)[1]),  # Dirichlet
    # y0 ~ N(0, 1) and gaps ~ Gamma(2, 1): y_k is a sum of k gaps plus y0
    "cuts": (np.array([0.0, 2.0, 4.0]), np.array([1.0, 3.0, 5.0])),
    "corr": (np.zeros(3), np.full(3, 1 / (2 * LKJ_B + 1))),  # LKJ(2) on 3 x 3: its off-diagonal entries
}


def transform_model():
    """One model, one independent parameter per transform, each with the target in `TRUTH`."""
    m = pbj.ModelBuilder()
    pos = m.param("pos", transform="positive")
    unit = m.param("unit", transform="unit")
    interval = m.param("interval", transform=transforms.Interval(-3.0, 5.0))
    low = m.param("low", transform=transforms.LowerBound(2.0))
    high = m.param("high", transform=transforms.UpperBound(-1.0))
    w = m.param("w", shape=(4,), transform="simplex")
    cuts = m.param("cuts", shape=(3,), transform="ordered")
    chol = m.param("chol", shape=(LKJ_N, LKJ_N), transform="cholesky_corr")
    m.add_logp(2.0 * pt.log(pos) - 2.0 * pos)
    m.add_logp(2.0 * pt.log(unit) + 3.0 * pt.log1p(-unit))
    m.add_logp(pt.log(interval + 3.0) + 2.0 * pt.log(5.0 - interval))
    m.add_logp(pt.log(low - 2.0) - 1.5 * (low - 2.0))
    m.add_logp(pt.log(-1.0 - high) - 0.5 * (-1.0 - high))
    m.add_logp(pt.sum((DIRICHLET - 1) * pt.log(w)))
    gaps = pt.diff(cuts)
    m.add_logp(-0.5 * cuts[0] ** 2 + pt.sum(pt.log(gaps) - gaps))
    # LKJ(eta) on the Cholesky factor (the density of L, as Stan's lkj_corr_cholesky)
    powers = np.array([LKJ_N - k - 1 + 2 * (LKJ_ETA - 1) for k in range(1, LKJ_N)])
    m.add_logp(pt.sum(powers * pt.log(pt.diag(chol)[1:])))
    return m.build()


def _constrained(tree, name):
    if name == "corr":
        chol = tree["posterior"]["chol"].values
        corr = np.einsum("cdij,cdkj->cdik", chol, chol)
        rows, cols = np.tril_indices(LKJ_N, k=-1)
        return corr[..., rows, cols]
    return tree["posterior"][name].values


def transform_errors(tree) -> dict[str, str]:
    """Each parameter whose mean or variance misses its truth (or whose draws did not converge), with why."""
    errors = {}
    for name, (mean, var) in TRUTH.items():
        x = _constrained(tree, name)
        try:
            z_mean = moment_z(x, mean, what=f"{name} mean")
            z_var = moment_z((x - np.asarray(mean)) ** 2, var, what=f"{name} variance")
        except AssertionError as error:
            errors[name] = str(error)
            continue
        if max(z_mean, z_var) >= Z_MAX:
            errors[name] = f"{name}: mean off by {z_mean:.1f} MCSE, variance by {z_var:.1f} MCSE"
    return errors


def test_every_transform_gives_its_known_distribution():
    tree = pbj.sample(transform_model(), **RUN)
    assert transform_errors(tree) == {}


# A run of the planted bug may also warn (R-hat of a wrong posterior): that too would fail the real test;
# here the check itself must catch every transform, so the warning is set aside.
@pytest.mark.filterwarnings("ignore::pytensor_blackjax.SamplingWarning")
def test_power_a_missing_log_jacobian_fails_the_transform_check(monkeypatch):
    # the planted bug: every transform forgets its log-Jacobian (the graph changes, so no stored program
    # of the right model can stand in)
    for kind in (
        transforms.Positive,
        transforms.Unit,
        transforms.Interval,
        transforms.LowerBound,
        transforms.UpperBound,
        transforms.Simplex,
        transforms.Ordered,
        transforms.CholeskyCorr,
    ):
        monkeypatch.setattr(kind, "log_jacobian", lambda self, x: pt.constant(0.0))
    tree = pbj.sample(transform_model(), **RUN)
    assert sorted(transform_errors(tree)) == sorted(TRUTH)
