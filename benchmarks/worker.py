"""One benchmark run in a fresh process: ``worker.py SYSTEM MODEL SEED``; prints one JSON line.

Times: ``wall`` from process start to draws in hand; ``compile`` the model build/compile step;
``warmup`` and ``sampling`` as each system reports them (JIT compilation of the sampler programs falls
in the first phase that runs them). Gradient evaluations count the sampling phase only.

``ours`` runs as a user's second run of a model does: the program store already holds the compiled
sampler programs. ``ours_cold`` points the store at an empty directory, as on the very first run.
``PBJ_BENCH_DRAWS=1`` turns a run into a time-to-first-draw measurement.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402

import models  # noqa: E402
import numpy as np  # noqa: E402

DRAWS, TUNE, CHAINS = int(os.environ.get("PBJ_BENCH_DRAWS", "1000")), 1000, 4


def run_ours(name, seed, sampler="nuts"):
    import pytensor_blackjax as pbj

    t = time.perf_counter()
    compiled = pbj.compile(models.ours(name))
    compile_time = time.perf_counter() - t
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = pbj.sample(
            compiled, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=seed, sampler=sampler, progressbar=False
        )
    post = {k: np.asarray(v.values) for k, v in tree["posterior"].data_vars.items()}
    return (
        post,
        float(tree["sample_stats"]["n_steps"].sum()),
        {
            "compile": compile_time,
            "warmup": tree.attrs["warmup_time"],
            "sampling": tree.attrs["sampling_time"],
        },
    )


def run_numpyro(name, seed):
    import numpyro

    numpyro.set_host_device_count(CHAINS)
    import jax
    from numpyro.infer import MCMC, NUTS

    jax.config.update("jax_enable_x64", True)
    mcmc = MCMC(
        NUTS(models.numpyro_model(name)),
        num_warmup=TUNE,
        num_samples=DRAWS,
        num_chains=CHAINS,
        progress_bar=False,
    )
    t = time.perf_counter()
    mcmc.warmup(jax.random.key(seed))
    t1 = time.perf_counter()
    mcmc.run(jax.random.key(seed + 1000), extra_fields=("num_steps",))
    t2 = time.perf_counter()
    post = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    steps = float(np.sum(mcmc.get_extra_fields()["num_steps"]))
    return post, steps, {"compile": np.nan, "warmup": t1 - t, "sampling": t2 - t1}


def run_nutpie(name, seed):
    import nutpie

    t = time.perf_counter()
    compiled = nutpie.compile_pymc_model(models.pymc_model(name))
    t1 = time.perf_counter()
    tree = nutpie.sample(compiled, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=seed, progress_bar=False)
    t2 = time.perf_counter()
    post = {k: np.asarray(v.values) for k, v in tree["posterior"].data_vars.items()}
    return (
        post,
        float(tree["sample_stats"]["n_steps"].sum()),
        {"compile": t1 - t, "warmup": np.nan, "sampling": t2 - t1},
    )


def run_pymc(name, seed):
    import pymc as pm

    with models.pymc_model(name), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        tree = pm.sample(
            draws=DRAWS,
            tune=TUNE,
            chains=CHAINS,
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
        )
        t1 = time.perf_counter()
    post = {k: np.asarray(v.values) for k, v in tree["posterior"].data_vars.items()}
    return (
        post,
        float(tree["sample_stats"]["n_steps"].sum()),
        {"compile": np.nan, "warmup": np.nan, "sampling": t1 - t},
    )


def run_ours_cold(name, seed):
    with tempfile.TemporaryDirectory() as empty:
        os.environ["PBJ_COMPILATION_CACHE"] = empty
        return run_ours(name, seed)


SYSTEMS = {
    "ours": run_ours,
    "ours_cold": run_ours_cold,
    "ours_low_rank": lambda name, seed: run_ours(name, seed, sampler=_low_rank()),
    "numpyro": run_numpyro,
    "nutpie": run_nutpie,
    "pymc": run_pymc,
}


def _low_rank():
    import pytensor_blackjax as pbj

    return pbj.samplers.NUTS(adaptation="low_rank")


def min_bulk_ess(post):
    import arviz_base
    import arviz_stats

    # constrained and unconstrained versions of one parameter have the same ranks: bulk ESS agrees
    post = {k: v for k, v in post.items() if k not in ("la", "lb", "ab")}
    ess = arviz_stats.ess(arviz_base.from_dict({"posterior": post})["posterior"].to_dataset(), method="bulk")
    return min(float(np.min(ess[k].values)) for k in ess.data_vars)


if __name__ == "__main__":
    system, name, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    post, grads, times = SYSTEMS[system](name, seed)
    wall = time.perf_counter() - T0
    ess = min_bulk_ess(post) if DRAWS >= 100 else float("nan")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "system": system,
                "model": name,
                "seed": seed,
                "wall": wall,
                "ess_min": ess,
                "ess_per_s": ess / wall,
                "grads_per_ess": grads / max(ess, 1e-9),
                "peak_mb": peak_mb,
                **times,
            }
        )
    )
