"""Process CPU per gradient of the driver's sampling phase, warm: ``sampling_cpu.py MODEL [ROUNDS]``.

Each round samples the same model twice with the same seed and warmup (programs loaded or compiled
once beforehand), 200 and 2200 draws per chain, 4 chains, and divides the difference of the process
CPU time by the difference of the gradients (``n_steps``): what 2000 draws per chain cost per gradient,
warmup, start-up and compilation cancelled out. Prints one line per model with every round's figure
and their median. Compare two versions by alternating processes of each (load drifts).
"""

from __future__ import annotations

import sys
import time
import warnings

import models
import numpy as np


def run(compiled, draws: int) -> tuple[float, int]:
    import pytensor_blackjax as pbj

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = time.process_time()
        tree = pbj.sample(compiled, draws=draws, tune=500, chains=4, seed=1, progressbar=False)
        return time.process_time() - cpu, int(tree["sample_stats"]["n_steps"].sum())


def main() -> None:
    import pytensor_blackjax as pbj

    name, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3
    compiled = pbj.compile(models.ours(name))
    run(compiled, 100)  # programs compiled or loaded
    figures = []
    for _ in range(rounds):
        short, long = run(compiled, 200), run(compiled, 2200)
        figures.append((long[0] - short[0]) / (long[1] - short[1]) * 1e6)
    each = " ".join(f"{f:.2f}" for f in figures)
    print(f"{name}: CPU us per gradient {each}, median {np.median(figures):.2f}")


if __name__ == "__main__":
    main()
