"""Side-by-side speed benchmarks: ``./dev bench`` (or ``.venv/bin/python benchmarks/run.py``).

Every system runs at its default and at its best documented setting, each run a fresh process
(``worker.py``) as its documentation shows, systems alternating within each repetition:

- ours (default: dense metric below 200 dimensions) and ``ours_diag`` (``NUTS(adaptation="diag")``);
- NumPyro NUTS, diagonal (its default) and ``dense_mass=True``, one ``mcmc.run()`` each;
- nutpie, ``adaptation="diag"`` (its default) and ``"low_rank"``; PyMC's ``pm.sample`` default.

Two cache states, each compared with itself: ``warm`` (every cache filled by an earlier run of the same
model: our program store, JAX's persistent compilation cache for NumPyro, PyTensor's compiledir for
PyMC and nutpie) and ``cold`` (every cache an empty directory). The same thread settings for every
system (``THREADS``). Peak memory is the largest resident set of the whole process tree, sampled
every 50 ms. ``fixed`` is the wall time of the same run with 10 warmup steps and 10 draws in the same
cache state (import, build, compile, start-up); the rest of the wall time is divided by the gradients
of a chain (warmup counted at the sampling phase's gradients per draw) for seconds per gradient.

Then the time to result for a new model (``new_model.py``, cold) and, unless ``--no-micro``, the
per-gradient costs of ``micro.py``. Writes ``benchmarks/results/<out>.md`` and ``.json``.

Options: ``--reps N`` (default 3), ``--models a,b``, ``--systems a,b``, ``--modes warm,cold``,
``--no-fixed``, ``--no-new-model``, ``--no-micro``, ``--timeout SECONDS``, ``--out NAME``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, HERE)
from models import MODELS, UNTUNED  # noqa: E402
from new_model import SYSTEMS as NEW_MODEL_SYSTEMS  # noqa: E402
from worker import BEST_SETTINGS, CHAINS, SYSTEMS  # noqa: E402

THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
MODES = ("warm", "cold")
PEERS = tuple(s for s in SYSTEMS if not s.startswith("ours"))
TUNE = DRAWS = 1000


def _tree_rss(proc) -> float:
    import psutil

    try:
        parent = psutil.Process(proc.pid)
        return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
    except psutil.Error:
        return 0.0


def run_one(script, *args, timeout, env):
    """Run ``script args`` in a fresh process; its JSON line plus ``peak_mb`` of the process tree."""
    full = {
        **os.environ,
        **THREADS,
        "PYTHONPATH": HERE + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full,
    )
    peak = [0.0]
    done = threading.Event()

    def watch():
        while not done.wait(0.05):
            peak[0] = max(peak[0], _tree_rss(proc))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": f"timeout after {timeout}s"}
    finally:
        done.set()
        watcher.join()
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        return {"error": (err.strip().splitlines() or ["no output"])[-1][:200]}
    return {**json.loads(lines[-1]), "peak_mb": peak[0] / 2**20}


class Caches:
    """Cache directories per (mode, system, model): warm ones persist for the whole benchmark, cold ones
    are new and empty for every run."""

    def __init__(self, root):
        self.root = root

    def env(self, mode, system, model):
        if mode == "warm":
            base = os.path.join(self.root, "warm", system, model)
        else:
            base = tempfile.mkdtemp(prefix=f"cold-{system}-", dir=self.root)
        return {
            "PBJ_COMPILATION_CACHE": os.path.join(base, "pbj"),
            "PBJ_BENCH_JAX_CACHE": os.path.join(base, "jax"),
            "PYTENSOR_FLAGS": f"compiledir={os.path.join(base, 'pytensor')}",
        }


def median(runs, key):
    vals = [r[key] for r in runs if "error" not in r and key in r]
    return float(np.nanmedian(vals)) if vals else float("nan")


def summarise(runs, fixed):
    """One row: medians over repetitions, and the split into fixed and per-gradient seconds."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[-1]["error"] if runs else "not run"}
    row = {k: median(ok, k) for k in ("wall", "ess_bulk", "ess_tail", "grads", "peak_mb", "shared")}
    row["n"] = len(ok)
    row["ess_per_s"] = row["ess_bulk"] / row["wall"]
    row["grads_per_ess"] = row["grads"] / row["ess_bulk"]
    row["fixed"] = median(fixed, "wall") if fixed else float("nan")
    per_chain = row["grads"] / CHAINS * (TUNE + DRAWS) / DRAWS
    variable = row["wall"] - row["fixed"]
    # a variable part lost in the noise of two wall times says nothing per gradient
    row["us_per_grad"] = variable / per_chain * 1e6 if variable > 0.05 * row["wall"] else float("nan")
    return row


def fmt(x, digits=1):
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def best_peer(rows):
    """The peer run with the highest min-ESS/s: every peer at every setting that ran."""
    cands = [(v["ess_per_s"], s) for s, v in rows.items() if s in PEERS and "error" not in v]
    return max(cands)[1] if cands else None


def header(args, started, commit):
    load = os.getloadavg()[0]
    command = "benchmarks/run.py " + " ".join(shlex.quote(a) for a in (args.argv or []))
    return [
        f"# Benchmark results ({started:%Y-%m-%d %H:%M} UTC, commit {commit})",
        "",
        f"Command: `{command.strip()}`. Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average at start {load:.1f}. Thread settings for every system: "
        + ", ".join(f"{k}={v}" for k, v in THREADS.items())
        + f". {CHAINS} chains x {TUNE} warmup + {DRAWS} draws; medians of {args.reps} repetition(s), each a "
        "fresh process, systems alternating. Models marked * are posteriordb posteriors no default was "
        "tuned on.",
    ]


def headline(table, modes):
    lines = [
        "",
        "## Headline: min bulk ESS per wall-second, ours (default) against the best peer at its best setting",
        "",
        "Warm against warm, cold against cold; the best peer is the fastest peer run at any of its settings "
        "that ran (documented best settings: "
        + ", ".join(f"{p} -> {b}" for p, b in BEST_SETTINGS.items())
        + ").",
        "",
        "| model | " + " | ".join(f"{m}: ours | {m}: best peer | {m}: ratio" for m in modes) + " |",
        "|---|" + "---|---|---|" * len(modes),
    ]
    for model, per_mode in table.items():
        cells = []
        for mode in modes:
            rows = per_mode.get(mode, {})
            ours, peer = rows.get("ours", {}), best_peer(rows)
            if "error" in ours or not ours or peer is None:
                cells += ["-", "-", "-"]
                continue
            p = rows[peer]
            cells += [
                fmt(ours["ess_per_s"]),
                f"{fmt(p['ess_per_s'])} ({peer})",
                fmt(ours["ess_per_s"] / p["ess_per_s"], 2),
            ]
        star = "*" if model in UNTUNED else ""
        lines.append(f"| {model}{star} | " + " | ".join(cells) + " |")
    return lines


def full_table(table):
    lines = [
        "",
        "## Every run",
        "",
        "| model | cache | system | wall s | fixed s | min bulk ESS | min tail ESS | ESS/s | grads/ESS | "
        "us/grad | peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, per_mode in table.items():
        for mode, rows in per_mode.items():
            for system, v in rows.items():
                if "error" in v:
                    lines.append(f"| {model} | {mode} | {system} | failed: {v['error']} ||||||||")
                    continue
                lines.append(
                    f"| {model} | {mode} | {system} | {fmt(v['wall'])} | {fmt(v['fixed'])} | "
                    f"{fmt(v['ess_bulk'], 0)} | {fmt(v['ess_tail'], 0)} | {fmt(v['ess_per_s'])} | "
                    f"{fmt(v['grads_per_ess'])} | {fmt(v['us_per_grad'])} | {fmt(v['peak_mb'], 0)} |"
                )
    return lines


def split_table(table, modes):
    """Where each ratio comes from: adaptation (grads/ESS), overhead (s/grad) and fixed seconds."""
    lines = [
        "",
        "## Where a ratio comes from: ours against the best peer at its best setting",
        "",
        "A ratio above 1 favours us. grads/ESS: the peer's over ours (adaptation); us/grad: the peer's over "
        "ours (time per gradient, incl. the sampler's own work); fixed: seconds of a 10+10-iteration run.",
        "",
        "| model | cache | best peer | grads/ESS ratio | us/grad ratio | fixed s ours | fixed s peer |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, per_mode in table.items():
        for mode in modes:
            rows = per_mode.get(mode, {})
            ours, peer = rows.get("ours"), best_peer(rows)
            if not ours or "error" in ours or peer is None:
                continue
            p = rows[peer]
            lines.append(
                f"| {model} | {mode} | {peer} | {fmt(p['grads_per_ess'] / ours['grads_per_ess'], 2)} | "
                f"{fmt(p['us_per_grad'] / ours['us_per_grad'], 2)} | {fmt(ours['fixed'])} | "
                f"{fmt(p['fixed'])} |"
            )
    return lines


def new_model_table(new):
    if not new:
        return []
    lines = [
        "",
        "## Time to result for a new model (every cache empty)",
        "",
        "A 3-parameter linear regression (100 observations) run once: process start to draws in hand, "
        f"{CHAINS} chains x {TUNE} + {TUNE}. Median seconds.",
        "",
        "| system | seconds | vs NumPyro |",
        "|---|---|---|",
    ]
    base = median(new.get("numpyro", []), "wall")
    for system, runs in new.items():
        w = median(runs, "wall")
        lines.append(f"| {system} | {fmt(w, 2)} | {fmt(w / base, 2)} |")
    return lines


def micro_lines(micro):
    if not micro or "error" in micro:
        return []
    lines = [
        "",
        "## Per-gradient costs",
        "",
        "Rat tumors, log-density and gradient in one compiled loop: ours "
        f"{micro['logp_grad_ours_us']:.2f} us, "
        f"hand-written JAX {micro['logp_grad_hand_us']:.2f} us (ratio {micro['logp_grad_ratio']:.2f}).",
        "",
        "Time per gradient inside NUTS (one chain, after the default warmup) against the bare gradient:",
        "",
        "| model | bare us | inside NUTS us | ratio | gradients per draw |",
        "|---|---|---|---|---|",
    ]
    for name, v in micro.get("nuts", {}).items():
        lines.append(
            f"| {name} | {v['bare_grad_us']:.2f} | {v['per_grad_us']:.2f} | {v['ratio']:.2f} | "
            f"{v['grads_per_draw']:.1f} |"
        )
    return lines


def commit_id():
    def git(*a):
        return subprocess.run(["git", *a], capture_output=True, text=True, cwd=HERE).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    return sha + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def log(msg):
    print(msg, flush=True)


def show(tag, r):
    if "error" in r:
        return f"{tag}: {r['error']}"
    bulk = r.get("ess_bulk", float("nan"))
    ess = f"  min-ESS {bulk:.0f}" if bulk == bulk else ""  # a NaN (fixed-cost run) or none (new model)
    return f"{tag}: wall {r['wall']:.1f}s{ess}  peak {r['peak_mb']:.0f} MB"


def main(argv=None):
    global DRAWS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--no-fixed", action="store_true")
    parser.add_argument("--no-new-model", action="store_true")
    parser.add_argument("--no-micro", action="store_true")
    parser.add_argument(
        "--draws", type=int, default=1000, help="draws per chain of every timed run (a long run: 10000)"
    )
    parser.add_argument("--out", default="latest", help="results file name, without extension")
    args = parser.parse_args(argv)
    DRAWS = args.draws
    long = {} if DRAWS == 1000 else {"PBJ_BENCH_DRAWS": str(DRAWS)}
    args.argv = sys.argv[1:] if argv is None else argv
    models, systems, modes = args.models.split(","), args.systems.split(","), args.modes.split(",")
    for chosen, known, what in (
        (models, MODELS, "--models"),
        (systems, tuple(SYSTEMS), "--systems"),
        (modes, MODES, "--modes"),
    ):
        bad = [x for x in chosen if x not in known]
        if bad:
            parser.error(f"{what}: unknown {bad}; use some of {', '.join(known)}")
    os.makedirs(RESULTS, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC)
    commit = commit_id()
    root = tempfile.mkdtemp(prefix="pbj-bench-")
    caches = Caches(root)
    runs = {m: {mode: {s: [] for s in systems} for mode in modes} for m in models}
    fixed = {m: {mode: {s: [] for s in systems} for mode in modes} for m in models}
    tiny = {"PBJ_BENCH_DRAWS": "10", "PBJ_BENCH_TUNE": "10"}
    timed_out = set()  # (model, system): a run past --timeout; the pair's later runs are skipped

    def one(model, system, seed, env):
        if (model, system) in timed_out:
            return {"error": f"skipped: an earlier run timed out (over {args.timeout}s)"}
        r = run_one("worker.py", system, model, seed, timeout=args.timeout, env=env)
        if r.get("error", "").startswith("timeout"):
            timed_out.add((model, system))
        return r

    for model in models:
        if "warm" in modes:  # fill every warm cache with the programs of both run sizes; not recorded
            for system in systems:
                for size in (long,) if args.no_fixed else (long, tiny):
                    r = one(model, system, "0", {**caches.env("warm", system, model), **size})
                    log(show(f"prime {model} {system}", r))
        for rep in range(args.reps):
            order = systems if rep % 2 == 0 else systems[::-1]
            for mode in modes:
                for system in order:
                    env = caches.env(mode, system, model)
                    r = one(model, system, str(rep + 1), {**env, **long})
                    runs[model][mode][system].append(r)
                    log(show(f"rep {rep + 1} {model} {mode} {system}", r))
                    if not args.no_fixed:
                        env = caches.env(mode, system, model)
                        r = one(model, system, str(rep + 1), {**env, **tiny})
                        fixed[model][mode][system].append(r)
                        log(show(f"     fixed {model} {mode} {system}", r))
    new = {}
    if not args.no_new_model:
        for rep in range(args.reps):
            for system in NEW_MODEL_SYSTEMS:
                r = run_one(
                    "new_model.py",
                    system,
                    str(rep + 1),
                    timeout=args.timeout,
                    env=caches.env("cold", system, "new"),
                )
                new.setdefault(system, []).append(r)
                log(show(f"new model rep {rep + 1} {system}", r))
    micro = {} if args.no_micro else run_one("micro.py", timeout=args.timeout, env={})
    table = {
        m: {mode: {s: summarise(runs[m][mode][s], fixed[m][mode][s]) for s in systems} for mode in modes}
        for m in models
    }
    lines = header(args, started, commit) + headline(table, modes) + split_table(table, modes)
    lines += new_model_table(new) + full_table(table) + micro_lines(micro)
    lines += [
        "",
        "Wall times on a 2-core machine: compare rows of one table, not across tables. Untuned posteriors: "
        "the peers sample our compiled log-density; the seconds they spent building it are not counted.",
    ]
    with open(os.path.join(RESULTS, f"{args.out}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(RESULTS, f"{args.out}.json"), "w") as f:
        json.dump(
            {
                "started": started.isoformat(),
                "commit": commit,
                "argv": args.argv,
                "runs": runs,
                "fixed": fixed,
                "new_model": new,
                "micro": micro,
            },
            f,
            indent=1,
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
