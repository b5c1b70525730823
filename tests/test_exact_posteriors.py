"""Posteriors known in closed form, one per transform; posterior means within a few MCSE of the truth."""

import numpy as np
import pytensor.tensor as pt
import pytest
from conftest import mcse_z
from pytensor.tensor.special import gammaln

import pytensor_blackjax as pbj
from pytensor_blackjax.model import transforms

pytestmark = pytest.mark.slow

RUN = {"draws": 2000, "tune": 1000, "chains": 4, "progressbar": False}
Z_MAX = 4.5


def _check(tree, truths):
    for name, truth in truths.items():
        z = mcse_z(tree, name, truth)
        assert z < Z_MAX, f"{name}: |mean - truth| = {z:.2f} MCSE"


def _log_sigmoid_prime(x):
    """log of the density of sigmoid(x) when x is logistic: uniform on (0, 1) after the map."""
    return -pt.softplus(-x) - pt.softplus(x)


def test_conjugate_normal_real():
    y = np.array([1.3, 0.2, 2.5, 1.9, 0.8, 1.1])
    prior_mean, prior_sd, noise_sd = 0.0, 2.0, 1.0
    m = pbj.ModelBuilder()
    mu = m.param("mu")
    data = m.data("y", y, observed=True)
    m.add_logp(-0.5 * ((mu - prior_mean) / prior_sd) ** 2 - 0.5 * pt.sum(((data - mu) / noise_sd) ** 2))
    post_var = 1 / (1 / prior_sd**2 + len(y) / noise_sd**2)
    post_mean = post_var * (prior_mean / prior_sd**2 + y.sum() / noise_sd**2)
    m.deterministic("sq", (mu - post_mean) ** 2)
    tree = pbj.sample(m.build(), seed=21, **RUN)
    _check(tree, {"mu": post_mean, "sq": post_var})


def test_gamma_poisson_positive():
    counts, shape, rate = np.array([3, 5, 2, 4, 6, 1, 3]), 2.0, 0.5
    m = pbj.ModelBuilder()
    lam = m.param("lam", transform="positive")
    k = m.data("k", counts, observed=True)
    m.add_logp((shape - 1) * pt.log(lam) - rate * lam)
    m.add_logp(pt.sum(k * pt.log(lam) - lam - gammaln(k + 1)))
    a, b = shape + counts.sum(), rate + len(counts)
    m.deterministic("sq", (lam - a / b) ** 2)
    tree = pbj.sample(m.build(), seed=22, **RUN)
    _check(tree, {"lam": a / b, "sq": a / b**2})


def test_beta_binomial_unit():
    successes, trials, a, b = 7, 20, 2.0, 3.0
    m = pbj.ModelBuilder()
    p = m.param("p", transform="unit")
    m.add_logp((a + successes - 1) * pt.log(p) + (b + trials - successes - 1) * pt.log1p(-p))
    a_post, b_post = a + successes, b + trials - successes
    mean = a_post / (a_post + b_post)
    m.deterministic("sq", (p - mean) ** 2)
    tree = pbj.sample(m.build(), seed=23, **RUN)
    _check(tree, {"p": mean, "sq": a_post * b_post / ((a_post + b_post) ** 2 * (a_post + b_post + 1))})


def test_uniform_on_an_interval():
    lower, upper = -3.0, 5.0
    m = pbj.ModelBuilder()
    u = m.param("u", shape=(3,), transform=transforms.Interval(lower, upper))
    m.add_logp(pt.zeros_like(u))  # flat on (lower, upper): only the Jacobian shapes the unconstrained density
    m.deterministic("sq", (u - (lower + upper) / 2) ** 2)
    tree = pbj.sample(m.build(), seed=24, **RUN)
    _check(tree, {"u": np.full(3, (lower + upper) / 2), "sq": np.full(3, (upper - lower) ** 2 / 12)})


def test_shifted_exponentials_lower_and_upper_bound():
    m = pbj.ModelBuilder()
    low = m.param("low", transform=transforms.LowerBound(2.0))
    high = m.param("high", transform=transforms.UpperBound(-1.0))
    m.add_logp(-1.5 * (low - 2.0) - 0.5 * (-1.0 - high))
    tree = pbj.sample(m.build(), seed=25, **RUN)
    _check(tree, {"low": 2.0 + 1 / 1.5, "high": -1.0 - 1 / 0.5})


def test_dirichlet_simplex():
    alpha = np.array([1.0, 2.0, 3.0, 4.0])
    m = pbj.ModelBuilder()
    w = m.param("w", shape=(4,), transform="simplex")
    m.add_logp(pt.sum((alpha - 1) * pt.log(w)))
    total = alpha.sum()
    mean = alpha / total
    m.deterministic("sq", (w - mean) ** 2)
    tree = pbj.sample(m.build(), seed=26, **RUN)
    _check(tree, {"w": mean, "sq": mean * (1 - mean) / (total + 1)})


def test_order_statistics_of_uniforms_ordered():
    # cuts ordered on the real line, u = sigmoid(cuts) uniform on the ordered part of the unit cube:
    # u are the order statistics of K uniforms, E[u_k] = k / (K + 1)
    size = 5
    m = pbj.ModelBuilder()
    cuts = m.param("cuts", shape=(size,), transform="ordered")
    m.add_logp(_log_sigmoid_prime(cuts))
    m.deterministic("u", pt.sigmoid(cuts))
    # the gaps' log-scale has a long left tail: a smaller step keeps NUTS free of divergences there
    tree = pbj.sample(m.build(), seed=27, sampler=pbj.samplers.NUTS(target_accept=0.95), **RUN)
    ranks = np.arange(1, size + 1)
    _check(tree, {"u": ranks / (size + 1)})
    u = tree["posterior"]["u"].values
    assert np.all(np.diff(u, axis=-1) > 0)


def test_lkj_cholesky_corr():
    # LKJ(eta) on the Cholesky factor: each correlation is 2 * Beta(b, b) - 1 with b = eta - 1 + n / 2
    n, eta = 3, 2.0
    m = pbj.ModelBuilder()
    chol = m.param("chol", shape=(n, n), transform="cholesky_corr")
    powers = np.array([n - k - 1 + 2 * (eta - 1) for k in range(1, n)])
    m.add_logp(pt.sum(powers * pt.log(pt.diag(chol)[1:])))
    corr = pt.dot(chol, chol.T)
    m.deterministic("r", pt.stack([corr[1, 0], corr[2, 0], corr[2, 1]]))
    m.deterministic("r_sq", pt.stack([corr[1, 0], corr[2, 0], corr[2, 1]]) ** 2)
    tree = pbj.sample(m.build(), seed=28, **RUN)
    b = eta - 1 + n / 2
    _check(tree, {"r": np.zeros(3), "r_sq": np.full(3, 1 / (2 * b + 1))})


def test_correlated_gaussian_50d():
    dims = 50
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.normal(size=(dims, dims)))
    cov = rotation @ np.diag(np.exp(rng.uniform(np.log(0.25), np.log(4.0), dims))) @ rotation.T
    mean = rng.normal(size=dims)
    m = pbj.ModelBuilder()
    x = m.param("x", shape=(dims,))
    d = x - mean
    m.add_logp(-0.5 * pt.dot(d, pt.dot(np.linalg.inv(cov), d)))
    m.deterministic("sq", d**2)
    tree = pbj.sample(m.build(), seed=29, **RUN)
    _check(tree, {"x": mean, "sq": np.diag(cov)})
