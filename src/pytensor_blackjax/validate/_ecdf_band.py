"""Are ranks uniform? A simultaneous confidence band for their ECDF (Säilynoja, Bürkner & Vehtari 2022).

``N`` ranks in ``0..L`` (the SBC ranks of ``N`` simulations among ``L`` posterior draws) are uniform
when the sampler is right. Their ECDF is looked at on the rank grid, ``z_k = k / (L + 1)`` for
``k = 1..L``: the count ``c_k`` of ranks below ``k`` is Binomial(N, z_k) at each point. A pointwise
two-sided level ``gamma`` is chosen so that, for uniform ranks, the whole ECDF stays inside every
pointwise ``1 - gamma`` interval with probability ``1 - alpha``: ``gamma`` is the ``alpha``-quantile of
the smallest pointwise two-sided tail probability of uniform ranks, found by simulating them (the
paper's simulation method). Ranks whose ECDF leaves the band are rejected at level ``alpha``; the same
null distribution gives a p-value (`UniformityTest.pvalue`), so a family of quantities is judged with
one Bonferroni threshold.

Unlike a chi-square test on binned ranks, the band looks at every rank and at the whole ECDF at once,
which is where a posterior too narrow (a U shape: the ECDF steep at both ends) or shifted (the ECDF
above or below the diagonal throughout) shows.

arviz-stats has the same simulation method for continuous PIT values (``arviz_stats.ecdf_utils``,
evaluated at ``i / N``); here the points are the rank grid, simulated as multinomial rank counts, and
the result is a test decision. A test checks that both give the same pointwise level.

References:
    Säilynoja, Bürkner, Vehtari (2022), Graphical test for discrete uniformity and its applications
    in goodness-of-fit evaluation and multiple sample comparison. Statistics and Computing 32, 32.
    arXiv:2103.10522.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pytensor_blackjax._validate import check_count

__all__ = ["ECDFBand", "UniformityTest", "ecdf_counts", "min_tail_probability", "uniformity_test"]

# null-distribution simulations: at least this many, and at least 100 below the smallest threshold
MIN_SIMULATIONS = 10_000
TAIL_SIMULATIONS = 100


def ecdf_counts(ranks: np.ndarray, num_draws: int) -> np.ndarray:
    """Counts of ranks below ``k`` for ``k = 1..L``: shape ``(L, *ranks.shape[1:])``.

    Args:
        ranks: integers in ``0..num_draws``, simulations along the first axis.
        num_draws: L.
    """
    ranks = np.asarray(ranks)
    flat = ranks.reshape(ranks.shape[0], -1)
    histogram = np.stack([np.bincount(col, minlength=num_draws + 1) for col in flat.T], axis=-1)
    return np.cumsum(histogram, axis=0)[:num_draws].reshape(num_draws, *ranks.shape[1:])


def _tail_tables(num_ranks: int, num_draws: int) -> tuple[np.ndarray, np.ndarray]:
    """``cdf[k-1, c] = P(C_k <= c)`` and ``sf[k-1, c] = P(C_k >= c)`` for ``C_k ~ Binomial(N, k/(L+1))``."""
    from scipy.special import bdtr, bdtrc

    counts = np.arange(num_ranks + 1)
    points = np.arange(1, num_draws + 1)[:, None] / (num_draws + 1)
    sf = bdtrc(counts - 1, num_ranks, points)  # P(C > c - 1), accurate far in the upper tail
    sf[:, 0] = 1.0
    return bdtr(counts, num_ranks, points), sf


def min_tail_probability(counts: np.ndarray, cdf: np.ndarray, sf: np.ndarray) -> np.ndarray:
    """The smallest two-sided pointwise tail probability ``min_k 2 min(P(C_k <= c_k), P(C_k >= c_k))``
    of each column of ``counts`` (shape ``(L, columns)``): small when the ECDF strays anywhere."""
    rows = np.arange(counts.shape[0])[:, None]
    tails = np.minimum(cdf[rows, counts], sf[rows, counts])
    return np.minimum(1.0, 2.0 * tails.min(axis=0))


@dataclass(frozen=True)
class ECDFBand:
    """A simultaneous band on the rank grid, as counts: uniform ranks stay inside with probability
    ``level``.

    Attributes:
        level: the simultaneous coverage (``1 - alpha``).
        pointwise: the two-sided pointwise level ``gamma`` each point's interval leaves out.
        points: the evaluation points ``k / (L + 1)``, ``k = 1..L``.
        lower, upper: the smallest and largest count of ranks below ``k`` inside the band, per point.
    """

    level: float
    pointwise: float
    points: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def contains(self, counts: np.ndarray) -> np.ndarray:
        """Whether each column of `ecdf_counts` (shape ``(L, ...)``) lies inside the band everywhere."""
        lower = self.lower.reshape(-1, *([1] * (counts.ndim - 1)))
        upper = self.upper.reshape(-1, *([1] * (counts.ndim - 1)))
        return np.all((counts >= lower) & (counts <= upper), axis=0)


@dataclass(frozen=True)
class UniformityTest:
    """The null distribution of the ECDF's smallest tail probability for ``N`` ranks in ``0..L``.

    Attributes:
        num_ranks: N, the simulations of the SBC study.
        num_draws: L; ranks run over ``0..L``.
        null: the smallest tail probability of each simulated uniform sample, sorted.
        cdf, sf: ``P(C_k <= c)`` and ``P(C_k >= c)``, shape ``(L, N + 1)``.
    """

    num_ranks: int
    num_draws: int
    null: np.ndarray
    cdf: np.ndarray
    sf: np.ndarray

    def statistic(self, ranks: np.ndarray) -> np.ndarray:
        """The smallest pointwise tail probability of each quantity's ranks (shape ``ranks.shape[1:]``)."""
        ranks = np.asarray(ranks)
        if ranks.shape[0] != self.num_ranks or ranks.min() < 0 or ranks.max() > self.num_draws:
            raise ValueError(
                f"ranks of shape {ranks.shape} in {ranks.min()}..{ranks.max()} do not fit this test of "
                f"{self.num_ranks} ranks in 0..{self.num_draws}; build the test with "
                f"uniformity_test(num_ranks={ranks.shape[0]}, num_draws=L)."
            )
        counts = ecdf_counts(ranks, self.num_draws).reshape(self.num_draws, -1)
        return min_tail_probability(counts, self.cdf, self.sf).reshape(ranks.shape[1:])

    def pvalue(self, ranks: np.ndarray) -> np.ndarray:
        """The probability that uniform ranks stray at least as far: the share of the null at or below
        the statistic (with the usual +1 so that it is never 0). Resolution ``1 / len(null)``."""
        stat = self.statistic(ranks)
        below = np.searchsorted(self.null, stat, side="right")
        return (below + 1) / (len(self.null) + 1)

    def band(self, level: float) -> ECDFBand:
        """The simultaneous band of coverage ``level``: the counts whose pointwise two-sided tail
        probability is at least ``gamma``, the ``1 - level`` quantile of the null."""
        gamma = float(np.quantile(self.null, 1.0 - level, method="lower"))
        counts = np.arange(self.num_ranks + 1)
        inside = np.minimum(1.0, 2.0 * np.minimum(self.cdf, self.sf)) >= gamma
        lower = np.where(inside, counts, self.num_ranks + 1).min(axis=1)
        upper = np.where(inside, counts, -1).max(axis=1)
        points = np.arange(1, self.num_draws + 1) / (self.num_draws + 1)
        return ECDFBand(level, gamma, points, lower, upper)


def uniformity_test(
    num_ranks: int, num_draws: int, *, alpha: float = 0.01, num_simulations: int | None = None, seed: int = 0
) -> UniformityTest:
    """Simulate the null distribution for ``num_ranks`` ranks in ``0..num_draws``.

    Args:
        num_ranks: N, the number of ranks judged together (SBC: the simulations).
        num_draws: L.
        alpha: the smallest threshold the test will be used at (sets the default ``num_simulations``).
        num_simulations: uniform samples simulated; default ``max(10000, 100 / alpha)``, so that the
            null's ``alpha``-quantile rests on at least 100 samples below it.
        seed: the simulation's seed (the test is a pure function of its arguments).

    Returns:
        A `UniformityTest`.

    Example:
        >>> import numpy as np
        >>> test = uniformity_test(200, 19, alpha=0.05)
        >>> ranks = np.random.default_rng(1).integers(0, 20, size=200)
        >>> bool(test.pvalue(ranks) > 0.05)
        True
    """
    check_count("num_ranks", num_ranks)
    check_count("num_draws", num_draws)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} is not valid: give a level in (0, 1), e.g. alpha=0.01.")
    if num_simulations is None:
        num_simulations = max(MIN_SIMULATIONS, math.ceil(TAIL_SIMULATIONS / alpha))
    check_count("num_simulations", num_simulations)
    rng = np.random.default_rng(seed)
    cdf, sf = _tail_tables(num_ranks, num_draws)
    cells = np.full(num_draws + 1, 1.0 / (num_draws + 1))
    null = []
    for start in range(0, num_simulations, 5000):  # in blocks: bounded memory for large N x L
        size = min(5000, num_simulations - start)
        counts = np.cumsum(rng.multinomial(num_ranks, cells, size=size), axis=1)[:, :num_draws]
        null.append(min_tail_probability(counts.T, cdf, sf))
    return UniformityTest(num_ranks, num_draws, np.sort(np.concatenate(null)), cdf, sf)
