"""Sampling gradients per ESS at several NUTS target acceptance rates: ``target_accept.py [OUT.md]``.

Every benchmark model (``models.MODELS``), ``NUTS(target_accept=t)`` for t in 0.8 (the default), 0.85
and 0.9, seeds 1-3, 4 chains x 1000 warmup + 1000 draws, in one process (programs compiled or loaded
once per model and rate). For each model and rate: the sampling phase's gradients (``n_steps``) per
minimum bulk and tail ESS over every scalar of the posterior, means over the seeds, with the step size,
the sampling acceptance rate and divergences. Gradients per ESS do not depend on the machine's load, so
the study runs beside other work. Writes a Markdown table (default
``benchmarks/results/target_accept.md``).
"""

from __future__ import annotations

import datetime
import subprocess
import sys
import warnings
from pathlib import Path

import models
import numpy as np

RATES = (0.8, 0.85, 0.9)
SEEDS = (1, 2, 3)
DRAWS = TUNE = 1000
CHAINS = 4
OUT = Path(__file__).parent / "results" / "target_accept.md"


def one(compiled, rate: float, seed: int) -> dict[str, float]:
    import arviz_stats

    import pytensor_blackjax as pbj

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = pbj.sample(
            compiled,
            draws=DRAWS,
            tune=TUNE,
            chains=CHAINS,
            seed=seed,
            progressbar=False,
            sampler=pbj.samplers.NUTS(target_accept=rate),
        )
    stats = tree["sample_stats"]
    posterior = tree["posterior"].to_dataset()
    grads = float(stats["n_steps"].sum())
    bulk = float(arviz_stats.ess(posterior, method="bulk").to_array().min())
    tail = float(arviz_stats.ess(posterior, method="tail").to_array().min())
    return {
        "bulk": grads / bulk,
        "tail": grads / tail,
        "step": float(stats["step_size"].mean()),
        "accept": float(stats["acceptance_rate"].mean()),
        "divergences": float(stats["diverging"].sum()),
    }


def main() -> None:
    import pytensor_blackjax as pbj

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip()
    lines = [
        f"# Sampling gradients per ESS by NUTS target acceptance ({datetime.date.today()}, commit {commit})",
        "",
        "Command: `benchmarks/target_accept.py`. Each row: means over seeds 1-3 of 4 chains x 1000 warmup + "
        "1000 draws; gradients of the sampling phase per minimum bulk (tail) ESS over every scalar; lower is "
        "better. The default is 0.8. Models marked * are posteriordb posteriors no default was tuned on.",
        "",
        "| model | target | grads / bulk ESS | grads / tail ESS | step size | acceptance | "
        "divergences (3 runs) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in models.MODELS:
        compiled = pbj.compile(models.ours(name))
        mark = "*" if name in models.UNTUNED else ""
        for rate in RATES:
            runs = [one(compiled, rate, seed) for seed in SEEDS]
            mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
            row = (
                f"| {name}{mark} | {rate} | {mean['bulk']:.2f} | {mean['tail']:.2f} | {mean['step']:.3f} | "
                f"{mean['accept']:.3f} | {mean['divergences'] * len(SEEDS):.0f} |"
            )
            lines.append(row)
            print(row, flush=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
