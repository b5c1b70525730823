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
    "diagnostic_stride",
    "diagnostics",
    "is_approximate",
    "warn_on_problems",
]

# Warnings point at the user's line, however deep inside the package they are raised.
_PACKAGE = str(Path(__file__).resolve().parents[1])
MAX_VALUES_PER_ENTRY = 2**18  # draws over all chains `convergence_of` ranks per entry (4 x 65 536)
MAX_VALUES = 2**26  # ... and over all entries (500 entries of 4 x 32 768 draws)


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


def _numeric(values: np.ndarray) -> np.ndarray:
    """The draws as stored, booleans as 0/1 (NumPy takes no range of booleans)."""
    return values.astype(np.int8) if values.dtype == bool else values


def diagnostic_stride(chains: int, draws: int, entries: int) -> int:
    """Every how many draws `convergence_of` reads: 1 unless an entry has more than
    `MAX_VALUES_PER_ENTRY` draws over all chains or all entries together more than `MAX_VALUES`."""
    per_entry = chains * draws
    return max(1, -(-per_entry // MAX_VALUES_PER_ENTRY), -(-per_entry * entries // MAX_VALUES))


def convergence_of(tree: xr.DataTree) -> Convergence:
    """R-hat and bulk ESS of every non-constant, finite entry (NumPy; see `_convergence`).

    A long run is judged on evenly spaced draws, every `diagnostic_stride`-th of each chain: ranks and
    autocorrelations of all of them would cost minutes and gigabytes (a run of 2 x 4.4 million draws
    of 11 entries interrupted by Ctrl-C: over 60 s and 14 GB). Thinning keeps R-hat's comparison of the
    chains, and the bulk ESS of the thinned chains is at most the whole chains' (about equal where draws
    that far apart are still correlated, the case the ESS check is there for).
    """
    post = tree["posterior"]
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    values = {str(k): _numeric(np.asarray(post[str(k)])).reshape(chains, draws, -1) for k in post.data_vars}
    values = {k: v for k, v in values.items() if v.size > 0}  # zero-length: nothing to judge
    if not values:
        return Convergence([], np.zeros(0), np.zeros(0))
    # constants and entries with non-finite draws are left out, judged on every draw
    keep = np.flatnonzero(
        np.concatenate(
            [np.all(np.isfinite(v), axis=(0, 1)) & (np.ptp(v, axis=(0, 1)) > 0) for v in values.values()]
        )
    )
    labels = _Labels({k: post[k].shape[2:] for k in values}, keep)
    if not len(keep):
        return Convergence(labels, np.zeros(0), np.zeros(0))
    stride = diagnostic_stride(chains, draws, len(keep))
    x = np.concatenate([np.asarray(v[:, ::stride], dtype=float) for v in values.values()], axis=2)
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
