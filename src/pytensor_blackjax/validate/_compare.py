"""Comparing one marginal of our draws with the reference draws: mean, sd and the whole distribution.

Three checks per parameter, each allowing for the Monte Carlo error of both sides:

- mean: ``z = |mean - mean_ref| / sqrt(mcse^2 + mcse_ref^2)`` with ``mcse = sd / sqrt(ESS_mean)``;
  passes when ``z <= Z_MAX``.
- sd: ``sd / sd_ref`` within ``1 +- SD_TOL``.
- marginal: the two-sample Kolmogorov-Smirnov distance ``D`` (largest gap between the empirical
  CDFs). For independent draws ``D`` exceeds ``c * sqrt(1/n + 1/m)`` with probability about
  ``alpha``, where ``c = sqrt(-log(alpha / 2) / 2)``. Autocorrelated draws carry less information, so
  ``n`` and ``m`` are effective sample sizes (the smaller of bulk and tail ESS on each side); the
  check passes when ``D <= KS_C * sqrt(1/n_eff + 1/m_eff)`` with ``alpha = KS_ALPHA``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["KS_ALPHA", "KS_C", "SD_TOL", "Z_MAX", "MarginalCheck", "compare", "effective_sizes"]

Z_MAX = 5.0
SD_TOL = 0.15
KS_ALPHA = 1e-4
KS_C = float(np.sqrt(-0.5 * np.log(KS_ALPHA / 2.0)))


@dataclass(frozen=True)
class EffectiveSizes:
    """ESS of one marginal: for the mean, and for the distribution (min of bulk and tail)."""

    mean: float
    dist: float
    bulk: float


def effective_sizes(draws: np.ndarray) -> EffectiveSizes:
    """ESS of ``draws`` shaped ``(chain, draw)``; constant draws count as one draw."""
    import arviz_stats

    if not np.all(np.isfinite(draws)) or np.ptp(draws) == 0:
        return EffectiveSizes(1.0, 1.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains make arviz warn; the ESS is still what we want
        mean = float(arviz_stats.ess(draws, method="mean"))
        bulk = float(arviz_stats.ess(draws, method="bulk"))
        tail = float(arviz_stats.ess(draws, method="tail", prob=(0.05, 0.95)))
    size = draws.size

    def clip(x):
        return float(np.clip(np.nan_to_num(x, nan=1.0), 1.0, size))

    return EffectiveSizes(clip(mean), clip(min(bulk, tail)), clip(bulk))


def ks_distance(x: np.ndarray, y: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic of flat samples ``x`` and ``y``."""
    x, y = np.sort(x.ravel()), np.sort(y.ravel())
    grid = np.concatenate([x, y])
    cdf_x = np.searchsorted(x, grid, side="right") / x.size
    cdf_y = np.searchsorted(y, grid, side="right") / y.size
    return float(np.max(np.abs(cdf_x - cdf_y)))


@dataclass(frozen=True)
class MarginalCheck:
    """The comparison of one parameter; ``ks_ratio`` is ``D`` over its limit (passes when <= 1)."""

    name: str
    z: float
    sd_ratio: float
    ks_ratio: float
    ess: float

    @property
    def mean_ok(self) -> bool:
        return bool(self.z <= Z_MAX)

    @property
    def sd_ok(self) -> bool:
        return bool(abs(self.sd_ratio - 1.0) <= SD_TOL)

    @property
    def ks_ok(self) -> bool:
        return bool(self.ks_ratio <= 1.0)

    @property
    def passed(self) -> bool:
        return self.mean_ok and self.sd_ok and self.ks_ok

    def problems(self) -> list[str]:
        """What failed, in words."""
        out = []
        if not self.mean_ok:
            out.append(f"{self.name}: mean off by {self.z:.1f} MCSE")
        if not self.sd_ok:
            out.append(f"{self.name}: sd ratio {self.sd_ratio:.3f}")
        if not self.ks_ok:
            out.append(f"{self.name}: KS distance {self.ks_ratio:.2f} x its limit")
        return out


def compare(
    name: str, ours: np.ndarray, reference: np.ndarray, reference_ess: EffectiveSizes | None = None
) -> MarginalCheck:
    """Compare our draws of one parameter with the reference's, both shaped ``(chain, draw)``.

    Args:
        name: the reference name, for messages.
        ours: our draws.
        reference: the reference draws.
        reference_ess: precomputed ESS of ``reference`` (computed when None).

    Returns:
        A `MarginalCheck`; non-finite draws fail every check.
    """
    if not np.all(np.isfinite(ours)):
        return MarginalCheck(name, np.inf, np.nan, np.inf, 0.0)
    ess, ess_ref = effective_sizes(ours), reference_ess or effective_sizes(reference)
    sd, sd_ref = float(np.std(ours, ddof=1)), float(np.std(reference, ddof=1))
    mcse2 = sd**2 / ess.mean + sd_ref**2 / ess_ref.mean
    gap = abs(float(np.mean(ours)) - float(np.mean(reference)))
    z = gap / np.sqrt(mcse2) if mcse2 > 0 else (0.0 if gap == 0 else np.inf)
    sd_ratio = sd / sd_ref if sd_ref > 0 else np.inf
    limit = KS_C * np.sqrt(1.0 / ess.dist + 1.0 / ess_ref.dist)
    return MarginalCheck(name, float(z), float(sd_ratio), ks_distance(ours, reference) / limit, ess.bulk)
