"""The benchmark posteriors, each written once per system: this library (ModelBuilder), NumPyro, PyMC.

Two kinds:

- ``TUNED``: the five posteriors our defaults were measured on while they were chosen, each written by
  hand in every system with the same unconstrained parameterisation (non-centered where it says so).
- ``UNTUNED``: posteriordb posteriors no default was tuned on. Every system gets the very same
  log-density: ours is the package's posteriordb model; NumPyro's NUTS receives our compiled JAX
  log-density as its ``potential_fn``; nutpie and PyMC receive its PyTensor graph over one flat
  unconstrained vector (``pm.Flat`` + ``pm.Potential``). Draws of every system are mapped to the
  constrained scale by the same function before ESS is computed.

Data are generated with fixed seeds or read from the repository's posteriordb copy; nothing is
downloaded. ``tests/test_benchmark_models.py`` checks that every model's log-density agrees across
systems up to a constant.
"""

from __future__ import annotations

import json
import os

import numpy as np

TUNED = ("rats", "eight_schools", "logistic", "diamonds", "hierarchical")
POSTERIORDB_DIR = os.environ.get(
    "PBJ_POSTERIORDB", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "posteriordb")
)
# short name -> posteriordb folder; none of these was used while choosing a default
UNTUNED_FOLDERS = {
    "kidiq": "kidiq-kidscore_interaction",
    "arK": "arK-arK",
    "garch": "garch-garch11",
    "gauss_mix": "low_dim_gauss_mix-low_dim_gauss_mix",
    "nes": "nes2000-nes",
}
UNTUNED = tuple(UNTUNED_FOLDERS)
MODELS = TUNED + UNTUNED
DIAMONDS = os.environ.get("PBJ_DIAMONDS", os.path.join(POSTERIORDB_DIR, "diamonds-diamonds", "data.json"))

RATS_N = np.array(
    [
        20,
        20,
        20,
        20,
        20,
        20,
        20,
        19,
        19,
        19,
        19,
        18,
        18,
        17,
        20,
        20,
        20,
        20,
        19,
        19,
        18,
        18,
        25,
        24,
        23,
        20,
        20,
        20,
        20,
        20,
        20,
        10,
        49,
        19,
        46,
        27,
        17,
        49,
        47,
        20,
        20,
        13,
        48,
        50,
        20,
        20,
        20,
        20,
        20,
        20,
        20,
        48,
        19,
        19,
        19,
        22,
        46,
        49,
        20,
        20,
        23,
        19,
        22,
        20,
        20,
        20,
        52,
        46,
        47,
        24,
        14,
    ]
)
RATS_Y = np.array(
    [
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        3,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        1,
        5,
        2,
        5,
        3,
        2,
        7,
        7,
        3,
        3,
        2,
        9,
        10,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        10,
        4,
        4,
        4,
        5,
        11,
        12,
        5,
        5,
        6,
        5,
        6,
        6,
        6,
        6,
        16,
        15,
        15,
        9,
        4,
    ]
)
SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SCHOOLS_SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def logistic_data(n=5000, d=20):
    rng = np.random.default_rng(42)
    x = rng.normal(size=(n, d)) @ np.linalg.cholesky(0.5 * np.eye(d) + 0.5).T
    beta = rng.normal(size=d) * 0.5
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(x @ beta + 0.3)))).astype(np.int64)
    return x, y


def diamonds_data():
    with open(DIAMONDS) as f:
        raw = json.load(f)
    x = np.asarray(raw["X"], dtype=float)[:, 1:]
    return x - x.mean(0), np.asarray(raw["Y"], dtype=float)


def hierarchical_data(groups=500, per_group=10):
    rng = np.random.default_rng(7)
    effects = rng.normal(0.0, 0.7, size=groups)
    group = np.repeat(np.arange(groups), per_group)
    return group, 1.0 + effects[group] + rng.normal(0.0, 1.0, size=groups * per_group)


def _student_t(pt, x, nu, loc, scale):
    return -(nu + 1) / 2 * pt.log1p(((x - loc) / scale) ** 2 / nu)


def untuned_model(name):
    """The package's own model of an untuned posteriordb posterior (see the module docstring)."""
    from pytensor_blackjax.examples import posteriordb

    return posteriordb.load(os.path.join(POSTERIORDB_DIR, UNTUNED_FOLDERS[name]))


def ours(name):
    import pytensor.tensor as pt
    from pytensor.tensor.special import gammaln

    import pytensor_blackjax as pbj

    if name in UNTUNED:
        return untuned_model(name)
    m = pbj.ModelBuilder(name=name)
    if name == "rats":
        a = m.param("alpha", transform="positive")
        b = m.param("beta", transform="positive")
        th = m.param("theta", shape=(71,), transform="unit")
        y, n = m.data("y", RATS_Y), m.data("n", RATS_N)
        m.add_logp(-2.5 * pt.log(a + b))
        m.add_logp(
            pt.sum(gammaln(a + b) - gammaln(a) - gammaln(b) + (a - 1) * pt.log(th) + (b - 1) * pt.log1p(-th))
        )
        m.add_logp(pt.sum(y * pt.log(th) + (n - y) * pt.log1p(-th)))
    elif name == "eight_schools":
        mu, tau = m.param("mu"), m.param("tau", transform="positive")
        z = m.param("theta_tilde", shape=(8,))
        y, sigma = m.data("y", SCHOOLS_Y), m.data("sigma", SCHOOLS_SIGMA)
        m.add_logp(-0.5 * (mu / 5) ** 2 - pt.log1p((tau / 5) ** 2) - 0.5 * pt.sum(z**2))
        m.add_logp(pt.sum(-0.5 * ((y - mu - tau * z) / sigma) ** 2))
    elif name == "logistic":
        xv, yv = logistic_data()
        x, y = m.data("X", xv), m.data("y", yv)
        b0, beta = m.param("b0"), m.param("beta", shape=(xv.shape[1],))
        eta = b0 + pt.dot(x, beta)
        m.add_logp(-0.5 * (b0 / 5) ** 2 - 0.5 * pt.sum(beta**2))
        m.add_logp(pt.sum(y * eta - pt.softplus(eta)))
    elif name == "diamonds":
        xv, yv = diamonds_data()
        x, y = m.data("Xc", xv), m.data("Y", yv)
        b, icept = m.param("b", shape=(xv.shape[1],)), m.param("Intercept")
        sigma = m.param("sigma", transform="positive")
        m.add_logp(-0.5 * pt.sum(b**2) + _student_t(pt, icept, 3, 8, 10) + _student_t(pt, sigma, 3, 0, 10))
        m.add_logp(pt.sum(-0.5 * ((y - icept - pt.dot(x, b)) / sigma) ** 2) - yv.shape[0] * pt.log(sigma))
    elif name == "hierarchical":
        group, yv = hierarchical_data()
        g, y = m.data("group", group), m.data("y", yv)
        mu, tau = m.param("mu"), m.param("tau", transform="positive")
        sigma, z = m.param("sigma", transform="positive"), m.param("z", shape=(int(group.max()) + 1,))
        m.add_logp(-0.5 * (mu / 5) ** 2 - 0.5 * tau**2 - 0.5 * sigma**2 - 0.5 * pt.sum(z**2))
        m.add_logp(pt.sum(-0.5 * ((y - mu - tau * z[g]) / sigma) ** 2) - yv.shape[0] * pt.log(sigma))
    else:
        raise ValueError(f"model {name!r}: use one of {MODELS}")
    return m.build()


def numpyro_model(name):
    """A NumPyro model function, or None for an untuned posterior (NumPyro then gets a potential_fn)."""
    if name in UNTUNED:
        return None
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    flat = dist.ImproperUniform(dist.constraints.real, (), ())
    if name == "rats":

        def model():
            la, lb = numpyro.sample("la", flat), numpyro.sample("lb", flat)
            a, b = jnp.exp(la), jnp.exp(lb)
            numpyro.deterministic("alpha", a)
            numpyro.deterministic("beta", b)
            numpyro.factor("prior", -2.5 * jnp.log(a + b) + la + lb)
            th = numpyro.sample("theta", dist.Beta(a, b).expand([71]))
            numpyro.sample("y", dist.Binomial(RATS_N, th), obs=RATS_Y)
    elif name == "eight_schools":

        def model():
            mu = numpyro.sample("mu", dist.Normal(0, 5))
            tau = numpyro.sample("tau", dist.HalfCauchy(5))
            z = numpyro.sample("theta_tilde", dist.Normal(0, 1).expand([8]))
            numpyro.sample("y", dist.Normal(mu + tau * z, SCHOOLS_SIGMA), obs=SCHOOLS_Y)
    elif name == "logistic":
        xv, yv = logistic_data()

        def model():
            b0 = numpyro.sample("b0", dist.Normal(0, 5))
            beta = numpyro.sample("beta", dist.Normal(0, 1).expand([xv.shape[1]]))
            numpyro.sample("y", dist.Bernoulli(logits=b0 + xv @ beta), obs=yv)
    elif name == "diamonds":
        xv, yv = diamonds_data()

        def model():
            b = numpyro.sample("b", dist.Normal(0, 1).expand([xv.shape[1]]))
            icept = numpyro.sample("Intercept", dist.StudentT(3, 8, 10))
            sigma = numpyro.sample("sigma", dist.TruncatedDistribution(dist.StudentT(3, 0, 10), low=0.0))
            numpyro.sample("Y", dist.Normal(icept + xv @ b, sigma), obs=yv)
    elif name == "hierarchical":
        group, yv = hierarchical_data()

        def model():
            mu = numpyro.sample("mu", dist.Normal(0, 5))
            tau = numpyro.sample("tau", dist.HalfNormal(1))
            sigma = numpyro.sample("sigma", dist.HalfNormal(1))
            z = numpyro.sample("z", dist.Normal(0, 1).expand([int(group.max()) + 1]))
            numpyro.sample("y", dist.Normal(mu + tau * z[group], sigma), obs=yv)
    else:
        raise ValueError(f"model {name!r}: use one of {MODELS}")
    return model


def flat_pymc_model(model):
    """A PyMC model over one flat unconstrained vector ``flat`` whose log-density is ``model``'s own
    PyTensor graph (Jacobians included), data as constants: nutpie and PyMC sample exactly our density."""
    import pymc as pm
    import pytensor.tensor as pt
    from pytensor.graph.replace import graph_replace

    sizes = [int(np.prod(v.type.shape, dtype=int)) for v in model.values]
    with pm.Model() as pm_model:
        flat = pm.Flat("flat", shape=sum(sizes))
        replace, start = {}, 0
        for value, size in zip(model.values, sizes, strict=True):
            replace[value] = flat[start : start + size].reshape(value.type.shape)
            start += size
        for data in model.data.values():
            replace[data.variable] = pt.constant(np.asarray(data.value, dtype=data.variable.dtype))
        pm.Potential("logp", graph_replace(model.logp, replace, strict=False))
    return pm_model


def pymc_sample(pm_model, seed, *, draws, tune, chains):
    """``pm.sample`` at its defaults, as PyMC's documentation runs it (the benchmark's PyMC system)."""
    import pymc as pm

    with pm_model:
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
        )


def pymc_model(name):
    import pymc as pm
    import pytensor.tensor as pt

    if name in UNTUNED:
        return flat_pymc_model(untuned_model(name))
    with pm.Model() as model:
        if name == "rats":
            ab = pm.HalfFlat("ab", shape=2)
            pm.Potential("p", -2.5 * pt.log(ab.sum()))
            pm.Deterministic("alpha", ab[0])
            pm.Deterministic("beta", ab[1])
            th = pm.Beta("theta", ab[0], ab[1], shape=71)
            pm.Binomial("y", n=RATS_N, p=th, observed=RATS_Y)
        elif name == "eight_schools":
            mu, tau = pm.Normal("mu", 0, 5), pm.HalfCauchy("tau", 5)
            z = pm.Normal("theta_tilde", 0, 1, shape=8)
            pm.Normal("y", mu + tau * z, SCHOOLS_SIGMA, observed=SCHOOLS_Y)
        elif name == "logistic":
            xv, yv = logistic_data()
            b0, beta = pm.Normal("b0", 0, 5), pm.Normal("beta", 0, 1, shape=xv.shape[1])
            pm.Bernoulli("y", logit_p=b0 + pt.dot(xv, beta), observed=yv)
        elif name == "diamonds":
            xv, yv = diamonds_data()
            b = pm.Normal("b", 0, 1, shape=xv.shape[1])
            icept = pm.StudentT("Intercept", nu=3, mu=8, sigma=10)
            sigma = pm.HalfStudentT("sigma", nu=3, sigma=10)
            pm.Normal("Y", icept + pt.dot(xv, b), sigma, observed=yv)
        elif name == "hierarchical":
            group, yv = hierarchical_data()
            mu, tau, sigma = pm.Normal("mu", 0, 5), pm.HalfNormal("tau", 1), pm.HalfNormal("sigma", 1)
            z = pm.Normal("z", 0, 1, shape=int(group.max()) + 1)
            pm.Normal("y", mu + tau * z[group], sigma, observed=yv)
        else:
            raise ValueError(f"model {name!r}: use one of {MODELS}")
    return model


# -- the same point in every system's unconstrained parameters (for the agreement test) -------------
_NUMPYRO_NAMES = {("rats", "alpha_log__"): "la", ("rats", "beta_log__"): "lb"}


def numpyro_point(name, position):
    """Our unconstrained position (dict by value name) -> NumPyro's unconstrained sample-site values."""
    out = {}
    for key, value in position.items():
        site = _NUMPYRO_NAMES.get((name, key), key.removesuffix("_log__").removesuffix("_logodds__"))
        out[site] = value
    return out


def pymc_point(name, position):
    """Our unconstrained position -> the PyMC model's value variables (tuned models only)."""
    position = dict(position)
    if name == "rats":
        position["ab_log__"] = np.stack([position.pop("alpha_log__"), position.pop("beta_log__")])
    return position
