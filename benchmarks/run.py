"""Side-by-side speed benchmarks: ``./dev bench`` (or ``.venv/bin/python benchmarks/run.py``).

Each (system, model) run is a fresh process (``worker.py``); systems alternate within each repetition
so that changes in machine load hit all of them alike; the table reports medians over repetitions.
Writes ``benchmarks/results/latest.md``, ``latest.json`` and ``latest.png`` (``--out NAME``: ``NAME.*``).
No network access.

Then, per model, time to first draw: process start until one draw after the 1000 warmup steps is in
hand (``PBJ_BENCH_DRAWS=1``), ours on a second run (program store filled) against NumPyro.

Options: ``--reps N`` (default 3), ``--models a,b`` and ``--systems a,b`` (default: all),
``--timeout SECONDS`` per run (default 900), ``--no-first-draw``, ``--out NAME`` (default latest).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, HERE)
from models import MODELS  # noqa: E402
from worker import SYSTEMS  # noqa: E402

METRICS = ("wall", "compile", "warmup", "sampling", "ess_min", "ess_per_s", "grads_per_ess", "peak_mb")


FIRST_DRAW_SYSTEMS = ("ours", "numpyro")


def run_one(script, *args, timeout, extra_env=None):
    env = {
        **os.environ,
        "PYTHONPATH": HERE + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **(extra_env or {}),
    }
    try:
        out = subprocess.run(
            [sys.executable, os.path.join(HERE, script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout}s"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


def medians(runs):
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[-1].get("error", "failed"), "n": 0}
    return {"n": len(ok), **{m: float(np.nanmedian([r.get(m, np.nan) for r in ok])) for m in METRICS}}


def fmt(x, digits=1):
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def machine():
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average at start {load:.1f}"
    )


def first_draw_lines(first):
    if not first:
        return []
    lines = [
        "",
        "Time to first draw (process start to one draw after 1000 warmup steps, 4 chains; ours on a "
        "second run, program store filled): median seconds.",
        "",
        "| model | ours s | numpyro s | ours / numpyro |",
        "|---|---|---|---|",
    ]
    for model, per in first.items():
        o, n = (
            float(np.nanmedian([r.get("wall", np.nan) for r in per.get(s, [])] or [np.nan]))
            for s in FIRST_DRAW_SYSTEMS
        )
        lines.append(f"| {model} | {fmt(o, 2)} | {fmt(n, 2)} | {fmt(o / n, 2)} |")
    return lines


def write_markdown(table, micro, args, started, first=None):
    lines = [
        f"# Benchmark results ({started:%Y-%m-%d %H:%M})",
        "",
        f"Machine: {machine()}. 4 chains x 1000 warmup + 1000 draws; medians of {args.reps} "
        "repetition(s), each run in a fresh process, systems alternating.",
        "",
        "| model | system | wall s | compile s | warmup s | sampling s | min bulk ESS | ESS/s | "
        "grads/ESS | peak MB | ESS/s vs best peer |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, per_system in table.items():
        peers = [v["ess_per_s"] for s, v in per_system.items() if not s.startswith("ours") and v.get("n")]
        best = max(peers) if peers else float("nan")
        for system, v in per_system.items():
            if not v.get("n"):
                lines.append(f"| {model} | {system} | failed: {v.get('error')} |||||||||")
                continue
            ratio = v["ess_per_s"] / best if system.startswith("ours") and best == best else float("nan")
            lines.append(
                f"| {model} | {system} | {fmt(v['wall'])} | {fmt(v['compile'])} | "
                f"{fmt(v['warmup'])} | "
                f"{fmt(v['sampling'])} | {fmt(v['ess_min'], 0)} | {fmt(v['ess_per_s'])} | "
                f"{fmt(v['grads_per_ess'])} | {fmt(v['peak_mb'], 0)} | {fmt(ratio, 2)} |"
            )
    if micro and "error" not in micro:
        lines += [
            "",
            "Per-gradient cost (rat tumors, log-density and gradient in one compiled loop): ours "
            f"{micro['logp_grad_ours_us']:.2f} us vs hand-written JAX "
            f"{micro['logp_grad_hand_us']:.2f} us (ratio {micro['logp_grad_ratio']:.2f}).",
            "",
            "NUTS overhead (default settings after the default warmup, one chain): time per gradient "
            "inside NUTS against the bare log-density and gradient.",
            "",
            "| model | bare us | inside NUTS us | ratio | gradients per draw |",
            "|---|---|---|---|---|",
        ]
        for name, v in micro.get("nuts", {}).items():
            lines.append(
                f"| {name} | {v['bare_grad_us']:.2f} | {v['per_grad_us']:.2f} | {v['ratio']:.2f} | "
                f"{v['grads_per_draw']:.1f} |"
            )
    lines += first_draw_lines(first)
    lines += [
        "",
        "Times are wall-clock on a shared machine: compare rows of one table, not across tables.",
        "Compile = model build + compile step where the system separates it; JIT compilation of "
        "sampler programs is inside warmup (ours, NumPyro) or sampling (nutpie, PyMC: no split).",
    ]
    with open(os.path.join(RESULTS, f"{args.out}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def plot(table, out="latest"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(table)
    systems = sorted({s for v in table.values() for s in v})
    fig, ax = plt.subplots(figsize=(1.8 * len(models) + 3, 4))
    width = 0.8 / max(len(systems), 1)
    for i, system in enumerate(systems):
        vals = [table[m].get(system, {}).get("ess_per_s", np.nan) for m in models]
        ax.bar(np.arange(len(models)) + i * width, vals, width, label=system)
    ax.set_xticks(np.arange(len(models)) + 0.4 - width / 2, models)
    ax.set_ylabel("min bulk ESS per wall-second (end to end)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, f"{out}.png"), dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--no-first-draw", action="store_true")
    parser.add_argument("--out", default="latest", help="results file name, without extension")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    systems = args.systems.split(",")
    for name, known, what in ((models, MODELS, "--models"), (systems, tuple(SYSTEMS), "--systems")):
        bad = [x for x in name if x not in known]
        if bad:
            parser.error(f"{what}: unknown {bad}; use some of {', '.join(known)}")
    os.makedirs(RESULTS, exist_ok=True)
    started = datetime.datetime.now()
    runs = {m: {s: [] for s in systems} for m in models}
    if "ours" in systems or not args.no_first_draw:
        for model in models:  # "ours" is a second run: fill the compilation cache first (not recorded)
            run_one(
                "worker.py", "ours", model, "0", timeout=args.timeout, extra_env={"PBJ_BENCH_DRAWS": "100"}
            )
    for rep in range(args.reps):
        for model in models:
            order = systems if rep % 2 == 0 else systems[::-1]
            for system in order:
                r = run_one("worker.py", system, model, str(rep + 1), timeout=args.timeout)
                runs[model][system].append(r)
                print(
                    f"rep {rep + 1} {model:14s} {system:14s} "
                    + (
                        r["error"]
                        if "error" in r
                        else f"wall {r['wall']:.1f}s  min-ESS {r['ess_min']:.0f}  ESS/s {r['ess_per_s']:.1f}"
                    ),
                    flush=True,
                )
    first = {}
    if not args.no_first_draw:
        for rep in range(args.reps):
            for model in models:
                for system in FIRST_DRAW_SYSTEMS:
                    r = run_one(
                        "worker.py",
                        system,
                        model,
                        str(rep + 1),
                        timeout=args.timeout,
                        extra_env={"PBJ_BENCH_DRAWS": "1"},
                    )
                    first.setdefault(model, {}).setdefault(system, []).append(r)
                    print(
                        f"first draw rep {rep + 1} {model:14s} {system:8s} "
                        + (r["error"] if "error" in r else f"{r['wall']:.2f}s"),
                        flush=True,
                    )
    micro = run_one("micro.py", timeout=args.timeout)
    print("micro:", micro)
    table = {m: {s: medians(v) for s, v in per.items()} for m, per in runs.items()}
    with open(os.path.join(RESULTS, f"{args.out}.json"), "w") as f:
        json.dump(
            {
                "started": started.isoformat(),
                "machine": machine(),
                "runs": runs,
                "micro": micro,
                "first_draw": first,
            },
            f,
            indent=1,
        )
    write_markdown(table, micro, args, started, first)
    plot(table, args.out)
    print(open(os.path.join(RESULTS, f"{args.out}.md")).read())


if __name__ == "__main__":
    main()
