"""The diagnostics of a result, computed once: the post-sampling warning and the report render them."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from pytensor_blackjax.results._checks import (
    Diagnostic,
    divergence_check,
    ebfmi_check,
    ess_check,
    not_computed,
    not_meaningful,
    rhat_check,
    tree_depth_check,
)
from pytensor_blackjax.results._convergence import rhat_and_ess

__all__ = [
    "ApproximationWarning",
    "Convergence",
    "SamplingWarning",
    "convergence_of",
    "diagnose",
    "diagnostics",
    "is_approximate",
    "warn_on_problems",
]

# Warnings point at the user's line, however deep inside the package they are raised.
_PACKAGE = str(Path(__file__).resolve().parents[1])


class SamplingWarning(UserWarning):
    """Sampling finished, but the draws show a problem (divergences, R-hat, ESS, tree depth, E-BFMI)."""


class ApproximationWarning(UserWarning):
    """The draws come from a fitted approximation (Pathfinder, VI): R-hat and ESS say nothing about it."""


def is_approximate(tree: xr.DataTree) -> bool:
    """Whether the draws are independent draws of an approximation (``attrs["approximate"]``)."""
    return bool(int(tree.attrs.get("approximate", 0) or 0))


@dataclass(frozen=True)
class Convergence:
    """R-hat and ESS per posterior entry, labelled (e.g. ``theta[3]``).

    Attributes:
        labels: one per entry.
        rhat: rank-normalised split R-hat.
        ess_bulk: bulk effective sample size.
        ess_tail: tail effective sample size, when computed (ArviZ's summary has it).
    """

    labels: Sequence[str]
    rhat: np.ndarray
    ess_bulk: np.ndarray
    ess_tail: np.ndarray | None = None


class _Labels(Sequence[str]):
    """Entry labels (``theta[3]``) made on demand: a check names one entry, the posterior may have 1e6."""

    def __init__(self, shapes: dict[str, tuple[int, ...]], columns: np.ndarray):
        self._shapes, self._columns = shapes, columns  # columns: kept flat indices into all entries
        self._starts = np.cumsum([0, *(int(np.prod(s)) for s in shapes.values())])

    def __len__(self) -> int:
        return len(self._columns)

    def __getitem__(self, i):
        column = int(self._columns[i])
        k = int(np.searchsorted(self._starts, column, side="right")) - 1
        name, shape = list(self._shapes.items())[k]
        index = np.unravel_index(column - self._starts[k], shape) if shape else ()
        return name if not shape else f"{name}[{', '.join(str(int(j)) for j in index)}]"


def convergence_of(tree: xr.DataTree) -> Convergence:
    """R-hat and bulk ESS of every non-constant, finite entry (NumPy; see `_convergence`)."""
    post = tree["posterior"]
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    values = {str(k): np.asarray(post[str(k)].values, dtype=float) for k in post.data_vars}
    values = {k: v for k, v in values.items() if v.size > 0}  # zero-length: nothing to judge
    if not values:
        return Convergence([], np.zeros(0), np.zeros(0))
    x = np.concatenate([v.reshape(chains, draws, -1) for v in values.values()], axis=2)
    keep = np.flatnonzero(np.all(np.isfinite(x), axis=(0, 1)) & (np.ptp(x, axis=(0, 1)) > 0))  # no constants
    labels = _Labels({k: v.shape[2:] for k, v in values.items()}, keep)
    if not len(keep):
        return Convergence(labels, np.zeros(0), np.zeros(0))
    with np.errstate(all="ignore"):
        rhat, ess = rhat_and_ess(x[:, :, keep])
    return Convergence(labels, rhat, ess)


def _stat(tree: xr.DataTree, name: str) -> np.ndarray | None:
    if "sample_stats" in tree.children and name in tree["sample_stats"].data_vars:
        return np.asarray(tree["sample_stats"][name].values)
    return None


def diagnostics(tree: xr.DataTree, convergence: Convergence | None = None) -> list[Diagnostic]:
    """Every check that applies to ``tree``: divergences, E-BFMI and tree depth when the sampler reports
    them, then R-hat and ESS (with 2 chains and 4 draws or more).

    Args:
        tree: a sampling result.
        convergence: R-hat and ESS already computed (the report passes ArviZ's); computed with
            `convergence_of` otherwise.
    """
    if "posterior" not in tree.children:
        return []
    out = []
    diverging = _stat(tree, "diverging")
    if diverging is not None:
        out.append(divergence_check(diverging))
    energy = _stat(tree, "energy")
    if energy is not None and energy.shape[1] > 2:
        out.append(ebfmi_check(energy))
    depth, hit_max = _stat(tree, "tree_depth"), _stat(tree, "reached_max_treedepth")
    if depth is not None or hit_max is not None:
        out.append(tree_depth_check(depth, hit_max))
    chains, draws = tree["posterior"].sizes["chain"], tree["posterior"].sizes["draw"]
    if is_approximate(tree):
        return [*out, not_meaningful(str(tree.attrs.get("sampler", "This sampler")))]
    if chains < 2 or draws < 4:
        return [*out, not_computed()]
    conv = convergence if convergence is not None else convergence_of(tree)
    out.append(rhat_check(conv.rhat, conv.labels))
    out.append(ess_check(conv.ess_bulk, conv.labels, chains, "bulk"))
    if conv.ess_tail is not None:
        out.append(ess_check(conv.ess_tail, conv.labels, chains, "tail"))
    return out


def diagnose(tree: xr.DataTree) -> list[str]:
    """Plain-words problems of a result (the warning phrases of the failed checks); empty when all is well."""
    return [d.warning for d in diagnostics(tree) if not d.ok and d.warning]


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
