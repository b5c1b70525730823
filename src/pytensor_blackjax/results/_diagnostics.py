"""After sampling: one concise warning naming every problem found, with the usual thresholds."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from pytensor_blackjax.results._convergence import rhat_and_ess

__all__ = ["ApproximationWarning", "SamplingWarning", "diagnose", "is_approximate", "warn_on_problems"]

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100
EBFMI_MIN = 0.3


class SamplingWarning(UserWarning):
    """Sampling finished, but the draws show a problem (divergences, R-hat, ESS, tree depth, E-BFMI)."""


class ApproximationWarning(UserWarning):
    """The draws come from a fitted approximation (Pathfinder, VI): R-hat and ESS say nothing about it."""


def is_approximate(tree: xr.DataTree) -> bool:
    """Whether the draws are independent draws of an approximation (``attrs["approximate"]``)."""
    return bool(int(tree.attrs.get("approximate", 0) or 0))


def _ebfmi(energy: np.ndarray) -> np.ndarray:
    num = np.mean(np.diff(energy, axis=1) ** 2, axis=1)
    den = np.var(energy, axis=1)
    return num / np.maximum(den, 1e-300)


def _rhat_and_ess_by_variable(post, chains: int, draws: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-hat and bulk ESS of every finite, non-constant entry, and the variable each belongs to."""
    columns, owners = [], []
    for name in post.data_vars:
        if post[name].size > 0:  # zero-length: nothing to judge
            columns.append(np.asarray(post[name].values, dtype=float).reshape(chains, draws, -1))
            owners += [name] * columns[-1].shape[2]
    if not columns:
        return np.empty(0), np.empty(0), np.empty(0, dtype=object)
    x, owners = np.concatenate(columns, axis=2), np.array(owners, dtype=object)
    judged = np.all(np.isfinite(x), axis=(0, 1)) & (np.ptp(x, axis=(0, 1)) > 0)  # constants: skip
    if not judged.any():
        return np.empty(0), np.empty(0), np.empty(0, dtype=object)
    with np.errstate(all="ignore"):
        rhat, ess = rhat_and_ess(x[:, :, judged])
    return rhat, ess, owners[judged]


def _worst(owners: np.ndarray, values: np.ndarray, bad: np.ndarray, sign: int, most: int = 3) -> str:
    """The variables with flagged entries, worst first, at most ``most`` named."""
    order = np.argsort(sign * np.nan_to_num(values, nan=-sign * np.inf))
    names = list(dict.fromkeys(owners[i] for i in order if bad[i]))
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


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
                f"{n} divergent transition{'s' if n > 1 else ''} ({n} of {chains * draws} draws): "
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
    if chains >= 2 and draws >= 4 and not is_approximate(tree):
        rhat, ess, owners = _rhat_and_ess_by_variable(tree["posterior"], chains, draws)
        if rhat.size and np.nanmax(rhat) > RHAT_MAX:
            problems.append(
                f"R-hat up to {np.nanmax(rhat):.3f} ({_worst(owners, rhat, rhat > RHAT_MAX, -1)}; "
                f"> {RHAT_MAX}): chains disagree; run longer"
            )
        low = ess < ESS_PER_CHAIN_MIN * chains
        if ess.size and low.any():
            problems.append(
                f"bulk ESS as low as {np.nanmin(ess):.0f} ({_worst(owners, ess, low, 1)}; "
                f"< {ESS_PER_CHAIN_MIN} per chain): run more draws"
            )
    return problems
    stats = tree["sample_stats"] if "sample_stats" in tree.children else None
    chains, draws = tree["posterior"].sizes["chain"], tree["posterior"].sizes["draw"]
    if stats is not None and "diverging" in stats.data_vars:
        n = int(np.asarray(stats["diverging"].values).sum())
        if n:
            problems.append(
                f"{n} divergent transition{'s' if n > 1 else ''} ({n} of {chains * draws} draws): "
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


# The warning points at the user's line, however deep inside the package it is raised.
_PACKAGE = str(Path(__file__).resolve().parents[1])


def warn_on_problems(tree: xr.DataTree) -> None:
    if is_approximate(tree):
        warnings.warn(
            f"{tree.attrs.get('sampler', 'this sampler')} draws independently from a fitted approximation: "
            "R-hat and ESS are not meaningful (left out of the checks, summary and report) and its sds can "
            "be well off the posterior's; check against NUTS before trusting them.",
            ApproximationWarning,
            skip_file_prefixes=(_PACKAGE,),
        )
    problems = diagnose(tree)
    if problems:
        message = "sampling diagnostics: " + "; ".join(problems) + "."
        warnings.warn(message, SamplingWarning, skip_file_prefixes=(_PACKAGE,))
