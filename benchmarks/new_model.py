"""Time to result for a new model: ``new_model.py SYSTEM SEED``; prints one JSON line.

A user has just written (or changed) a small model and runs it once: every cache is empty (the
caller points them at fresh directories), the clock runs from process start to draws in hand.
The model: a linear regression with 3 parameters and 100 observations (intercept, slope, noise
scale), written the way each system's documentation writes it.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

DRAWS, TUNE, CHAINS = 1000, 1000, 4


def data():
    rng = np.random.default_rng(11)
    x = rng.normal(size=100)
    return x, 1.0 + 2.0 * x + rng.normal(scale=0.5, size=100)


def pymc_model():
    import pymc as pm

    x, y = data()
    with pm.Model() as model:
        a, b = pm.Normal("a", 0, 10), pm.Normal("b", 0, 10)
        sigma = pm.HalfNormal("sigma", 5)
        pm.Normal("y", a + b * x, sigma, observed=y)
    return model


def ours_builder(seed):
    import pytensor.tensor as pt

    import pytensor_blackjax as pbj

    x, y = data()
    m = pbj.ModelBuilder(name="regression")
    a, b = m.param("a"), m.param("b")
    sigma = m.param("sigma", transform="positive")
    xd, yd = m.data("x", x), m.data("y", y)
    m.add_logp(-0.5 * (a / 10) ** 2 - 0.5 * (b / 10) ** 2 - 0.5 * (sigma / 5) ** 2)
    m.add_logp(pt.sum(-0.5 * ((yd - a - b * xd) / sigma) ** 2) - 100 * pt.log(sigma))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pbj.sample(m.build(), draws=DRAWS, tune=TUNE, chains=CHAINS, seed=seed, progressbar=False)


def ours_pymc(seed):
    import pytensor_blackjax as pbj

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pbj.sample(pymc_model(), draws=DRAWS, tune=TUNE, chains=CHAINS, seed=seed, progressbar=False)


def numpyro_(seed, dense=False):
    import numpyro

    numpyro.set_host_device_count(CHAINS)
    import jax
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    jax.config.update("jax_enable_x64", True)
    x, y = data()

    def model():
        a = numpyro.sample("a", dist.Normal(0, 10))
        b = numpyro.sample("b", dist.Normal(0, 10))
        sigma = numpyro.sample("sigma", dist.HalfNormal(5))
        numpyro.sample("y", dist.Normal(a + b * x, sigma), obs=y)

    mcmc = MCMC(
        NUTS(model, dense_mass=dense),
        num_warmup=TUNE,
        num_samples=DRAWS,
        num_chains=CHAINS,
        progress_bar=False,
    )
    mcmc.run(jax.random.key(seed))
    return jax.block_until_ready(mcmc.get_samples(group_by_chain=True))


def nutpie_(seed):
    import nutpie

    return nutpie.sample(
        nutpie.compile_pymc_model(pymc_model()),
        draws=DRAWS,
        tune=TUNE,
        chains=CHAINS,
        seed=seed,
        progress_bar=False,
    )


def pymc_(seed):
    from models import pymc_sample

    return pymc_sample(pymc_model(), seed, draws=DRAWS, tune=TUNE, chains=CHAINS)


SYSTEMS = {
    "ours_builder": ours_builder,
    "ours_pymc": ours_pymc,
    "numpyro": numpyro_,
    "numpyro_dense": lambda seed: numpyro_(seed, dense=True),
    "nutpie": nutpie_,
    "pymc": pymc_,
}

if __name__ == "__main__":
    system, seed = sys.argv[1], int(sys.argv[2])
    SYSTEMS[system](seed)
    print(json.dumps({"system": system, "wall": time.perf_counter() - T0, "pid": os.getpid()}))
