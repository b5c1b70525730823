"""After sampling: one concise warning naming every problem found, with the usual thresholds."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from pytensor_blackjax.results._convergence import rhat_and_ess

__all__ = ["SamplingWarning", "diagnose", "warn_on_problems"]

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100
EBFMI_MIN = 0.3


class SamplingWarning(UserWarning):
    """Sampling finished, but the draws show a problem (divergences, R-hat, ESS, tree depth, E-BFMI)."""


def _ebfmi(energy: np.ndarray) -> np.ndarray:
    num = np.mean(np.diff(energy, axis=1) ** 2, axis=1)
    den = np.var(energy, axis=1)
    return num / np.maximum(den, 1e-300)


def diagnose(tree: xr.DataTree, *, max_tree_depth: int | None = None) -> list[str]:
    """Plain-words problems of a result; empty when all is well."""
    problems = []
    if "posterior" not in tree.children:
        return problems
    stats = tree["sample_stats"] if "sample_stats" in tree.children else None
    chains, draws = tree["posterior"].sizes["chain"], tree["posterior"].sizes["draw"]
    if stats is not None and "diverging" in stats.data_vars:
        n = int(np.asarray(stats["diverging"].values).sum())
        if n:
            problems.append(
                f"{n} divergent transitions ({100 * n / (chains * draws):.1f}% of draws): "
                "raise target_accept or reparameterise (e.g. non-centered)"
            )
    if stats is not None and "reached_max_treedepth" in stats.data_vars:
        frac = float(np.asarray(stats["reached_max_treedepth"].values).mean())
        if frac > 0.01:
            problems.append(
                f"{100 * frac:.1f}% of draws hit the maximum tree depth: raise max_tree_depth "
                "or reparameterise"
            )
    if stats is not None and "energy" in stats.data_vars and draws > 2:
        low = [i for i, e in enumerate(_ebfmi(np.asarray(stats["energy"].values))) if e < EBFMI_MIN]
        if low:
            problems.append(
                f"E-BFMI below {EBFMI_MIN} in chains {low}: the posterior may be heavy-tailed "
                "or poorly adapted"
            )
    if chains >= 2 and draws >= 4:
        post = tree["posterior"]
        columns = [
            np.asarray(post[name].values, dtype=float).reshape(chains, draws, -1)
            for name in post.data_vars
            if post[name].size > 0
        ]  # zero-length: nothing to judge
        worst_rhat, worst_ess = 1.0, np.inf
        if columns:
            x = np.concatenate(columns, axis=2)
            x = x[:, :, np.all(np.isfinite(x), axis=(0, 1)) & (np.ptp(x, axis=(0, 1)) > 0)]  # constants: skip
            if x.shape[2]:
                with np.errstate(all="ignore"):
                    rhat, ess = rhat_and_ess(x)
                    worst_rhat, worst_ess = float(np.nanmax(rhat)), float(np.nanmin(ess))
        if worst_rhat > RHAT_MAX:
            problems.append(f"R-hat up to {worst_rhat:.3f} (> {RHAT_MAX}): chains disagree; run longer")
        if worst_ess < ESS_PER_CHAIN_MIN * chains:
            problems.append(
                f"bulk ESS as low as {worst_ess:.0f} (< {ESS_PER_CHAIN_MIN} per chain): run more draws"
            )
    return problems


def warn_on_problems(tree: xr.DataTree) -> None:
    problems = diagnose(tree)
    if problems:
        warnings.warn("sampling diagnostics: " + "; ".join(problems) + ".", SamplingWarning, stacklevel=3)
