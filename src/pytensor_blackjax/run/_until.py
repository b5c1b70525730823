"""Sampling until the answer is precise enough: the `Until` targets, the diagnostics checked at chunk
boundaries, and the (deterministic) rule that says when to check and when to stop.

The stopping rule depends only on the draws, never on timing (except the ``max_seconds`` cap), so a
run killed and resumed stops at the same draw as one that was never interrupted, and a run extended
with ``until=`` stops where one run with those targets from the start would have stopped.

When to check (`next_check`): the first check comes at the first chunk boundary after at least
``FIRST_CHECK`` draws and after as many as the ESS targets need to be reachable at all (`first_check`:
an ESS of ``N`` draws in all is at most ``N log10 N``); after a check at ``n`` draws that did not meet
the targets, the next one comes at the first chunk boundary at or after ``n * growth``, where
``growth`` is the ESS shortfall (target / worst ESS, since ESS grows in proportion to the draws)
clipped to ``[1 + MIN_GROWTH, MAX_GROWTH]``. So a check is never more than ``MIN_GROWTH`` (10%) of the
draws late, the number of checks grows only like ``log(draws)``, and their cost, which is proportional
to the draws checked, stays a bounded fraction of the sampling.
Between full checks only the `FOCUS` scalars furthest from their targets are checked; a model with no
more scalars than that gets one full check each time. Large checks run in blocks on every core
(`blocked_rank_diagnostics`), with values that do not depend on the number of cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pytensor_blackjax.run._until_config import Until, check_until

__all__ = [
    "FIRST_CHECK",
    "NESTED_RHAT_CHAINS",
    "STOP_REASONS",
    "Diagnosis",
    "Until",
    "UntilCheck",
    "check_until",
    "until_attrs",
    "warn_short",
    "diagnose",
    "diagnose_scalars",
    "scalar_diagnostics",
    "summarize",
    "first_check",
    "next_check",
]

FIRST_CHECK = 50  # draws per chain before the first check: ESS below that is noise
MIN_GROWTH, MAX_GROWTH = 0.1, 2.0
NESTED_RHAT_CHAINS = 32  # from this many chains, R-hat is nested R-hat (Margossian et al. 2024)
SUPERCHAINS = 4
FOCUS = 8  # checks between full ones look at this many scalars, those furthest from their targets
TAIL_PROB = 0.05  # tail ESS: the worse of the 5% and 95% quantiles, as ArviZ
STOP_REASONS = ("targets_met", "max_draws", "max_seconds", "interrupted")


@dataclass(frozen=True)
class Diagnosis:
    """The worst scalar of each diagnostic at one check (NaN: not computed)."""

    draws: int
    ess_bulk: float = math.nan
    ess_tail: float = math.nan
    rhat: float = math.nan
    worst: str = ""  # the scalar furthest from its target, e.g. "x[3]"
    shortfall: float = math.inf  # target ESS / worst ESS (the factor more draws needed), >= 0
    met: bool = False
    rhat_kind: str = "rank"
    furthest: tuple[int, ...] = ()  # the scalars furthest from their targets, worst first (indices)
    complete: bool = True  # every scalar was checked (not only the furthest of an earlier check)

    def attrs(self) -> dict:
        return {
            "until_ess_bulk": self.ess_bulk,
            "until_ess_tail": self.ess_tail,
            "until_rhat": self.rhat,
            "until_rhat_kind": self.rhat_kind,
            "until_worst_variable": self.worst,
        }


def _rows(posterior: dict[str, np.ndarray], var_names):
    """Each variable's scalars as ``(scalar, chain, draw)``, in the order of `_labels` (views, no copy)."""
    for name in var_names or posterior:
        value = np.asarray(posterior[name])
        yield np.moveaxis(value.reshape(*value.shape[:2], -1), -1, 0)


def _scalars(posterior: dict[str, np.ndarray], var_names) -> tuple[np.ndarray, list[str]]:
    """Every scalar as ``(scalar, chain, draw)`` and its label."""
    x = np.concatenate(list(_rows(posterior, var_names)), axis=0).astype(np.float64, copy=False)
    return x, _labels(posterior, var_names)


def _labels(posterior: dict[str, np.ndarray], var_names) -> list[str]:
    """The label of every scalar of `_scalars`, e.g. ``"x[3]"``."""
    labels: list[str] = []
    for name in var_names or posterior:
        shape = np.shape(posterior[name])[2:]
        labels += [name] if not shape else [f"{name}[{','.join(map(str, i))}]" for i in np.ndindex(*shape)]
    return labels


def superchain_ids(chains: int) -> np.ndarray:
    """Chains grouped in order into `SUPERCHAINS` superchains of equal size (the rest dropped)."""
    per = chains // SUPERCHAINS
    return np.repeat(np.arange(SUPERCHAINS), per)


def diagnose(posterior: dict[str, np.ndarray], until: Until, *, everything: bool = False) -> Diagnosis:
    """The worst bulk/tail ESS and R-hat over the scalars of ``posterior`` (``(chain, draw, ...)``);
    only the targeted diagnostics unless ``everything``."""
    x, labels = _scalars(posterior, until.var_names)
    return diagnose_scalars(x, labels, until, everything=everything)


def diagnose_scalars(
    x: np.ndarray, labels: list[str], until: Until, *, everything: bool = False
) -> Diagnosis:
    """`diagnose` of the scalars ``x`` (``(scalar, chain, draw)``) named ``labels``."""
    return summarize(scalar_diagnostics(x, until, everything=everything), labels, until, x.shape[1:])


def scalar_diagnostics(x: np.ndarray, until: Until, *, everything: bool = False) -> dict[str, np.ndarray]:
    """The targeted diagnostics (all of them if ``everything``) of every scalar of ``x`` (``(scalar,
    chain, draw)``): name -> values; R-hat is nested R-hat from `NESTED_RHAT_CHAINS` chains. Unless
    ``everything``, the R-hat of a scalar short of an ESS target is its bulk R-hat alone (a lower
    bound): the folded rank transform is made only where it can decide the check."""
    from pytensor_blackjax.run._until_diagnostics import blocked_rank_diagnostics

    chains = x.shape[1]
    targets = until.targets
    nested = chains >= NESTED_RHAT_CHAINS
    wanted = {k: k in targets or everything for k in ("ess_bulk", "ess_tail", "rhat")}
    wanted["rhat"] = wanted["rhat"] and chains >= 2
    # one pass over all scalars; nested R-hat drops the chains that do not fill a superchain
    plain_rhat = wanted["rhat"] and not nested
    bulk, tail = wanted["ess_bulk"], wanted["ess_tail"]
    # a scalar short of an ESS target fails the check whatever its R-hat: its folded half is skipped
    short = None if everything else {k: v for k, v in targets.items() if k != "rhat"}
    values = blocked_rank_diagnostics(
        x, bulk=bulk, tail=tail, prob=TAIL_PROB, rhat=plain_rhat, ess_targets=short
    )
    if wanted["rhat"] and nested:
        ids = superchain_ids(chains)
        values |= blocked_rank_diagnostics(x[:, : len(ids)], bulk=False, tail=False, superchains=ids)
    return values


def summarize(
    values: dict[str, np.ndarray],
    labels: list[str],
    until: Until,
    shape: tuple[int, ...],
    index: np.ndarray | None = None,
) -> Diagnosis:
    """The `Diagnosis` of the diagnostics ``values`` (`scalar_diagnostics`) of draws shaped ``shape``
    (``(chain, draw)``): of every scalar (``labels``), or only of the scalars ``index`` (then it is not
    `Diagnosis.complete`)."""
    chains, draws = shape
    if index is not None:
        labels = [labels[i] for i in index]
    targets = until.targets
    out: dict = {"draws": draws}
    ratios = np.zeros(len(labels))  # how far each scalar is from its targets, > 1: not met
    shortfall = np.zeros(len(labels))
    for kind in ("ess_bulk", "ess_tail"):
        if kind in values:
            ess = values[kind]
            out[kind] = float(np.nanmin(ess)) if ess.size and not np.all(np.isnan(ess)) else math.nan
            if kind in targets:
                r = np.where(np.isfinite(ess), targets[kind] / np.maximum(ess, 1e-12), np.inf)
                ratios, shortfall = np.maximum(ratios, r), np.maximum(shortfall, r)
    if "rhat" in values:
        rhat = values["rhat"]
        out["rhat_kind"] = "nested" if chains >= NESTED_RHAT_CHAINS else "rank"
        out["rhat"] = float(np.nanmax(rhat)) if rhat.size and not np.all(np.isnan(rhat)) else math.nan
        if "rhat" in targets:
            # (R-hat - 1) shrinks roughly like 1/draws once chains mix
            r = np.where(np.isfinite(rhat), (rhat - 1) / (targets["rhat"] - 1), np.inf)
            ratios = np.maximum(ratios, r)
    worst = int(np.argmax(ratios)) if labels else 0
    met = bool(labels) and bool(np.all(ratios <= 1.0))
    order = np.argsort(-ratios, kind="stable")[:FOCUS]
    return Diagnosis(
        **out,
        furthest=tuple(int(i if index is None else index[i]) for i in order),
        complete=index is None,
        worst=labels[worst] if labels else "",
        shortfall=float(np.max(shortfall)) if labels else math.inf,
        met=met,
    )


def first_check(chains: int, until: Until) -> int:
    """The fewest draws per chain at which the ESS targets can be met at all: an ESS of ``N`` draws in
    all is at most ``N * log10(N)`` (the sum of the autocorrelations is capped below at
    ``1 / log10(N)``, as ArviZ), so no check before that is made; at least `FIRST_CHECK`."""
    target = max((v for k, v in until.targets.items() if k != "rhat"), default=0.0)
    low, high = 2, max(10, math.ceil(target))  # high * log10(high) >= target
    while low < high:  # the least total of draws whose ESS can reach the target
        mid = (low + high) // 2
        low, high = (mid + 1, high) if mid * math.log10(mid) < target else (low, mid)
    total = low
    n = -(-total // max(chains, 1))
    return max(FIRST_CHECK, n + n % 2)  # split chains drop the middle draw of an odd length


def next_check(
    done: int, chunk: int, diagnosis: Diagnosis | None, max_draws: int, first: int = FIRST_CHECK
) -> int:
    """The draw count of the next check (a chunk boundary, at most ``max_draws``): the first after at
    least ``first`` draws (`first_check`), then see the module docstring."""

    def boundary(n: float) -> int:
        return min(max_draws, int(math.ceil(n / chunk)) * chunk)

    if diagnosis is None:
        return boundary(max(chunk, first))
    growth = diagnosis.shortfall if math.isfinite(diagnosis.shortfall) else MAX_GROWTH
    growth = min(MAX_GROWTH, max(1.0 + MIN_GROWTH, growth))
    return max(boundary(done * growth), min(max_draws, done + chunk))


class UntilCheck:
    """The driver's view of an `Until` run: the draws so far (including those made before a resume or
    extension), the next check, and the stop reason once there is one."""

    def __init__(self, until: Until, chunk: int, previous: dict[str, np.ndarray] | None):
        import pytensor_blackjax.run._until_diagnostics  # noqa: F401 - loaded now, not in the first (timed) check

        self.until, self.chunk = until, chunk
        self.x = np.empty((0, 0, 0))  # every checked scalar's draws so far, (scalar, chain, capacity)
        self.labels: list[str] = []
        self.done = 0
        self.last: Diagnosis | None = None
        self.check_seconds = 0.0
        self.checks = 0
        self.next = next_check(0, chunk, None, until.max_draws)
        if previous:
            self.add(previous)
        # replay the schedule over the draws made before: the checks depend only on the draws
        while self.next < self.done and not self._check_at(self.next).met:
            pass

    def add(self, posterior: dict[str, np.ndarray]) -> None:
        if not posterior:
            return
        names = self.until.var_names or list(posterior)
        self.labels = self.labels or _labels(posterior, names)
        chains, n = np.shape(posterior[names[0]])[:2]
        if self.done + n > self.x.shape[2]:  # grow by doubling: each draw is copied O(1) times
            grown = np.empty((len(self.labels), chains, max(2 * self.x.shape[2], self.done + n)))
            if self.done:
                grown[:, :, : self.done] = self.x[:, :, : self.done]
            self.x = grown
        row = 0
        for rows in _rows(posterior, names):  # each variable's draws straight into their rows: one copy
            self.x[row : row + len(rows), :, self.done : self.done + n] = rows
            row += len(rows)
        self.done += n
        if self.last is None:  # now that the chains are known, no check before the ESS targets can hold
            self.next = next_check(0, self.chunk, None, self.until.max_draws, first_check(chains, self.until))

    def _check_at(self, n: int) -> Diagnosis:
        import time

        t0 = time.perf_counter()
        draws = self.x[:, :, :n]
        scalars = len(self.labels)
        # a focus of every scalar is a full check (small models): made once, as a full one
        last = self.last
        focus = () if last is None or len(last.furthest) >= scalars else last.furthest
        known: dict[str, np.ndarray] = {}
        self.last = None
        if focus:
            index = np.asarray(focus)
            known = scalar_diagnostics(draws[index], self.until)
            self.last = summarize(known, self.labels, self.until, draws.shape[1:], index)
        if self.last is None or self.last.met:  # the focus meets its targets: check every scalar
            if focus:  # the focus's values are kept: only the other scalars are computed again
                rest = np.setdiff1d(np.arange(scalars), index)
                others = scalar_diagnostics(draws[rest], self.until)
                values = {}
                for name, part in others.items():
                    values[name] = np.empty(scalars)
                    values[name][rest], values[name][index] = part, known[name]
            else:
                values = scalar_diagnostics(draws, self.until)
            self.last = summarize(values, self.labels, self.until, draws.shape[1:])
        self.check_seconds += time.perf_counter() - t0
        self.checks += 1
        self.next = next_check(n, self.chunk, self.last, self.until.max_draws) if not self.last.met else n
        return self.last

    def stop_reason(self) -> str | None:
        """After a chunk: "targets_met" or "max_draws" when the run should stop here, else None."""
        if self.done >= self.next or self.done >= self.until.max_draws:
            if self._check_at(self.done).met:
                return "targets_met"
        if self.done >= self.until.max_draws:
            return "max_draws"
        return None

    def remaining(self) -> int | None:
        """Draws per chain still needed by the last check's extrapolation (None before one)."""
        if self.last is None or not math.isfinite(self.last.shortfall):
            return None
        return max(0, int(math.ceil(self.last.draws * self.last.shortfall)) - self.done)

    def final(self) -> Diagnosis:
        """Every diagnostic at the stopping point (for the result's attributes)."""
        if self.done < 4:  # too few draws for any diagnostic
            return Diagnosis(draws=self.done)
        last = self.last
        if last is not None and last.met and last.draws == self.done and len(self.until.targets) == 3:
            return last  # the stopping check looked at every scalar with every diagnostic already
        return diagnose_scalars(self.x[:, :, : self.done], self.labels, self.until, everything=True)

    def progress_note(self) -> str:
        """The worst diagnostics of the last check and the draws still needed, for the progress bar."""
        d = self.last
        if d is None:
            return f"first check at {self.next}"
        parts = [
            f"{k} {v:.0f}" if k != "R-hat" else f"{k} {v:.3f}"
            for k, v in (("ESS bulk", d.ess_bulk), ("tail", d.ess_tail), ("R-hat", d.rhat))
            if math.isfinite(v)
        ]
        left = self.remaining()
        if left is not None:
            parts.append(f"~{left} to go")
        return " ".join(parts)


def until_attrs(extra: dict) -> dict:
    """The result attributes of an until-run (none for a fixed-length run)."""
    if "stop_reason" not in extra:
        return {}
    return {
        "stop_reason": extra["stop_reason"],
        **extra["until"].attrs(),
        "until_checks": extra["checks"],
        "until_check_time": extra["check_seconds"],
    }


def warn_short(reason: str, diagnosis: Diagnosis, until: Until, *, stacklevel: int) -> None:
    """A `SamplingWarning` saying which targets a capped run did not reach."""
    import warnings

    from pytensor_blackjax.results import SamplingWarning

    got = {"ess_bulk": diagnosis.ess_bulk, "ess_tail": diagnosis.ess_tail, "rhat": diagnosis.rhat}
    missed = [
        f"{k} {got[k]:.4g} (target {t:g})"
        for k, t in until.targets.items()
        if not (got[k] <= t if k == "rhat" else got[k] >= t)
    ]
    cap = f"max_draws={until.max_draws}" if reason == "max_draws" else f"max_seconds={until.max_seconds:g}"
    warnings.warn(
        f"sampling stopped at {cap} after {diagnosis.draws} draws per chain, short of the targets: "
        f"{', '.join(missed) or 'none'} (worst variable {diagnosis.worst or '-'}). Raise the cap, or continue"
        " this run with pbj.extend(store, until=...) if it was sampled with store=.",
        SamplingWarning,
        stacklevel=stacklevel + 1,
    )
