"""What the checks of an until-run cost against its sampling: rat tumors (`pbj.examples.rat_tumors`,
73 scalars), a 6-d Gaussian and the benchmark suite's logistic, diamonds, kidiq and arK
(benchmarks/models.py), 4 chains, chunks of 100, programs compiled beforehand.

One side (the code on ``PYTHONPATH``) prints one JSON line per run::

    python benchmarks/until_overhead.py run rats 1,2,3,4,5

CPU: the check's own CPU time, per thread (``time.thread_time`` of the thread that calls
``UntilCheck._check_at`` plus that of the worker threads in each block they compute), against the
process's CPU time (all threads: the chains' threads) spent in the driver's ``_sample_chunk``. The
process's CPU time during the checks (``cpu_check_process``) also counts other threads that happen to
run then (the first run of a process: the background import of xarray's Dataset). Wall:
``attrs["until_check_time"]`` against ``attrs["sampling_time"]``. On a shared machine CPU times scatter
far less than wall times.

Two versions alternated (git refs, each one's ``src`` unpacked into a temporary directory), ``rounds``
rounds of both models and both versions, then the medians (``summary`` prints them again)::

    python benchmarks/until_overhead.py compare main until --rounds 3 --seeds 1,2,3,4,5 [--models rats,kidiq]

Each run also prints its stopping draw: the versions must stop at the same draw.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

TARGETS = {
    "gauss": {"ess_bulk": 3000, "ess_tail": 1500, "rhat": 1.01},
    "rats": {"ess_bulk": 2000, "ess_tail": 1000, "rhat": 1.01},
}
# the benchmark suite's other models (benchmarks/models.py), with rat tumors' targets
for _name in ("logistic", "diamonds", "kidiq", "arK"):
    TARGETS[_name] = TARGETS["rats"]


def model(name: str):
    import numpy as np
    import pytensor.tensor as pt

    import pytensor_blackjax as pbj

    if name == "rats":
        return pbj.examples.rat_tumors()
    if name != "gauss":
        sys.path.insert(0, str(Path(__file__).parent))
        import models

        return models.ours(name)
    m = pbj.ModelBuilder()
    x = m.param("x", shape=(6,))
    m.add_logp(-0.5 * pt.sum((x / np.array([0.1, 0.5, 1.0, 2.0, 5.0, 10.0])) ** 2))
    return m.build()


def run(name: str, seeds: list[int]) -> None:
    import threading

    import pytensor_blackjax as pbj
    import pytensor_blackjax.run._driver as driver
    import pytensor_blackjax.run._until as until_module
    import pytensor_blackjax.run._until_diagnostics as diagnostics

    cpu = {"check": 0.0, "check_process": 0.0, "sampling": 0.0}
    lock = threading.Lock()

    def timed(f, key, clock):
        def g(*args, **kwargs):
            t0 = clock()
            try:
                return f(*args, **kwargs)
            finally:
                with lock:
                    cpu[key] += clock() - t0

        return g

    def in_workers(f):  # a block computed by a worker thread (the caller's own are in its thread time)
        timed_f = timed(f, "check", time.thread_time)
        return lambda *a, **k: (f if threading.current_thread() is threading.main_thread() else timed_f)(
            *a, **k
        )

    driver._sample_chunk = timed(driver._sample_chunk, "sampling", time.process_time)
    check_at = timed(until_module.UntilCheck._check_at, "check", time.thread_time)
    until_module.UntilCheck._check_at = timed(check_at, "check_process", time.process_time)
    diagnostics.rank_diagnostics = in_workers(diagnostics.rank_diagnostics)
    built = model(name)
    pbj.sample(built, draws=200, tune=200, chains=4, seed=0, progressbar=False)  # compile beforehand
    for seed in seeds:
        cpu.update(check=0.0, check_process=0.0, sampling=0.0)
        tree = pbj.sample(built, until=pbj.Until(**TARGETS[name]), chains=4, seed=seed, progressbar=False)
        a = tree.attrs
        row = {
            "model": name,
            "seed": seed,
            "draws": tree["posterior"].sizes["draw"],
            "checks": a["until_checks"],
            "reason": a["stop_reason"],
            "wall_check": a["until_check_time"],
            "wall_sampling": a["sampling_time"],
            "cpu_check": cpu["check"],
            "cpu_check_process": cpu["check_process"],
            "cpu_sampling": cpu["sampling"],
        }
        print(json.dumps(row), flush=True)


def unpack(ref: str, into: Path) -> Path:
    """The ``src`` directory of git ``ref``, unpacked into ``into``."""
    archive = subprocess.run(["git", "archive", ref, "src"], check=True, capture_output=True).stdout
    into.mkdir(parents=True)
    path = into / "archive.tar"
    path.write_bytes(archive)
    with tarfile.open(path) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def median_iqr(values: list[float]) -> str:
    import numpy as np

    q1, q2, q3 = np.percentile(values, [25, 50, 75]) * 100
    return f"{q2:.1f}% ({q1:.1f}-{q3:.1f}%)"


def summary(rows: list[dict]) -> None:
    import numpy as np

    groups = collections.defaultdict(list)
    for r in rows:
        groups[(r["model"], r["version"])].append(r)
    for (name, version), rs in sorted(groups.items()):
        cpu = [r["cpu_check"] / r["cpu_sampling"] for r in rs]
        wall = [r["wall_check"] / r["wall_sampling"] for r in rs]
        print(
            f"{name} {version}: {len(rs)} runs; check / sampling, CPU {median_iqr(cpu)},"
            f" wall {median_iqr(wall)};"
            f" CPU {np.median([r['cpu_check'] for r in rs]) * 1e3:.1f} ms /"
            f" {np.median([r['cpu_sampling'] for r in rs]) * 1e3:.0f} ms;"
            f" checks {sorted(collections.Counter(r['checks'] for r in rs).items())}"
        )
    stops = collections.defaultdict(dict)
    for r in rows:
        stops[(r["model"], r["seed"])].setdefault(r["version"], set()).add(r["draws"])
    print(
        "stopping draws:",
        {f"{m} seed {s}": {v: sorted(d) for v, d in by.items()} for (m, s), by in stops.items()},
    )


def compare(refs: list[str], rounds: int, seeds: str, out: Path, models: list[str]) -> None:
    here = Path(__file__).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        versions = {ref: unpack(ref, Path(tmp) / str(i)) for i, ref in enumerate(refs)}
        rows = []
        for round_ in range(rounds):
            for name in models:
                for version, src in versions.items():
                    env = {**os.environ, "PYTHONPATH": str(src)}
                    done = subprocess.run(
                        [sys.executable, str(here), "run", name, seeds],
                        env=env,
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    for line in done.stdout.splitlines():
                        if line.startswith("{"):
                            rows.append({**json.loads(line), "version": version, "round": round_})
                    with out.open("w") as f:
                        f.writelines(json.dumps(r) + "\n" for r in rows)
        summary(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run")
    one.add_argument("model", choices=sorted(TARGETS))
    one.add_argument("seeds")
    both = sub.add_parser("compare")
    both.add_argument("refs", nargs=2, metavar="REF")
    both.add_argument("--rounds", type=int, default=3)
    both.add_argument("--seeds", default="1,2,3,4,5")
    both.add_argument("--out", type=Path, default=Path("until_overhead.jsonl"))
    both.add_argument("--models", default=",".join(TARGETS), help="comma-separated (default: all)")
    show = sub.add_parser("summary")
    show.add_argument("path", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run(args.model, [int(s) for s in args.seeds.split(",")])
    elif args.command == "compare":
        compare(args.refs, args.rounds, args.seeds, args.out, args.models.split(","))
    else:
        summary([json.loads(line) for line in args.path.read_text().splitlines() if line.startswith("{")])


if __name__ == "__main__":
    main()
