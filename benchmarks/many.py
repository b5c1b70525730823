"""Many fits: ``sample_many`` on this machine (and on Dask) vs a plain loop over ``pbj.sample``.

SBC-style: 64 data sets, one chain of 1000 warmup + 1000 draws each, for two small models. Every
configuration runs in a fresh process with an empty program store, so compilation is counted (as a user
meets it the first time; later runs load the programs from the store). Prints a Markdown table.

    .venv/bin/python benchmarks/many.py [--fits 64] [--repeat 1] [--dask] [--models normal logistic]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

MODELS = ("normal", "logistic", "rats")


def build(name: str):
    """(model, datasets) for one benchmark model; data simulated from the prior as SBC does."""
    import numpy as np
    import pytensor.tensor as pt

    import pytensor_blackjax as pbj

    rng = np.random.default_rng(0)
    if name == "rats":  # the rat-tumour model (73 parameters); tumour counts simulated per group
        model = pbj.examples.rat_tumors()
        n = np.asarray(model.data["n"].value)
        sets = [{"y": rng.binomial(n, rng.beta(2.4, 14.5, size=n.shape))} for _ in range(ARGS.fits)]
        return model, sets
    m = pbj.ModelBuilder(name=name)
    if name == "normal":  # y_i ~ Normal(mu, 1), 20 observations
        mu = m.param("mu")
        y = m.data("y", np.zeros(20))
        m.add_logp(-0.5 * (mu / 10.0) ** 2 - 0.5 * pt.sum((y - mu) ** 2))
        sets = [{"y": rng.normal(rng.normal(0, 2), 1, 20)} for _ in range(ARGS.fits)]
    else:  # logistic regression, 200 observations, 4 coefficients
        x = rng.normal(size=(200, 4))
        beta = m.param("beta", shape=(4,))
        y = m.data("y", np.zeros(200))
        eta = pt.dot(x, beta)
        m.add_logp(-0.5 * pt.sum(beta**2) + pt.sum(y * eta - pt.log1p(pt.exp(eta))))
        sets = [
            {"y": (rng.random(200) < 1 / (1 + np.exp(-x @ rng.normal(size=4)))).astype(float)}
            for _ in range(ARGS.fits)
        ]
    return m.build(), sets


def one(model_name: str, method: str) -> dict:
    """Runs inside a fresh process: time from the model description to every fit's draws."""
    import pytensor_blackjax as pbj

    model, sets = build(model_name)
    kw = dict(draws=1000, tune=1000, chains=1, progressbar=False)
    t0 = time.perf_counter()
    if method == "loop":
        compiled = pbj.compile(model)
        for i, data in enumerate(sets):
            pbj.sample(compiled, data=data, seed=i, **kw)
    elif method.startswith("many"):  # sample_many with this many fits at once (1: all in this process)
        pbj.sample_many(model, sets, seed=1, fits_at_once=int(method[4:]), **kw)
    elif method.startswith("dask"):
        from dask.distributed import Client, LocalCluster

        workers = int(method[4:])
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
            ) as cl,
            Client(cl) as client,
        ):
            t0 = time.perf_counter()  # the cluster's start (a few seconds) is not the fits' cost
            pbj.sample_many(model, sets, seed=1, client=client, **kw)
    return {"seconds": time.perf_counter() - t0}


def measure(model_name: str, method: str) -> float:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, PBJ_COMPILATION_CACHE=cache)
        cmd = [sys.executable, __file__, "--one", model_name, method, "--fits", str(ARGS.fits)]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds"]


def main() -> None:
    methods = ["loop", "many1", "many2"] + (["dask1", "dask2"] if ARGS.dask else [])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    load = os.getloadavg()[0]
    print(f"# Many fits: sample_many vs a loop over pbj.sample ({ARGS.fits} fits, 1 chain, 1000+1000)\n")
    print(
        f"commit {commit.strip()}, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
        f"load average {load:.1f} at the start, best of {ARGS.repeat}; seconds from the model to every "
        "fit's draws in a fresh process with an empty program store (compilation counted).\n"
    )
    print("| model | " + " | ".join(methods) + " | loop / best local |")
    print("|---|" + "---|" * (len(methods) + 1))
    for model_name in ARGS.models:
        times = {m: min(measure(model_name, m) for _ in range(ARGS.repeat)) for m in methods}
        best = min(times[m] for m in methods if m.startswith("many"))
        cells = " | ".join(f"{times[m]:.1f}" for m in methods)
        print(f"| {model_name} | {cells} | {times['loop'] / best:.2f}x |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--fits", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--dask", action="store_true", help="also 1 and 2 Dask worker processes")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    ARGS = parser.parse_args()
    if ARGS.one:
        print(json.dumps(one(*ARGS.one)))
    else:
        main()
