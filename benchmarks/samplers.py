"""Which sampler for which posterior: every MCMC sampler on posteriordb posteriors, one table.

    .venv/bin/python benchmarks/samplers.py [--path ../shared/posteriordb] [--only NAME ...]

For each (posterior, sampler) the validation suite samples 1000 warmup + 1000 draws (4 chains; 32 for
the many-chain ChEES and MEADS) and compares with the reference draws. Written to
benchmarks/results/samplers.md: minimum ESS over the reference parameters, ESS per 1000 gradient
evaluations, ESS per second (compilation included), and the validation verdict.

Gradients are the sum of ``n_steps`` over the draws times the integrator's gradient evaluations per
step: one for leapfrog, two for the McLachlan integrator of MCLMC and adjusted MCLMC. They count the
sampling phase, except for SMC, whose draws are its particles: their ``n_steps`` are the leapfrog steps
each particle took while tempering, so SMC's count is its whole run.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from pathlib import Path

import numpy as np

from pytensor_blackjax.validate import run_validation

SAMPLERS = {
    "nuts": 4,
    "hmc": 4,
    "mala": 4,
    "mclmc": 4,
    "adjusted_mclmc": 4,
    "chees": 32,
    "meads": 32,
    "smc": 4,
}
DEFAULT_POSTERIORS = [
    "eight_schools-eight_schools_noncentered",
    "kidiq-kidscore_interaction",
    "arK-arK",
    "sblrc-blr",
]
GRADIENTS_PER_STEP = {"mclmc": 2, "adjusted_mclmc": 2}  # isokinetic McLachlan: two per step
OUT = Path(__file__).parent / "results" / "samplers.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=str(Path(__file__).parents[1] / ".." / "shared" / "posteriordb"))
    parser.add_argument("--only", nargs="*", default=DEFAULT_POSTERIORS)
    args = parser.parse_args()
    rows = []
    for posterior in args.only:
        for sampler, chains in SAMPLERS.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the table reports the verdict; warnings would repeat it
                report = run_validation(
                    args.path, sampler=sampler, only=[posterior], chains=chains, seeds=1, progress=False
                )
            (row,) = report.runs
            ess = row.min_ess
            grads = row.grad_evals * GRADIENTS_PER_STEP.get(sampler, 1) if row.grad_evals else None
            per_grad = 1000 * ess / grads if grads else np.nan
            rows.append(
                (posterior, sampler, chains, ess, per_grad, ess / row.seconds, row.seconds, row.status)
            )
            print(
                f"{posterior:45s} {sampler:15s} ESS={ess:8.0f} ESS/1000grad={per_grad:7.1f} "
                f"ESS/s={ess / row.seconds:8.1f} {row.status}",
                flush=True,
            )
    lines = [
        f"# Samplers on posteriordb posteriors ({time.strftime('%Y-%m-%d %H:%M')})",
        "",
        f"Machine: {platform.machine()}, 2 CPUs, Python {platform.python_version()}. "
        "1000 warmup + 1000 draws per chain; min ESS over the reference parameters; gradient evaluations "
        "after warmup (n_steps times 2 for the McLachlan integrator of mclmc and adjusted_mclmc; for smc, "
        "the whole tempering run); seconds include compilation. Verdict as in `pytensor-blackjax validate`.",
        "",
        "| posterior | sampler | chains | min ESS | ESS / 1000 gradients | ESS / s | seconds | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for posterior, sampler, chains, ess, per_grad, per_s, secs, status in rows:
        lines.append(
            f"| {posterior} | {sampler} | {chains} | {ess:.0f} | {per_grad:.1f} | {per_s:.1f} | "
            f"{secs:.1f} | {status} |"
        )
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
