"""How large a miscalibration an SBC study detects: its power, by simulating the ranks, no sampling.

The exact posterior of a conjugate model, mu ~ N(0, 1) and ``n`` observations y_i ~ N(mu, 1), is
N(m, s^2) with ``m = sum(y) / (n + 1)`` and ``s^2 = 1 / (n + 1)``. A sampler that is wrong in a known
way is imitated by drawing the "posterior" from N(m + shift * s, (scale * s)^2): ``scale < 1`` is a
posterior too narrow by ``1 - scale``, ``shift`` moves it by that many posterior sds. The rank of the
true mu among ``L`` such draws is what an SBC study with that sampler would see; repeating whole studies
gives the share of them the test rejects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pytensor_blackjax._validate import check_count
from pytensor_blackjax.validate._ecdf_band import UniformityTest, uniformity_test

__all__ = ["SBCPower", "conjugate_ranks", "detection_rate", "sbc_power"]

SCALES = (0.97, 0.95, 0.93, 0.91, 0.9, 0.89, 0.88, 0.87, 0.85, 0.83, 0.8, 0.75, 0.7, 0.6, 0.5)
SHIFTS = (0.05, 0.08, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0)


def conjugate_ranks(
    rng: np.random.Generator,
    num_simulations: int,
    num_draws: int,
    *,
    scale: float = 1.0,
    shift: float = 0.0,
    observations: int = 10,
    studies: int = 1,
) -> np.ndarray:
    """Ranks of the true mean among draws of a deliberately wrong posterior: ``(num_simulations, studies)``.

    Each column is one SBC study of the conjugate normal model (module docstring) whose "sampler" draws
    from N(m + shift * s, (scale * s)^2) instead of the exact N(m, s^2). The number of ``L`` independent
    draws below the truth is Binomial(L, P(draw < truth)), drawn as such (the same distribution as
    drawing the ``L`` draws and counting, at a fraction of the cost).
    """
    from scipy.special import ndtr

    shape = (num_simulations, studies)
    mu = rng.standard_normal(shape)
    y_sum = observations * mu + np.sqrt(observations) * rng.standard_normal(shape)
    mean, sd = y_sum / (observations + 1), 1.0 / np.sqrt(observations + 1)
    below = ndtr(((mu - mean) / sd - shift) / scale)
    return rng.binomial(num_draws, below)


def detection_rate(
    test: UniformityTest,
    alpha: float,
    *,
    scale: float = 1.0,
    shift: float = 0.0,
    studies: int = 200,
    seed: int = 0,
) -> float:
    """Share of ``studies`` simulated studies with this miscalibration whose ranks ``test`` rejects at
    ``alpha`` (with ``scale=1, shift=0``: the false-alarm rate)."""
    rng = np.random.default_rng(seed)
    ranks = conjugate_ranks(rng, test.num_ranks, test.num_draws, scale=scale, shift=shift, studies=studies)
    return float(np.mean(test.pvalue(ranks) <= alpha))


@dataclass(frozen=True)
class SBCPower:
    """Detection rates of one study size for a grid of too-narrow factors and shifts.

    Attributes:
        num_simulations, num_draws: the study (N ranks in ``0..L``).
        alpha: the level each scalar is tested at.
        studies: simulated studies per rate.
        false_alarms: rejection rate of a calibrated sampler.
        narrow: scale -> detection rate (scale 0.9: the posterior sd is 10% too small).
        shifted: shift in posterior sds -> detection rate.
    """

    num_simulations: int
    num_draws: int
    alpha: float
    studies: int
    false_alarms: float
    narrow: dict[float, float]
    shifted: dict[float, float]

    def smallest_narrowing(self, rate: float = 0.9) -> float | None:
        """The least narrowing ``1 - scale`` of the grid detected at least ``rate`` of the time."""
        hits = [1.0 - s for s, r in self.narrow.items() if r >= rate]
        return min(hits) if hits else None

    def smallest_shift(self, rate: float = 0.9) -> float | None:
        """The least shift (posterior sds) of the grid detected at least ``rate`` of the time."""
        hits = [s for s, r in self.shifted.items() if r >= rate]
        return min(hits) if hits else None


def sbc_power(
    num_simulations: int,
    num_draws: int = 99,
    *,
    alpha: float = 0.01,
    studies: int = 200,
    scales: Sequence[float] = SCALES,
    shifts: Sequence[float] = SHIFTS,
    seed: int = 0,
) -> SBCPower:
    """Power of an SBC study of ``num_simulations`` ranks in ``0..num_draws``, one scalar tested at
    ``alpha`` (for a model with ``m`` scalars, pass the study's ``alpha / m``).

    Example:
        >>> power = sbc_power(200, 99, studies=50, scales=(0.7,), shifts=(0.5,))
        >>> power.smallest_narrowing(), power.smallest_shift()  # doctest: +SKIP
        (0.3, 0.5)
    """
    check_count("num_simulations", num_simulations)
    check_count("studies", studies)
    test = uniformity_test(num_simulations, num_draws, alpha=alpha, seed=seed)

    def rate(scale: float = 1.0, shift: float = 0.0, offset: int = 0) -> float:
        return detection_rate(test, alpha, scale=scale, shift=shift, studies=studies, seed=seed + 1 + offset)

    return SBCPower(
        num_simulations,
        num_draws,
        alpha,
        studies,
        rate(),
        {s: rate(scale=s, offset=1 + i) for i, s in enumerate(scales)},
        {s: rate(shift=s, offset=1 + len(scales) + i) for i, s in enumerate(shifts)},
    )
