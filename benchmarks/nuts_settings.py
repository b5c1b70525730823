"""Sampling gradients per ESS as one NUTS setting varies: ``nuts_settings.py FIELD VALUES [options]``.

``FIELD`` is a field of ``pbj.samplers.NUTS`` (``target_accept``, ``step_jitter``, ...) and ``VALUES``
a comma-separated list of its values. Every benchmark model (``models.MODELS``, or ``--models``), every
value, seeds 1-3 (``--seeds``), 4 chains x 1000 warmup + 1000 draws, in one process (programs compiled
or loaded once per model and value). For each model and value: the sampling phase's gradients
(``n_steps``) per minimum bulk and tail ESS over every scalar of the posterior, means over the seeds,
with the step size, the sampling acceptance rate and the divergences of all seeds. Gradients per ESS do
not depend on the machine's load. Writes ``benchmarks/results/nuts-FIELD.md`` (or ``--out``).

Examples:
    benchmarks/nuts_settings.py target_accept 0.8,0.85,0.9
    benchmarks/nuts_settings.py step_jitter 0,0.1 --seeds 1,2,3,4,5,6
    benchmarks/nuts_settings.py avoid_resonance false,auto,true --seeds 1,2,3,4,5,6
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import warnings
from pathlib import Path

import models
import numpy as np

DRAWS = TUNE = 1000
CHAINS = 4
RESULTS = Path(__file__).parent / "results"


def one(compiled, sampler, seed: int) -> dict[str, float]:
    import arviz_stats

    import pytensor_blackjax as pbj

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = pbj.sample(
            compiled, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=seed, progressbar=False, sampler=sampler
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


def _value(text: str) -> bool | float | str:
    """A field's value from the command line: ``true``/``false`` for a switch, a number, else the word."""
    switch = {"true": True, "false": False}.get(text.strip().lower())
    if switch is not None:
        return switch
    try:
        return float(text)
    except ValueError:
        return text.strip()


def _shown(value: bool | float | str) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def main() -> None:
    import pytensor_blackjax as pbj

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("field", help="a field of pbj.samplers.NUTS")
    parser.add_argument("values", help="comma-separated values of it")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--models", default=",".join(models.MODELS))
    parser.add_argument("--out", default=None, help="results file (default: results/nuts-FIELD.md)")
    args = parser.parse_args()
    values = [_value(v) for v in args.values.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out) if args.out else RESULTS / f"nuts-{args.field}.md"
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip()
    command = f"benchmarks/nuts_settings.py {args.field} {args.values} --seeds {args.seeds}"
    if args.models != ",".join(models.MODELS):
        command += f" --models {args.models}"
    lines = [
        f"# Sampling gradients per ESS by NUTS {args.field} ({datetime.date.today()}, commit {commit})",
        "",
        f"Command: `{command}`. Each row: means over seeds {args.seeds} of {CHAINS} chains x {TUNE} warmup "
        f"+ {DRAWS} draws; gradients of the sampling phase per minimum bulk (tail) ESS over every scalar; "
        f"lower is better. NUTS's default: {args.field}={getattr(pbj.samplers.NUTS(), args.field)}. Models "
        "marked * are posteriordb posteriors no default was tuned on.",
        "",
        f"| model | {args.field} | grads / bulk ESS | grads / tail ESS | step size | acceptance | "
        f"divergences ({len(seeds)} runs) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in args.models.split(","):
        compiled = pbj.compile(models.ours(name))
        mark = "*" if name in models.UNTUNED else ""
        for value in values:
            sampler = pbj.samplers.NUTS(**{args.field: value})
            runs = [one(compiled, sampler, seed) for seed in seeds]
            mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
            row = (
                f"| {name}{mark} | {_shown(value)} | {mean['bulk']:.2f} | {mean['tail']:.2f} | "
                f"{mean['step']:.3f} | {mean['accept']:.3f} | {mean['divergences'] * len(seeds):.0f} |"
            )
            lines.append(row)
            print(row, flush=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
