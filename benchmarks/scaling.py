"""How sampling scales with chains, cores, devices and data size. A benchmark, not a test.

Three measurements, each in a fresh process so that JAX starts with the settings under test:

1. chains x cores: 1, 2 and 4 chains of NUTS on a logistic regression (20,000 rows, 20 coefficients)
   with default settings, timed after compilation (a first call of each size compiles);
2. 4 forced host devices (``--xla_force_host_platform_device_count=4``): 4 chains sharded over the
   devices against the same 4 chains vmapped on one device;
3. data size: time per log-density gradient of the logistic regression for N = 1e3 .. 1e6 rows.

Writes a Markdown table to benchmarks/results/scaling.md (with the machine's load average, since
timings on a shared machine are noisy) and prints it.

    python benchmarks/scaling.py            # the full set
    python benchmarks/scaling.py --quick    # shorter runs, N up to 1e5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "scaling.md"

MODEL = """
import json, sys, time
import numpy as np, pytensor.tensor as pt
import pytensor_blackjax as pbj

def logistic(rows, cols=20, seed=0):
    rng = np.random.default_rng(seed)
    m = pbj.ModelBuilder(name=f"logistic_{rows}")
    X = m.data("X", rng.normal(size=(rows, cols)))
    y = m.data("y", (rng.uniform(size=rows) < 0.5).astype("int64"))
    b = m.param("b", shape=(cols,))
    eta = pt.dot(X, b)
    m.add_logp(-0.5 * pt.sum(b ** 2) + pt.sum(y * eta - pt.softplus(eta)))
    return m.build()
"""

CHAINS = (
    MODEL
    + """
args = json.loads(sys.argv[1])
model = logistic(20000)
kw = dict(draws=args["draws"], tune=args["draws"], seed=5, progressbar=False)
out = {}
for chains in args["chains"]:
    for method in args["methods"]:
        pbj.sample(model, chains=chains, chain_method=method, **kw)  # compile
        best = float("inf")
        for _ in range(args["repeats"]):
            start = time.perf_counter()
            tree = pbj.sample(model, chains=chains, chain_method=method, **kw)
            best = min(best, time.perf_counter() - start)
        out[f"{chains}/{method}"] = {"seconds": best, "used": tree.attrs["chain_method"]}
import jax
print(json.dumps({"devices": len(jax.devices()), "runs": out}))
"""
)

GRADIENT = (
    MODEL
    + """
import jax
rows = int(sys.argv[1])
compiled = pbj.compile(logistic(rows))
data = compiled.data_tuple()
grad = jax.jit(jax.value_and_grad(compiled.flat_logdensity))
x = np.zeros(compiled.num_dims)
jax.block_until_ready(grad(x, data))
calls, start = 0, time.perf_counter()
while time.perf_counter() - start < 2.0 or calls < 5:
    jax.block_until_ready(grad(x + calls * 1e-6, data))
    calls += 1
print(json.dumps({"rows": rows, "seconds": (time.perf_counter() - start) / calls}))
"""
)


def _python(code: str, *args: str, env: dict | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def chains_by_cores(draws: int, repeats: int) -> list[str]:
    settings = {"chains": [1, 2, 4], "methods": ["auto"], "draws": draws, "repeats": repeats}
    r = _python(CHAINS, json.dumps(settings))
    one = r["runs"]["1/auto"]["seconds"]
    lines = ["| chains | method used | wall time (s) | x one chain | target |", "|---:|---|---:|---:|---:|"]
    for chains, target in ((1, "-"), (2, "<= 1.3"), (4, "<= 2.3")):
        run = r["runs"][f"{chains}/auto"]
        ratio = run["seconds"] / one
        lines.append(f"| {chains} | {run['used']} | {run['seconds']:.2f} | {ratio:.2f} | {target} |")
    return lines


def four_devices(draws: int, repeats: int) -> list[str]:
    r = _python(
        CHAINS,
        json.dumps(
            {"chains": [4], "methods": ["parallel", "vectorized"], "draws": draws, "repeats": repeats}
        ),
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"},
    )
    lines = [
        f"{r['devices']} forced host devices, 4 chains:",
        "",
        "| chain_method | method used | wall time (s) |",
        "|---|---|---:|",
    ]
    for method in ("parallel", "vectorized"):
        run = r["runs"][f"4/{method}"]
        lines.append(f"| {method} | {run['used']} | {run['seconds']:.2f} |")
    return lines


def data_size(sizes: list[int]) -> list[str]:
    lines = ["| rows N | time per gradient (ms) | ns per row |", "|---:|---:|---:|"]
    for rows in sizes:
        r = _python(GRADIENT, str(rows))
        lines.append(f"| {rows:,} | {r['seconds'] * 1e3:.3f} | {r['seconds'] / rows * 1e9:.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs; N up to 1e5")
    args = parser.parse_args()
    draws, repeats = (300, 1) if args.quick else (1000, 2)
    sizes = [10**3, 10**4, 10**5] if args.quick else [10**3, 10**4, 10**5, 10**6]
    load_before = os.getloadavg()
    sections = [
        "# Scaling",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average before {load_before[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M')}. "
        f"NUTS, {draws} warmup + {draws} draws, best of {repeats} after compilation.",
        "",
        "## Chains x cores (default settings, logistic regression 20,000 x 20)",
        "",
        *chains_by_cores(draws, repeats),
        "",
        "## Sharded over forced host devices",
        "",
        *four_devices(draws, repeats),
        "",
        "## Data size (logistic regression, 20 coefficients)",
        "",
        *data_size(sizes),
        "",
        f"Load average after: {os.getloadavg()[0]:.1f}. With other busy processes, chains x cores ratios "
        "mean little: Linux shares CPU time per session (autogroup) when the cores are contended, so the "
        "threads of one process then split that process's share instead of using a core each.",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(sections) + "\n")
    print("\n".join(sections))


if __name__ == "__main__":
    main()
