"""Differential tests: our JAX log-density and gradient equal PyMC's own compiled ones, model by model."""

import jax
import numpy as np
import pytest

pm = pytest.importorskip("pymc")

import pytensor_blackjax as pbj  # noqa: E402

# PyMC's reference functions compile to C; without a system BLAS PyTensor warns once about speed only
pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS:UserWarning")

RNG = np.random.default_rng(20240611)
COUNTS = np.array([0, 3, 1, 0, 7, 2, 0, 0, 4, 1])
Y = RNG.normal(1.0, 2.0, size=12)
X = RNG.normal(size=(12, 2))


def normal_halfnormal():
    with pm.Model() as m:
        mu = pm.Normal("mu", 0, 10)
        sigma = pm.HalfNormal("sigma", 2)
        pm.Normal("y", mu, sigma, observed=Y)
    return m


def halfcauchy_studentt():
    with pm.Model() as m:
        nu = pm.Gamma("nu", 2, 0.1)
        scale = pm.HalfCauchy("scale", 2)
        loc = pm.StudentT("loc", nu=3, mu=0, sigma=5)
        pm.StudentT("y", nu=nu, mu=loc, sigma=scale, observed=Y)
    return m


def exponential_gamma():
    with pm.Model() as m:
        shape = pm.Exponential("shape", 0.5)
        rate = pm.Gamma("rate", alpha=2, beta=1)
        pm.Gamma("y", alpha=shape, beta=rate, observed=np.abs(Y) + 0.1)
    return m


def beta_binomial():
    with pm.Model() as m:
        p = pm.Beta("p", 2, 2, shape=3)
        pm.Binomial("y", n=[10, 12, 8], p=p, observed=[3, 9, 4])
    return m


def dirichlet_multinomial():
    with pm.Model(coords={"category": ["a", "b", "c", "d"]}) as m:
        w = pm.Dirichlet("w", a=np.ones(4), dims="category")
        pm.Multinomial("y", n=20, p=w, observed=[5, 8, 2, 5], dims="category")
    return m


def lkj_mvnormal():
    with pm.Model() as m:
        chol, _, _ = pm.LKJCholeskyCov("chol", n=3, eta=2.0, sd_dist=pm.Exponential.dist(1.0, shape=3))
        mu = pm.Normal("mu", 0, 2, shape=3)
        pm.MvNormal("y", mu=mu, chol=chol, observed=RNG.normal(size=(15, 3)))
    return m


def poisson_regression():
    with pm.Model() as m:
        x = pm.Data("x", X[:10, 0])
        a = pm.Normal("a", 0, 1)
        b = pm.Normal("b", 0, 1)
        pm.Poisson("y", mu=pm.math.exp(a + b * x), observed=COUNTS)
    return m


def negative_binomial():
    with pm.Model() as m:
        mu = pm.LogNormal("mu", 0, 1)
        alpha = pm.HalfNormal("alpha", 5)
        pm.NegativeBinomial("y", mu=mu, alpha=alpha, observed=COUNTS)
    return m


def zero_inflated_poisson():
    with pm.Model() as m:
        psi = pm.Beta("psi", 1, 1)
        rate = pm.Gamma("rate", 2, 1)
        pm.ZeroInflatedPoisson("y", psi=psi, mu=rate, observed=COUNTS)
    return m


def gaussian_random_walk():
    with pm.Model() as m:
        sigma = pm.HalfNormal("sigma", 1)
        walk = pm.GaussianRandomWalk("walk", sigma=sigma, init_dist=pm.Normal.dist(0, 5), steps=11)
        pm.Normal("y", walk, 1.0, observed=Y)
    return m


def ordered_logistic():
    with pm.Model() as m:
        cut = pm.Normal(
            "cut", 0, 5, shape=3, transform=pm.distributions.transforms.ordered, initval=[-1.0, 0.0, 1.0]
        )
        eta = pm.Normal("eta", 0, 1)
        pm.OrderedLogistic("y", eta=eta, cutpoints=cut, observed=[0, 1, 3, 2, 2, 1, 0, 3])
    return m


def interval_uniform():
    with pm.Model() as m:
        low = pm.Uniform("low", -6, -2.5)
        width = pm.Uniform("width", 9.5, 12)
        pm.Uniform("y", low, low + width, observed=np.clip(Y, -2.5, 3.5))
    return m


def truncated_normal_interval():
    with pm.Model() as m:
        mu = pm.TruncatedNormal("mu", mu=0, sigma=3, lower=-1, upper=4)
        sigma = pm.Weibull("sigma", alpha=2, beta=3)
        pm.Normal("y", mu, sigma, observed=Y)
    return m


def eight_schools_noncentered():
    with pm.Model(coords={"school": list("ABCDEFGH")}) as m:
        sigma = pm.Data("sigma", [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0], dims="school")
        mu = pm.Normal("mu", 0, 5)
        tau = pm.HalfCauchy("tau", 5)
        z = pm.Normal("z", 0, 1, dims="school")
        theta = pm.Deterministic("theta", mu + tau * z, dims="school")
        pm.Normal("y", theta, sigma, observed=[28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0], dims="school")
    return m


def hierarchical_regression():
    groups = np.arange(12) % 3
    with pm.Model(coords={"group": ["g0", "g1", "g2"], "coef": ["x0", "x1"]}) as m:
        xd = pm.Data("X", X, dims=("obs", "coef"))
        g = pm.Data("g", groups, dims="obs")
        mu_a = pm.Normal("mu_a", 0, 5)
        sd_a = pm.HalfNormal("sd_a", 2)
        a_raw = pm.Normal("a_raw", 0, 1, dims="group")
        a = pm.Deterministic("a", mu_a + sd_a * a_raw, dims="group")
        beta = pm.Normal("beta", 0, 2, dims="coef")
        sigma = pm.Exponential("sigma", 1)
        pm.Normal("y", a[g] + xd @ beta, sigma, observed=Y, dims="obs")
    return m


def logistic_potential():
    with pm.Model() as m:
        b = pm.Laplace("b", 0, 2, shape=2)
        scale = pm.InverseGamma("scale", 3, 2)
        pm.Potential("shrink", -0.5 * (b**2).sum() / scale)
        pm.Bernoulli("y", logit_p=pm.math.dot(X, b), observed=(Y > 1).astype(int))
    return m


def normal_mixture():
    with pm.Model() as m:
        w = pm.Dirichlet("w", a=np.ones(2))
        means = pm.Normal(
            "means", 0, 5, shape=2, transform=pm.distributions.transforms.ordered, initval=[-1.0, 1.0]
        )
        sd = pm.LogNormal("sd", 0, 1)
        pm.NormalMixture("y", w=w, mu=means, sigma=sd, observed=Y)
    return m


def censored_lognormal():
    with pm.Model() as m:
        mu = pm.Normal("mu", 0, 2)
        sigma = pm.HalfStudentT("sigma", nu=4, sigma=1)
        pm.Censored(
            "y", pm.LogNormal.dist(mu, sigma), lower=None, upper=3.0, observed=np.minimum(np.exp(Y / 3), 3.0)
        )
    return m


ZOO = [
    normal_halfnormal,
    halfcauchy_studentt,
    exponential_gamma,
    beta_binomial,
    dirichlet_multinomial,
    lkj_mvnormal,
    poisson_regression,
    negative_binomial,
    zero_inflated_poisson,
    gaussian_random_walk,
    ordered_logistic,
    interval_uniform,
    truncated_normal_interval,
    eight_schools_noncentered,
    hierarchical_regression,
    logistic_potential,
    normal_mixture,
    censored_lognormal,
]


def random_points(pm_model, count, seed):
    """Points around PyMC's initial point in unconstrained space."""
    rng = np.random.default_rng(seed)
    start = pm_model.initial_point()
    return [{k: v + rng.normal(scale=0.8, size=np.shape(v)) for k, v in start.items()} for _ in range(count)]


@pytest.mark.parametrize("make", ZOO, ids=lambda f: f.__name__)
def test_logp_and_gradient_equal_pymc(make):
    pm_model = make()
    model = pbj.Model.from_pymc(pm_model)
    assert model.value_names == tuple(v.name for v in pm_model.value_vars)
    compiled = pbj.compile(model)
    value_and_grad = jax.jit(jax.value_and_grad(compiled.logdensity_fn))
    # PyMC's Python implementations: same graphs and rewrites, no C compilation to wait for
    pymc_logp = pm_model.compile_logp(jacobian=True, mode="FAST_COMPILE")
    pymc_dlogp = pm_model.compile_dlogp(jacobian=True, mode="FAST_COMPILE")
    for point in random_points(pm_model, 3, seed=len(make.__name__)):
        ours, grad = value_and_grad(point)
        theirs = float(pymc_logp(point))
        assert np.isfinite(theirs)
        np.testing.assert_allclose(float(ours), theirs, rtol=1e-8, atol=1e-9)
        ours_grad = np.concatenate([np.ravel(grad[name]) for name in model.value_names])
        np.testing.assert_allclose(ours_grad, pymc_dlogp(point), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize(
    "make", [eight_schools_noncentered, hierarchical_regression, lkj_mvnormal], ids=lambda f: f.__name__
)
def test_constrained_outputs_equal_pymc(make):
    pm_model = make()
    model = pbj.Model.from_pymc(pm_model)
    compiled = pbj.compile(model)
    outputs = pm_model.compile_fn(
        pm_model.unobserved_value_vars, inputs=pm_model.value_vars, on_unused_input="ignore"
    )
    names = [v.name for v in pm_model.unobserved_value_vars]
    point = random_points(pm_model, 1, seed=3)[0]
    theirs = dict(zip(names, outputs(point), strict=True))
    ours = compiled.constrain(point)
    assert list(ours) == [rv.name for rv in pm_model.free_RVs] + [d.name for d in pm_model.deterministics]
    for name, value in ours.items():
        np.testing.assert_allclose(np.asarray(value), theirs[name], rtol=1e-9, atol=1e-12)
