"""Comparing draws with reference draws scalar by scalar, with a stated false-alarm rate and power.

Every scalar (each element of each parameter) is compared on four statistics: the mean, the sd and the
5% and 95% quantiles. Each difference is divided by its standard error: the Monte Carlo standard
errors of both sides combined, ``se = sqrt(mcse_ours^2 + mcse_ref^2)``, from arviz-stats ``mcse``
(methods "mean", "sd" and "quantile"; autocorrelation enters through the ESS)::

    z = (statistic_ours - statistic_ref) / se

With ``m = 4 * scalars`` z-scores, a posterior FAILs when any ``|z| > t``, the Bonferroni threshold
``t = Phi^-1(1 - alpha / (2 m))``: draws from the right distribution FAIL with probability at most
``alpha`` (family-wise, per posterior and run) as long as each z is close to standard normal.

Power: a true error of ``d`` standard errors gives ``z ~ N(d, 1)``, detected with probability
``P(|z| > t) = Phi(d - t) + Phi(-d - t)``. Solving that for 50% and 90% and multiplying by each
scalar's ``se`` gives the smallest error detected, in units of the reference sd: a shift of the mean
or of a quantile by that many sds, or an sd that much (relatively) too wide or too narrow.

Approximations (Pathfinder, VI) do not converge to the posterior as draws grow, so for them a
`Tolerance` replaces the z-scores: each scalar's mean within ``tolerance.mean`` reference sds and its
sd within ``tolerance.sd`` (relative) of the reference.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

__all__ = [
    "CRITERIA",
    "DEFAULT_ALPHA",
    "Comparison",
    "Moments",
    "Power",
    "ScalarCheck",
    "Tolerance",
    "check_scalars",
    "compare",
    "detectable_shift",
    "moments",
]

CRITERIA = ("mean", "sd", "q05", "q95")
QUANTILES = (0.05, 0.95)
# Per posterior and run. 14 posteriors x 3 seeds make 42 runs of NUTS alone: at 0.001 each, a correct
# sampler gives a false FAIL somewhere with probability below 4.1%; at 0.01 it would be 34%.
DEFAULT_ALPHA = 0.001


@dataclass(frozen=True)
class Tolerance:
    """The looser criterion for approximations: |mean error| <= ``mean`` sds, |sd ratio - 1| <= ``sd``."""

    mean: float = 0.25
    sd: float = 0.3


@dataclass(frozen=True)
class Moments:
    """One scalar's draws summarised: the four statistics and their Monte Carlo standard errors.

    Attributes:
        values: mean, sd, 5% and 95% quantiles (the order of `CRITERIA`).
        mcse: their Monte Carlo standard errors (arviz-stats ``mcse``).
        ess: bulk ESS (arviz-stats), for the report.
        finite: False when any draw is NaN or infinite (then every comparison fails).
    """

    values: tuple[float, float, float, float]
    mcse: tuple[float, float, float, float]
    ess: float
    finite: bool = True


def moments(draws: Any) -> Moments:
    """Summarise one scalar's draws shaped ``(chain, draw)``.

    Raises:
        ValueError: ``draws`` is not 2-d or has fewer than 4 draws per chain.
    """
    import arviz_stats

    x = np.asarray(draws, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 4:
        raise ValueError(
            f"draws of shape {x.shape}: give one scalar's draws shaped (chain, draw) with at least 4 draws "
            "per chain."
        )
    if not np.all(np.isfinite(x)):
        nan = float("nan")
        return Moments((nan, nan, nan, nan), (nan, nan, nan, nan), 0.0, finite=False)
    values = (float(x.mean()), float(x.std(ddof=1)), *(float(q) for q in np.quantile(x, QUANTILES)))
    if np.ptp(x) == 0:
        return Moments(values, (0.0, 0.0, 0.0, 0.0), 1.0)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains make arviz warn; the estimates are still wanted
        mcse = (
            float(arviz_stats.mcse(x, method="mean")),
            float(arviz_stats.mcse(x, method="sd")),
            *(float(arviz_stats.mcse(x, method="quantile", prob=p)) for p in QUANTILES),
        )
        ess = float(arviz_stats.ess(x, method="bulk"))
    mcse = tuple(float(m) for m in np.nan_to_num(mcse, nan=0.0))
    return Moments(values, mcse, float(np.nan_to_num(ess, nan=1.0)))  # type: ignore[arg-type]


@dataclass(frozen=True)
class ScalarCheck:
    """The comparison of one scalar; everything in units of the reference sd.

    Attributes:
        name: the scalar's name, e.g. ``theta[1]``.
        error: ours minus the reference, for mean, sd, q05, q95, divided by the reference sd
            (so the sd entry is the relative error: 0.1 is 10% too wide).
        se: the combined standard error of each difference, in the same units.
        ess: our bulk ESS.
    """

    name: str
    error: tuple[float, float, float, float]
    se: tuple[float, float, float, float]
    ess: float

    @property
    def z(self) -> tuple[float, ...]:
        """``error / se`` per criterion; a non-finite error is an infinite z."""
        return tuple(_ratio(e, s) for e, s in zip(self.error, self.se, strict=True))


def _ratio(error: float, se: float) -> float:
    if not np.isfinite(error):
        return float("inf")
    if se > 0:
        return error / se
    return 0.0 if error == 0 else float(np.copysign(np.inf, error))


def check_scalars(name: str, ours: Moments, reference: Moments) -> ScalarCheck:
    """Compare one scalar's `Moments` with the reference's; non-finite draws give infinite errors."""
    sd_ref = reference.values[1]
    scale = sd_ref if sd_ref > 0 else 1.0  # a constant reference: errors in its own units
    error = tuple(
        (a - b) / scale if ours.finite and reference.finite else float("inf")
        for a, b in zip(ours.values, reference.values, strict=True)
    )
    se = tuple(float(np.hypot(a, b)) / scale for a, b in zip(ours.mcse, reference.mcse, strict=True))
    return ScalarCheck(name, error, se, ours.ess)  # type: ignore[arg-type]


def detectable_shift(threshold: float, probability: float) -> float:
    """The true shift ``d`` (in standard errors) that ``|z| > threshold`` detects with ``probability``.

    ``z ~ N(d, 1)``, so ``P(|z| > t) = Phi(d - t) + Phi(-d - t)``, increasing in ``d``.

    Raises:
        ValueError: ``probability`` not in (P(|z| > t) at d=0, 1).
    """
    floor = 2 * stats.norm.sf(threshold)
    if not floor < probability < 1:
        raise ValueError(f"probability={probability!r}: give a value between {floor:.3g} and 1.")

    def excess(d: float) -> float:
        return float(stats.norm.cdf(d - threshold) + stats.norm.cdf(-d - threshold) - probability)

    return float(optimize.brentq(excess, 0.0, threshold + 10.0, xtol=1e-10))


@dataclass(frozen=True)
class Power:
    """The smallest error each criterion detects with ``probability``, worst scalar, in reference sds.

    ``mean``, ``q05``, ``q95``: a shift by that many sds; ``sd``: that fraction too wide or too narrow.
    """

    probability: float
    mean: float
    sd: float
    q05: float
    q95: float

    def describe(self) -> str:
        pct = f"{100 * self.probability:.0f}%"
        return (
            f"detected {pct}: mean shift {self.mean:.3g} sd, sd {100 * self.sd:.3g}% off, "
            f"5% quantile {self.q05:.3g} sd, 95% quantile {self.q95:.3g} sd"
        )


@dataclass(frozen=True)
class Comparison:
    """Draws compared with reference draws: one `ScalarCheck` per scalar and the verdict.

    Attributes:
        checks: one per compared scalar.
        alpha: family-wise false-alarm rate of the exact criterion.
        tolerance: set for approximations: the looser criterion that replaces the z-scores.
    """

    checks: tuple[ScalarCheck, ...]
    alpha: float = DEFAULT_ALPHA
    tolerance: Tolerance | None = None

    @property
    def tests(self) -> int:
        """How many z-scores the Bonferroni correction covers: four per scalar."""
        return len(CRITERIA) * len(self.checks)

    @property
    def threshold(self) -> float:
        """``t = Phi^-1(1 - alpha / (2 m))``: any ``|z| > t`` FAILs."""
        return float(stats.norm.isf(self.alpha / (2 * max(self.tests, 1))))

    @property
    def max_abs_z(self) -> float:
        return max((abs(z) for c in self.checks for z in c.z), default=float("nan"))

    @property
    def passed(self) -> bool:
        """True when there is something to compare and no criterion fails."""
        return bool(self.checks) and not self.failures()

    def failures(self) -> list[str]:
        """Every failed criterion, in words."""
        out = []
        for check in self.checks:
            if self.tolerance is not None:
                mean, sd = check.error[0], check.error[1]
                if not abs(mean) <= self.tolerance.mean:
                    out.append(
                        f"{check.name}: mean off by {mean:+.3g} sd (tolerance {self.tolerance.mean:g})"
                    )
                if not abs(sd) <= self.tolerance.sd:
                    out.append(f"{check.name}: sd {100 * sd:+.3g}% (tolerance {100 * self.tolerance.sd:g}%)")
                continue
            for criterion, z, error in zip(CRITERIA, check.z, check.error, strict=True):
                if not abs(z) <= self.threshold:
                    unit = f"{100 * error:+.3g}%" if criterion == "sd" else f"{error:+.3g} sd"
                    out.append(f"{check.name}: {criterion} z={z:+.1f} ({unit})")
        return out

    def power(self, probability: float = 0.9) -> Power:
        """The smallest error each exact criterion detects with ``probability`` (worst scalar)."""
        d = detectable_shift(self.threshold, probability)
        worst = [max((c.se[i] for c in self.checks), default=float("nan")) for i in range(len(CRITERIA))]
        return Power(probability, *(d * w for w in worst))

    @property
    def min_ess(self) -> float:
        return min((c.ess for c in self.checks), default=float("nan"))


def compare(
    draws: Any,
    reference: Any,
    *,
    var_names: list[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    tolerance: Tolerance | None = None,
) -> Comparison:
    """Compare posterior draws with reference draws, every scalar of every variable.

    Args:
        draws: our draws: a DataTree (its ``posterior`` group), an xarray Dataset, or a mapping of
            name -> array shaped ``(chain, draw, *shape)``.
        reference: the reference draws in any of the same forms (e.g. from another sampler, or a long
            run); variables must have the same shape as in ``draws``.
        var_names: the variables to compare (default: every variable of ``reference``).
        alpha: the family-wise false-alarm rate: draws from the reference's distribution FAIL with
            probability at most ``alpha``.
        tolerance: compare with this looser `Tolerance` instead (for approximations).

    Returns:
        A `Comparison`: ``.passed``, ``.failures()``, ``.power(0.9)``, ``.threshold``, ``.checks``.

    Raises:
        ValueError: a variable missing from ``draws`` or of another shape, or ``alpha`` not in (0, 1).

    Example:
        >>> import numpy as np
        >>> from pytensor_blackjax.validate import compare
        >>> rng = np.random.default_rng(0)
        >>> result = compare({"x": rng.normal(size=(4, 1000))}, {"x": rng.normal(size=(4, 1000))})
        >>> result.passed
        True
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r}: give the family-wise false-alarm rate in (0, 1), e.g. 0.001.")
    ours, ref = _variables(draws, "draws"), _variables(reference, "reference")
    names = list(ref) if var_names is None else list(var_names)
    missing = [n for n in names if n not in ours or n not in ref]
    if missing:
        raise ValueError(
            f"var_names {missing} are not in both draws and reference; the draws have {sorted(ours)}, "
            f"the reference {sorted(ref)}."
        )
    checks = []
    for name in names:
        a, b = ours[name], ref[name]
        if a.shape[2:] != b.shape[2:]:
            raise ValueError(
                f"variable {name!r} has shape {a.shape[2:]} in draws but {b.shape[2:]} in reference; "
                "compare the same variables."
            )
        for index in np.ndindex(*a.shape[2:]):
            label = name if not index else f"{name}[{','.join(map(str, index))}]"
            checks.append(check_scalars(label, moments(a[(..., *index)]), moments(b[(..., *index)])))
    return Comparison(tuple(checks), alpha=alpha, tolerance=tolerance)


def _variables(source: Any, what: str) -> dict[str, np.ndarray]:
    if hasattr(source, "children") and "posterior" in getattr(source, "children", {}):
        source = source["posterior"].to_dataset()
    if hasattr(source, "data_vars"):
        source = {str(k): source[k].values for k in source.data_vars}
    if not isinstance(source, Mapping):
        raise TypeError(
            f"{what} must be a DataTree, an xarray Dataset or a dict of name -> array (chain, draw, ...); "
            f"got {type(source).__name__}."
        )
    out = {}
    for name, value in source.items():
        array = np.asarray(value, dtype=np.float64)
        if array.ndim < 2:
            raise ValueError(
                f"{what}[{name!r}] has shape {array.shape}; give arrays shaped (chain, draw, ...)."
            )
        out[str(name)] = array
    return out
