"""The `Until` targets of a run that samples until its answer is precise enough, and their checks
against the sampler and settings of a run (see `run._until` for the stopping rule)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields

__all__ = ["Until", "check_until"]


def _positive(name: str, value, *, integer: bool = False, allow_none: bool = True):
    if value is None and allow_none:
        return None
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or value <= 0:
        example = {"ess_bulk": 400, "ess_tail": 400, "max_draws": 100_000, "max_seconds": 600}[name]
        what = "a positive integer" if integer else "a positive number"
        raise ValueError(
            f"Until({name}={value!r}) is not valid: {name} must be {what} or None, e.g. {name}={example}."
        )
    if integer:
        assert isinstance(value, numbers.Integral)  # checked above
        return int(value)
    return float(value)


@dataclass(frozen=True)
class Until:
    """Sample until every scalar is estimated as precisely as asked, or a cap is reached.

    Args:
        ess_bulk: bulk effective sample size every scalar must reach (rank-normalized, as ArviZ).
        ess_tail: tail effective sample size (5% and 95% quantiles) every scalar must reach.
        rhat: every scalar's R-hat must be at most this (> 1, e.g. 1.01): rank-normalized split
            R-hat, or nested R-hat with 32 chains or more (chains grouped into 4 superchains in order).
        max_draws: draws per chain at most (counting draws made before, when extending a run).
        max_seconds: sampling time at most (this call's); stopping on it is the only stop that depends
            on timing, so it is not reproducible.
        var_names: the posterior variables to check (default: all, deterministics included).

    Raises:
        ValueError: a target that is not positive, ``rhat <= 1``, a bad cap, or no target and no
            ``max_seconds``.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> until = pbj.Until(ess_bulk=400, ess_tail=400, rhat=1.01)
    """

    ess_bulk: float | None = None
    ess_tail: float | None = None
    rhat: float | None = None
    max_draws: int = 100_000
    max_seconds: float | None = None
    var_names: tuple[str, ...] | None = field(default=None)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "ess_bulk", _positive("ess_bulk", self.ess_bulk))
        set_(self, "ess_tail", _positive("ess_tail", self.ess_tail))
        set_(self, "max_draws", _positive("max_draws", self.max_draws, integer=True, allow_none=False))
        set_(self, "max_seconds", _positive("max_seconds", self.max_seconds))
        if self.rhat is not None:
            if isinstance(self.rhat, bool) or not isinstance(self.rhat, numbers.Real) or not self.rhat > 1:
                raise ValueError(
                    f"Until(rhat={self.rhat!r}) is not valid: R-hat is at least 1 even for a "
                    "perfect sample, so the target must be above 1, e.g. rhat=1.01."
                )
            set_(self, "rhat", float(self.rhat))
        if self.var_names is not None:
            names = (self.var_names,) if isinstance(self.var_names, str) else tuple(self.var_names)
            if not names or not all(isinstance(n, str) for n in names):
                raise ValueError(
                    f"Until(var_names={self.var_names!r}) is not valid: give variable names, e.g. "
                    "var_names=('mu', 'sigma'), or None for every variable."
                )
            set_(self, "var_names", names)
        if not self.targets and self.max_seconds is None:
            raise ValueError(
                "Until() has no target: give ess_bulk=, ess_tail= or rhat= (e.g. "
                "Until(ess_bulk=400)), or max_seconds= to sample for a set time; for a fixed "
                "number of draws use draws= instead of until=."
            )

    @property
    def targets(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("ess_bulk", "ess_tail", "rhat") if getattr(self, k) is not None}

    def to_json(self) -> dict:
        return {
            f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)
        }


def check_until(until, *, sampler, chunk: int, chains: int, names) -> Until:
    """``until`` checked against the run: a Markov-chain sampler, a cap of at least one chunk, known
    variable names.

    Raises:
        TypeError: ``until`` is not an `Until`.
        ValueError: an approximation (or SMC, whose draws are not a chain), a cap below one chunk, or a
            variable the model does not have.
    """
    if not isinstance(until, Until):
        raise TypeError(f"until={until!r} is not valid: give pbj.Until(ess_bulk=..., ...).")
    if getattr(sampler, "approximate", False) or not getattr(sampler, "markov_chain", True):
        raise ValueError(
            f"until= and extend need a sampler whose draws form Markov chains, whose precision grows with "
            f"more draws; sampler={sampler.name!r} is {'an approximation' if sampler.approximate else 'not'}."
            " Use sampler='nuts' (or another MCMC sampler), or draws= for a fixed number of draws."
        )
    if until.max_draws < chunk:
        raise ValueError(
            f"Until(max_draws={until.max_draws}) is smaller than one chunk ({chunk} draws): checks happen "
            f"at chunk boundaries; raise max_draws or lower chunk_size (e.g. chunk_size={until.max_draws})."
        )
    if until.rhat is not None and chains < 2:
        raise ValueError(
            f"Until(rhat={until.rhat}) needs chains >= 2 (R-hat compares chains); chains={chains}: "
            "sample more chains or drop the rhat target."
        )
    if until.var_names is not None:
        unknown = [n for n in until.var_names if n not in names]
        if unknown:
            raise ValueError(
                f"Until(var_names=...) names {unknown}, which the model does not have; its "
                f"variables are {sorted(names)}."
            )
    return until


# -- diagnostics ------------------------------------------------------------------------------------
