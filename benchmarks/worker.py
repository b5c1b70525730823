"""One benchmark run in a fresh process: ``worker.py SYSTEM MODEL SEED``; prints one JSON line.

``wall`` runs from process start to draws in hand, as a user waits for them. Every system runs as its
documentation shows, in one call (NumPyro: one ``mcmc.run()``; nutpie: ``compile_pymc_model`` then
``sample``; PyMC: ``pm.sample``). The caller sets the cache state through the environment:
``PBJ_COMPILATION_CACHE`` (our program store), ``PBJ_BENCH_JAX_CACHE`` (JAX's persistent compilation
cache, used by NumPyro) and ``PYTENSOR_FLAGS=compiledir=...`` (PyTensor's compiled C/Numba modules, used
by PyMC and nutpie). ``PBJ_BENCH_DRAWS`` and ``PBJ_BENCH_TUNE`` shrink a run (fixed-cost runs).

For an untuned posteriordb posterior the peers sample our very log-density (see ``models.py``);
``shared`` is the time their process spent building it (importing this package, PyTensor -> JAX), which
a NumPyro or PyMC user would not spend: the runner subtracts it from their wall time.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import models  # noqa: E402
import numpy as np  # noqa: E402

DRAWS = int(os.environ.get("PBJ_BENCH_DRAWS", "1000"))
TUNE = int(os.environ.get("PBJ_BENCH_TUNE", "1000"))
CHAINS = 4


def run_ours(name, seed, adaptation="auto"):
    import pytensor_blackjax as pbj

    t = time.perf_counter()
    compiled = pbj.compile(models.ours(name))
    built = time.perf_counter() - t
    with warnings.catch_warnings():  # a user reads them; the benchmark reports ESS instead
        warnings.simplefilter("ignore")
        tree = pbj.sample(
            compiled,
            draws=DRAWS,
            tune=TUNE,
            chains=CHAINS,
            seed=seed,
            sampler=pbj.samplers.NUTS(adaptation=adaptation),
            progressbar=False,
        )
    post = {k: np.asarray(v.values) for k, v in tree["posterior"].data_vars.items()}
    phases = {"build": built, "warmup": tree.attrs["warmup_time"], "sampling": tree.attrs["sampling_time"]}
    return post, float(np.sum(tree["sample_stats"]["n_steps"].values)), phases


def _shared_density(name):
    """Our compiled model of an untuned posterior and the seconds it took (import included)."""
    t = time.perf_counter()
    import pytensor_blackjax as pbj

    compiled = pbj.compile(models.untuned_model(name))
    data = compiled.data_tuple()
    return compiled, data, time.perf_counter() - t


def _constrained(compiled, data, flat):
    """(chains, draws, dim) unconstrained draws -> constrained posterior dict, by our own function."""
    import jax

    fn = jax.jit(jax.vmap(jax.vmap(lambda f: compiled.flat_constrain(f, data))))
    return {k: np.asarray(v) for k, v in fn(flat).items()}


def run_numpyro(name, seed, dense=False):
    import numpyro

    numpyro.set_host_device_count(CHAINS)
    import jax

    cache = os.environ.get("PBJ_BENCH_JAX_CACHE")
    if cache:  # JAX's persistent compilation cache, as NumPyro's users enable it
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_enable_x64", True)
    from numpyro.infer import MCMC, NUTS

    model, shared, init = models.numpyro_model(name), 0.0, None
    if model is None:
        compiled, data, shared = _shared_density(name)
        kernel = NUTS(potential_fn=lambda flat: -compiled.flat_logdensity(flat, data), dense_mass=dense)
        keys = jax.random.split(jax.random.key(seed + 7), CHAINS)
        init = np.stack([np.asarray(compiled.ravel(compiled.initial_position(k))) for k in keys])
    else:
        kernel = NUTS(model, dense_mass=dense)
    mcmc = MCMC(kernel, num_warmup=TUNE, num_samples=DRAWS, num_chains=CHAINS, progress_bar=False)
    t = time.perf_counter()
    mcmc.run(jax.random.key(seed), init_params=init, extra_fields=("num_steps",))
    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    phases = {"build": shared, "warmup": np.nan, "sampling": np.nan, "run": time.perf_counter() - t}
    if model is None:
        post = _constrained(compiled, data, samples)
    else:
        post = {k: np.asarray(v) for k, v in samples.items()}
    steps = float(np.sum(mcmc.get_extra_fields()["num_steps"]))
    return post, steps, phases, shared


def _pymc_posterior(name, tree):
    post = {k: np.asarray(v.values) for k, v in tree["posterior"].data_vars.items()}
    if name in models.UNTUNED:
        compiled, data, _ = _shared_density(name)
        post = _constrained(compiled, data, post["flat"])
    return post


def run_nutpie(name, seed, adaptation="diag"):
    import nutpie

    t = time.perf_counter()
    pm_model = models.pymc_model(name)
    shared = time.perf_counter() - t if name in models.UNTUNED else 0.0
    compiled = nutpie.compile_pymc_model(pm_model)
    t1 = time.perf_counter()
    kwargs = {} if adaptation == "diag" else {"adaptation": adaptation}
    tree = nutpie.sample(
        compiled, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=seed, progress_bar=False, **kwargs
    )
    t2 = time.perf_counter()
    steps = float(np.sum(tree["sample_stats"]["n_steps"].values))
    phases = {"build": t1 - t, "warmup": np.nan, "sampling": np.nan, "run": t2 - t1}
    return tree, steps, phases, shared


def run_pymc(name, seed):
    s = time.perf_counter()
    pm_model = models.pymc_model(name)
    shared = time.perf_counter() - s if name in models.UNTUNED else 0.0
    t = time.perf_counter()
    tree = models.pymc_sample(pm_model, seed, draws=DRAWS, tune=TUNE, chains=CHAINS)
    phases = {"build": np.nan, "warmup": np.nan, "sampling": np.nan, "run": time.perf_counter() - t}
    return tree, float(np.sum(tree["sample_stats"]["n_steps"].values)), phases, shared


SYSTEMS = {
    "ours": lambda name, seed: (*run_ours(name, seed), 0.0),
    "ours_diag": lambda name, seed: (*run_ours(name, seed, "diag"), 0.0),
    "numpyro": lambda name, seed: run_numpyro(name, seed),
    "numpyro_dense": lambda name, seed: run_numpyro(name, seed, dense=True),
    "nutpie": lambda name, seed: run_nutpie(name, seed),
    "nutpie_lowrank": lambda name, seed: run_nutpie(name, seed, adaptation="low_rank"),
    "pymc": run_pymc,
}
BEST_SETTINGS = {
    "numpyro": "numpyro_dense",
    "nutpie": "nutpie_lowrank",
}  # peer -> its best documented setting


def min_ess(post):
    """Minimum bulk and tail ESS over every scalar of the constrained posterior."""
    import arviz_base
    import arviz_stats

    # constrained and unconstrained versions of one parameter have the same ranks: ESS agrees
    post = {k: v for k, v in post.items() if k not in ("la", "lb", "ab", "flat")}
    ds = arviz_base.from_dict({"posterior": post})["posterior"].to_dataset()
    out = []
    for method in ("bulk", "tail"):
        ess = arviz_stats.ess(ds, method=method)
        out.append(min(float(np.min(ess[k].values)) for k in ess.data_vars))
    return out


def main():
    system, name, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    post, grads, phases, shared = SYSTEMS[system](name, seed)
    wall = time.perf_counter() - T0
    if not isinstance(post, dict):  # a DataTree of nutpie or PyMC, read after the clock stopped
        post = _pymc_posterior(name, post)
    bulk, tail = min_ess(post) if DRAWS >= 100 else (float("nan"), float("nan"))
    print(
        json.dumps(
            {
                "system": system,
                "model": name,
                "seed": seed,
                "wall": wall - shared,
                "wall_raw": wall,
                "shared": shared,
                "ess_bulk": bulk,
                "ess_tail": tail,
                "grads": grads,
                **{k: float(v) for k, v in phases.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
