"""NUTS on a standard Gaussian at fixed step sizes: ``nuts_resonance.py [--dims 10,50] [--steps ...]``.

Blackjax's NUTS with the identity metric (an exact one) and a fixed step size, no adaptation, 4 chains x
2000 draws from a standard normal start, seeds 1 and 2: leapfrog gradients per draw and per minimum bulk
ESS of ``x`` and of ``x**2`` over the coordinates, means over the seeds. Around ``2 sin(pi / 7)``
(0.868) and ``2 sin(pi / 15)`` (0.416), the steps at which 7 and 15 leapfrog steps make one period of
the Gaussian, the trees stop detecting their U-turn (see
`pytensor_blackjax.samplers._adaptation.clear_of_resonance`). Writes
``benchmarks/results/nuts-resonance.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
CHAINS, DRAWS, SEEDS = 4, 2000, (1, 2)
DEFAULT_STEPS = {
    10: "0.6,0.7,0.8,0.83,0.85,0.865,0.87,0.875,0.88,0.89,0.9,0.95,0.97,1.0,1.05",
    50: "0.35,0.39,0.405,0.41,0.416,0.42,0.43,0.44,0.46,0.47,0.5",
}


def run(dims: int, step: float, seed: int) -> tuple[float, float, float]:
    """(gradients per draw, per min bulk ESS of x, per min bulk ESS of x**2) of one 4-chain run."""
    import arviz_stats
    import blackjax
    import jax
    import jax.numpy as jnp

    nuts = blackjax.nuts(lambda x: -0.5 * jnp.sum(x**2), step, jnp.ones(dims))

    def chain(key):
        start, rest = jax.random.split(key)
        state = nuts.init(jax.random.normal(start, (dims,)))

        def body(state, k):
            state, info = nuts.step(k, state)
            return state, (state.position, info.num_integration_steps)

        return jax.lax.scan(body, state, jax.random.split(rest, DRAWS))[1]

    xs, grads = jax.jit(jax.vmap(chain))(jax.random.split(jax.random.key(seed), CHAINS))
    xs, total = np.asarray(xs), float(np.sum(grads))
    ess_x = float(np.min(arviz_stats.ess(xs, method="bulk")))
    ess_x2 = float(np.min(arviz_stats.ess(xs**2, method="bulk")))
    return total / (CHAINS * DRAWS), total / ess_x, total / ess_x2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", default="10,50")
    parser.add_argument("--steps", default=None, help="comma-separated step sizes (default: per dims)")
    parser.add_argument("--out", default=str(RESULTS / "nuts-resonance.md"))
    args = parser.parse_args()
    import jax

    jax.config.update("jax_enable_x64", True)  # this script's own process: the chains in float64
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip()
    command = f"benchmarks/nuts_resonance.py --dims {args.dims}"
    command += f" --steps {args.steps}" if args.steps else ""
    lines = [
        f"# NUTS on a standard Gaussian at fixed step sizes ({datetime.date.today()}, commit {commit})",
        "",
        f"Command: `{command}`. Blackjax NUTS, identity metric, no adaptation; {CHAINS} chains x {DRAWS} "
        f"draws, means over seeds {', '.join(map(str, SEEDS))}. Resonant steps 2 sin(pi / (2^k - 1)): "
        "0.868 (k = 3), 0.416 (k = 4).",
        "",
        "| dims | step | step / nearest resonant step | gradients per draw | grads / ESS of x "
        "| grads / ESS of x^2 |",
        "|---|---|---|---|---|---|",
    ]
    from pytensor_blackjax.samplers._adaptation import resonant_step_sizes

    resonant = resonant_step_sizes(7)
    for dims in (int(d) for d in args.dims.split(",")):
        steps = args.steps or DEFAULT_STEPS.get(dims, DEFAULT_STEPS[10])
        for step in (float(s) for s in steps.split(",")):
            per_draw, x, x2 = np.mean([run(dims, step, seed) for seed in SEEDS], axis=0)
            nearest = resonant[np.argmin(np.abs(np.log(step / resonant)))]
            row = f"| {dims} | {step:g} | {step / nearest:.3f} | {per_draw:.2f} | {x:.2f} | {x2:.2f} |"
            lines.append(row)
            print(row, flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
