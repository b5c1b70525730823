"""The SBC study of docs/validation.md: three models x 1000 simulations through ``pbj.sample``, and the power.

Each model's study runs ``simulation_based_calibration`` (one chain per fit, 99 draws kept of 396 steps,
400 warmup steps) and is saved when it finishes, to ``benchmarks/results/sbc/NAME.npz`` (ranks,
divergences, settings, commit, date), so that a long run that is stopped keeps what it finished.
``--write-docs`` then writes the results and the power (simulated, no sampling) into
docs/validation.md between the ``sbc-results`` markers, with the commit and date of each study.

    .venv/bin/python benchmarks/sbc.py [--simulations 1000] [--only NAME ...] [--write-docs] [--docs-only]
    ./dev sbc                                            # the same, with --write-docs
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pytensor_blackjax.validate._sbc_power import SCALES, SHIFTS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "sbc"
DOCS = ROOT / "docs" / "validation.md"
BEGIN, END = "<!-- sbc-results:begin (written by benchmarks/sbc.py) -->", "<!-- sbc-results:end -->"
ALPHA = 0.01
SETTINGS = {"num_draws": 99, "thin": 4, "tune": 400}
SEED = 12
CI_SIMULATIONS = 200  # tests/test_sbc.py


def commit() -> str:
    """The commit checked out (``+dirty`` when src/ has changes), read when the study starts."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def run_case(case, simulations: int) -> Path:
    import pytensor_blackjax as pbj
    from pytensor_blackjax.validate import simulation_based_calibration

    started_at = commit()
    t0 = time.perf_counter()
    compiled = pbj.compile(case.build())
    result = simulation_based_calibration(
        compiled, case.simulate, num_simulations=simulations, seed=SEED, sampler=case.sampler, **SETTINGS
    )
    seconds = time.perf_counter() - t0
    meta = {
        "name": case.name,
        "description": case.description,
        "sampler": repr(case.sampler),
        "simulations": simulations,
        "seconds": round(seconds, 1),
        "commit": started_at,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        **SETTINGS,
        "seed": SEED,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{case.name}.npz"
    np.savez(
        path,
        meta=json.dumps(meta),
        divergences=result.divergences,
        **{f"rank_{k}": v for k, v in result.ranks.items()},
    )
    verdict = result.check(ALPHA)
    print(f"{case.name}: {'PASS' if verdict.passed else 'FAIL'} in {seconds:.0f} s; {verdict.failures()}")
    return path


def load(path: Path):
    from pytensor_blackjax.validate import SBCResult

    with np.load(path) as saved:
        meta = json.loads(str(saved["meta"]))
        ranks = {k.removeprefix("rank_"): saved[k] for k in saved.files if k.startswith("rank_")}
        return meta, SBCResult(ranks, int(meta["num_draws"]), saved["divergences"])


def results_table() -> list[str]:
    lines = [
        "| model | simulations | scalars | smallest p | threshold | fits diverged | verdict | seconds | "
        "commit, date |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("*.npz")):
        meta, result = load(path)
        verdict = result.check(ALPHA)
        scalars = sum(int(np.prod(r.shape[1:])) for r in result.ranks.values())
        lines.append(
            f"| `{meta['name']}`: {meta['description']} | {meta['simulations']} | {scalars} | "
            f"{verdict.smallest_pvalue():.3f} | {verdict.threshold:.4f} | {verdict.divergent_share:.1%} | "
            f"{'PASS' if verdict.passed else 'FAIL: ' + '; '.join(verdict.failures())} | "
            f"{meta['seconds']:.0f} | {meta['commit']}, {meta['date']} |"
        )
    return lines


def power_table() -> list[str]:
    from pytensor_blackjax.validate import sbc_power

    lines = [
        "| simulations | level per scalar | false alarms | too narrow, detected 90% | shift (sds), "
        "detected 90% | too narrow, detected 50% | shift, detected 50% |",
        "|---|---|---|---|---|---|---|",
    ]
    for simulations, alpha, label in [
        (1000, ALPHA, "0.01 (one scalar)"),
        (1000, ALPHA / 10, "0.001 (10 scalars)"),
        (CI_SIMULATIONS, ALPHA, "0.01 (CI study)"),
        (256, ALPHA, "0.01 (the old study's size)"),
    ]:
        power = sbc_power(simulations, SETTINGS["num_draws"], alpha=alpha, studies=1000)

        def pct(x):
            return "beyond the grid" if x is None else f"{x:.0%}"

        def sd(x):
            return "beyond the grid" if x is None else f"{x:.2f}"

        lines.append(
            f"| {simulations} | {label} | {power.false_alarms:.1%} | {pct(power.smallest_narrowing(0.9))} | "
            f"{sd(power.smallest_shift(0.9))} | {pct(power.smallest_narrowing(0.5))} | "
            f"{sd(power.smallest_shift(0.5))} |"
        )
    return lines


def plot_bands(path: Path) -> None:
    """One panel per model: every scalar's ECDF minus the uniform CDF, inside the simultaneous band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    saved = sorted(RESULTS.glob("*.npz"))
    fig, axes = plt.subplots(1, len(saved), figsize=(4.2 * len(saved), 3.4), squeeze=False)
    for ax, file in zip(axes[0], saved, strict=True):
        meta, result = load(file)
        verdict = result.check(ALPHA)
        n, z = result.num_simulations, verdict.band.points
        ax.fill_between(z, verdict.band.lower / n - z, verdict.band.upper / n - z, color="0.85", step="mid")
        for name, counts in verdict.counts.items():
            flat = counts.reshape(len(z), -1)
            for j in range(flat.shape[1]):
                ax.step(z, flat[:, j] / n - z, where="mid", lw=0.8, label=name if j == 0 else None)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(f"{meta['name']} ({'PASS' if verdict.passed else 'FAIL'})", fontsize=9)
        ax.set_xlabel("rank / (L + 1)")
        ax.legend(fontsize=7, loc="lower left")
    axes[0][0].set_ylabel("ECDF - uniform CDF")
    fig.suptitle(
        f"SBC rank ECDFs in their simultaneous {1 - ALPHA:.0%} family-wise bands (Bonferroni per model)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_docs() -> None:
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    body = [
        BEGIN,
        "",
        f"Results (`./dev sbc`; family-wise alpha = {ALPHA}, split over each model's scalars; "
        f"{SETTINGS['num_draws']} draws kept of {SETTINGS['num_draws'] * SETTINGS['thin']} steps after "
        f"{SETTINGS['tune']} warmup steps, one chain per fit, study seed {SEED}):",
        "",
        *results_table(),
        "",
        "![rank ECDFs of the three studies in their bands](../benchmarks/results/sbc/ecdf-bands.png)",
        "",
        f"Power (written {today} at {commit()}; 1000 simulated studies per entry, posterior draws from a "
        "deliberately narrowed or shifted exact posterior of the conjugate normal model; grid of "
        f"narrowings {', '.join(f'{1 - s:.0%}' for s in SCALES)}; of shifts "
        f"{', '.join(f'{s:g}' for s in SHIFTS)} sd):",
        "",
        *power_table(),
        "",
        END,
    ]
    plot_bands(RESULTS / "ecdf-bands.png")
    text = DOCS.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOCS} has no {BEGIN!r} ... {END!r} section to fill; add the two markers.")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOCS.write_text(head + "\n".join(body) + tail)
    print(f"wrote the SBC results into {DOCS}")


def main() -> None:
    from pytensor_blackjax.examples import sbc

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--simulations", type=int, default=1000)
    parser.add_argument("--only", nargs="*", default=None, help="model names (default: all three)")
    parser.add_argument("--write-docs", action="store_true", help="write docs/validation.md's SBC results")
    parser.add_argument("--docs-only", action="store_true", help="only write the docs from saved results")
    args = parser.parse_args()
    if not args.docs_only:
        for case in sbc.cases():
            if args.only is None or case.name in args.only:
                run_case(case, args.simulations)
                sys.stdout.flush()
    if args.write_docs or args.docs_only:
        write_docs()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
