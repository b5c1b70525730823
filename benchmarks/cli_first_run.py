"""A new model's first run from the command line, to the shell prompt, against a NumPyro script.

``cli_first_run.py [--pairs N]`` times, in alternating fresh processes, ``pytensor-blackjax run
reg_model.py --no-progress`` (the 3-parameter PyMC regression of ``new_model.py``; every cache empty:
a new program store and PyTensor compile directory for each run) and a NumPyro script of the same
model and data that runs it as NumPyro's documentation shows (one ``MCMC(NUTS(model), ...).run()``,
4 chains on 4 host devices, float64) and prints ``mcmc.print_summary()`` (JAX's persistent cache is off
by default). Both print a summary table, 4 chains x 1000 warmup + 1000 draws, the same thread settings.
Prints each pair's seconds, the medians and the median of the pairs' ratios (ours / NumPyro).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
DATA = """
import numpy as np
rng = np.random.default_rng(11)
x = rng.normal(size=100)
y = 1.0 + 2.0 * x + rng.normal(scale=0.5, size=100)
"""
PYMC_MODEL = DATA + textwrap.dedent(
    """
    import pymc as pm
    with pm.Model() as model:
        a, b = pm.Normal("a", 0, 10), pm.Normal("b", 0, 10)
        sigma = pm.HalfNormal("sigma", 5)
        pm.Normal("y", a + b * x, sigma, observed=y)
    """
)
NUMPYRO_SCRIPT = (
    textwrap.dedent(
        """
        import numpyro
        numpyro.set_host_device_count(4)
        import jax
        import numpyro.distributions as dist
        from numpyro.infer import MCMC, NUTS
        jax.config.update("jax_enable_x64", True)
        """
    )
    + DATA
    + textwrap.dedent(
        """
        def model():
            a = numpyro.sample("a", dist.Normal(0, 10))
            b = numpyro.sample("b", dist.Normal(0, 10))
            sigma = numpyro.sample("sigma", dist.HalfNormal(5))
            numpyro.sample("y", dist.Normal(a + b * x, sigma), obs=y)
        mcmc = MCMC(NUTS(model), num_warmup=1000, num_samples=1000, num_chains=4, progress_bar=False)
        mcmc.run(jax.random.key(1))
        mcmc.print_summary()
        """
    )
)


def timed(command: list[str], env: dict[str, str], cwd: str) -> float:
    t = time.perf_counter()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(command, env=env, cwd=cwd, check=True, **quiet)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="pbj-cli-first-")
    try:
        with open(os.path.join(folder, "reg_model.py"), "w") as f:
            f.write(PYMC_MODEL)
        with open(os.path.join(folder, "numpyro_reg.py"), "w") as f:
            f.write(NUMPYRO_SCRIPT)
        cli = os.path.join(os.path.dirname(sys.executable), "pytensor-blackjax")
        base = {**os.environ, **THREADS}
        rows = []
        for i in range(args.pairs + 1):  # the first pair warms the file system's caches: not counted
            caches = tempfile.mkdtemp(dir=folder)
            env = {
                **base,
                "PBJ_COMPILATION_CACHE": os.path.join(caches, "pbj"),
                "PYTENSOR_FLAGS": f"compiledir={os.path.join(caches, 'pytensor')}",
            }
            ours = timed([cli, "run", "reg_model.py", "--no-progress"], env, folder)
            theirs = timed([sys.executable, "numpyro_reg.py"], base, folder)
            shutil.rmtree(caches)
            if i:
                rows.append((ours, theirs))
                ratio = ours / theirs
                print(f"pair {i}: ours {ours:.2f} s, NumPyro {theirs:.2f} s, ratio {ratio:.3f}", flush=True)
        ratios = [a / b for a, b in rows]
        print(
            f"median: ours {statistics.median(a for a, _ in rows):.2f} s, NumPyro "
            f"{statistics.median(b for _, b in rows):.2f} s, ratio {statistics.median(ratios):.3f} "
            f"({min(ratios):.3f}-{max(ratios):.3f}, {len(rows)} pairs)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
