"""The diagnostic checks of a sampling result: thresholds, formulas and words, in one place.

Each check returns a `Diagnostic`; the post-sampling `SamplingWarning` joins the short ``warning``
phrases of the failed ones, and the CLI report shows every one with its ``words``. Thresholds follow
Stan's and ArviZ's defaults (Vehtari et al. 2021 for R-hat and ESS, Betancourt 2016 for E-BFMI).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "EBFMI_MIN",
    "ESS_PER_CHAIN_MIN",
    "RHAT_MAX",
    "TAIL_PROB",
    "TREE_DEPTH_HIT_MAX",
    "Diagnostic",
    "divergence_check",
    "ebfmi",
    "ebfmi_check",
    "ess_check",
    "not_computed",
    "not_meaningful",
    "rhat_check",
    "tree_depth_check",
]

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100
EBFMI_MIN = 0.3
TREE_DEPTH_HIT_MAX = 0.01  # fraction of draws whose trajectory stopped at the maximum depth
# Tail ESS at the 5% and 95% quantiles (Vehtari et al. 2021; Stan's and ArviZ 0.x's definition), as
# `pbj.Until` checks it: ``arviz_stats.ess(..., method="tail", prob=TAIL_PROB)``. Without ``prob``, ArviZ
# 1.x (and its summary) takes the interval probability ``stats.ci_prob`` (0.89) and measures the 11% and
# 89% quantiles instead: other numbers.
TAIL_PROB = 0.05


@dataclass(frozen=True)
class Diagnostic:
    """One check of a result.

    Attributes:
        name: what is checked, e.g. "R-hat", "ESS (bulk)".
        value: the figure judged (worst R-hat, lowest ESS, lowest E-BFMI, divergences, fraction of
            draws at the maximum tree depth); NaN when not computed.
        threshold: the limit ``value`` is judged against.
        ok: whether the check passes.
        shown: ``value`` for display, with context (e.g. "max 1.003 (alpha)").
        words: what the outcome means, in a sentence or two (the report's text).
        warning: a short phrase for the post-sampling warning; empty when there is nothing to warn of.
    """

    name: str
    value: float
    threshold: float
    ok: bool
    shown: str
    words: str
    warning: str = ""


def divergence_check(diverging: np.ndarray) -> Diagnostic:
    """Divergent transitions among the ``(chain, draw)`` flags; any is a problem."""
    n, total = int(np.sum(diverging)), int(np.size(diverging))
    percent = 100 * n / max(total, 1)
    if n == 0:
        words = "No divergent transitions: the sampler explored the posterior without numerical trouble."
        return Diagnostic("Divergences", 0.0, 0.0, True, f"0 of {total}", words)
    return Diagnostic(
        "Divergences",
        float(n),
        0.0,
        False,
        f"{n} of {total}",
        f"{n} of {total} transitions ({percent:.2g}%) diverged: the sampler met curvature it could not "
        "follow, so the draws may be biased. Raise target_accept or reparameterise (e.g. non-centered).",
        f"{n} divergent transition{'s' if n > 1 else ''} ({n} of {total} draws): raise target_accept or "
        "reparameterise (e.g. non-centered)",
    )


def ebfmi(energy: np.ndarray) -> np.ndarray:
    """Energy Bayesian fraction of missing information of each chain of ``(chain, draw)`` energies."""
    num = np.mean(np.diff(energy, axis=1) ** 2, axis=1)
    den = np.var(energy, axis=1)
    return num / np.maximum(den, 1e-300)


def ebfmi_check(energy: np.ndarray) -> Diagnostic:
    """Every chain's E-BFMI at least `EBFMI_MIN` (needs more than 2 draws)."""
    values = ebfmi(energy)
    low = [i for i, e in enumerate(values) if e < EBFMI_MIN]
    shown = ", ".join(f"{e:.2f}" for e in values)
    if not low:
        words = f"Every chain is above {EBFMI_MIN}: momentum resampling explores the energy levels well."
        return Diagnostic("E-BFMI", float(np.min(values)), EBFMI_MIN, True, shown, words)
    return Diagnostic(
        "E-BFMI",
        float(np.min(values)),
        EBFMI_MIN,
        False,
        shown,
        f"Chains {low} are below {EBFMI_MIN}: the sampler moves slowly between energy levels, typical of "
        "heavy tails or poor adaptation.",
        f"E-BFMI below {EBFMI_MIN} in chains {low}: the posterior may be heavy-tailed or poorly adapted",
    )


def tree_depth_check(depth: np.ndarray | None, hit_max: np.ndarray | None) -> Diagnostic:
    """At most `TREE_DEPTH_HIT_MAX` of the draws stopped at the maximum tree depth."""
    frac = float(np.mean(hit_max)) if hit_max is not None and np.size(hit_max) else 0.0
    at_limit = f"{100 * frac:.1f}% at the limit"
    shown = at_limit if depth is None else f"mean {np.mean(depth):.1f}, max {int(np.max(depth))}; {at_limit}"
    if frac <= TREE_DEPTH_HIT_MAX:
        words = "Trajectories ended on their own (U-turn) rather than at the depth limit."
        return Diagnostic("Tree depth", frac, TREE_DEPTH_HIT_MAX, True, shown, words)
    return Diagnostic(
        "Tree depth",
        frac,
        TREE_DEPTH_HIT_MAX,
        False,
        shown,
        "Many trajectories stopped at the maximum tree depth: sampling is inefficient; raise "
        "max_tree_depth or reparameterise.",
        f"{100 * frac:.1f}% of draws hit the maximum tree depth: raise max_tree_depth or reparameterise",
    )


def _worst(values: np.ndarray, labels: Sequence[str], pick) -> tuple[float, str | None]:
    """The worst finite value and its label; (NaN, None) when none is finite."""
    values = np.asarray(values, dtype=float)
    finite = np.flatnonzero(np.isfinite(values))
    if not finite.size:
        return math.nan, None
    i = finite[pick(values[finite])]
    return float(values[i]), str(labels[i])


def _variables(values: np.ndarray, labels: Sequence[str], bad: np.ndarray, sign: int, most: int = 3) -> str:
    """The variables of the flagged entries, worst first: "tau, theta" (at most ``most`` named)."""
    order = np.flatnonzero(bad)
    order = order[np.argsort(sign * values[order], kind="stable")][:10_000]  # labels are made one by one
    names = list(dict.fromkeys(str(labels[int(i)]).split("[")[0] for i in order))
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def rhat_check(rhat: np.ndarray, labels: Sequence[str]) -> Diagnostic:
    """The largest R-hat at most `RHAT_MAX`; non-finite values (constants) are left out."""
    rhat = np.asarray(rhat, dtype=float)
    worst, label = _worst(rhat, labels, np.argmax)
    ok = label is None or worst <= RHAT_MAX
    shown = f"max {worst:.3f} ({label})"
    if ok:
        return Diagnostic("R-hat", worst, RHAT_MAX, True, shown, f"All chains agree (R-hat <= {RHAT_MAX}).")
    return Diagnostic(
        "R-hat",
        worst,
        RHAT_MAX,
        False,
        shown,
        f"Chains disagree about {label} (R-hat above {RHAT_MAX}): run longer or look at the trace plot "
        "for stuck chains.",
        f"R-hat up to {worst:.3f} ({_variables(rhat, labels, rhat > RHAT_MAX, -1)}; > {RHAT_MAX}): chains "
        "disagree; run longer",
    )


def ess_check(ess: np.ndarray, labels: Sequence[str], chains: int, kind: str = "bulk") -> Diagnostic:
    """The smallest ``kind`` ("bulk" or "tail") ESS at least `ESS_PER_CHAIN_MIN` per chain."""
    ess = np.asarray(ess, dtype=float)
    need = ESS_PER_CHAIN_MIN * chains
    low, label = _worst(ess, labels, np.argmin)
    ok = label is None or low >= need
    shown = f"min {low:.0f} ({label})"
    name = f"ESS ({kind})"
    if ok:
        words = (
            f"At least {need} effective draws ({ESS_PER_CHAIN_MIN} per chain) for every quantity: {kind} "
            "estimates are reliable."
        )
        return Diagnostic(name, low, need, True, shown, words)
    return Diagnostic(
        name,
        low,
        need,
        False,
        shown,
        f"Only {low:.0f} effective draws for {label} (want {need}): "
        f"{'means' if kind == 'bulk' else 'intervals'} are noisy; run more draws.",
        f"{kind} ESS as low as {low:.0f} ({_variables(ess, labels, ess < need, 1)}; < {ESS_PER_CHAIN_MIN} "
        "per chain): run more draws",
    )


def not_computed() -> Diagnostic:
    """R-hat and ESS need several chains and draws; nothing to warn of, but the report says so."""
    return Diagnostic(
        "R-hat and ESS",
        math.nan,
        math.nan,
        False,
        "not computed",
        "Convergence diagnostics need at least 2 chains and 4 draws.",
    )


def not_meaningful(sampler: str) -> Diagnostic:
    """R-hat and ESS of an approximation's independent draws: nothing to judge; the report says why."""
    return Diagnostic(
        "R-hat and ESS",
        math.nan,
        math.nan,
        True,
        "not meaningful",
        f"{sampler} draws independently from a fitted approximation, so R-hat and ESS say nothing about it; "
        "its means and sds can be off the posterior's (compare with NUTS).",
    )
