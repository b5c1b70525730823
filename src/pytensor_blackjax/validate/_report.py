"""The validation report: one `Run` per (sampler, posterior, seed), one `Row` per (sampler, posterior).

A run passes when its `Comparison` passes and it has no divergences, errors or missing parameters. A
row is PASS when every seed's run passes, FAIL when any fails, and NOT COUNTED (outside the tally,
with its reason) for a posterior expected to fail. The text table fits 80 columns.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np

from pytensor_blackjax.validate._compare import Comparison, Power

__all__ = ["Row", "Run", "Skipped", "ValidationReport"]

WIDTH = 80


@dataclass(frozen=True)
class Run:
    """One sampler on one posterior with one seed.

    Attributes:
        posterior: posterior name.
        sampler: sampler name.
        seed: the run's seed.
        comparison: the comparison with the reference draws (None when sampling failed).
        divergences: divergent transitions after warmup (all chains).
        grad_evals: gradient evaluations after warmup (sum of ``n_steps``), None when not reported.
        seconds: wall-clock time of compiling and sampling.
        notes: sampler diagnostics and other remarks.
        error: set when the posterior could not be sampled at all.
        missing: reference parameters our model does not report.
        not_counted: why this posterior's failures are not counted ("" when they are).
    """

    posterior: str
    sampler: str = "nuts"
    seed: int = 0
    comparison: Comparison | None = None
    divergences: int = 0
    grad_evals: int | None = None
    seconds: float = float("nan")
    notes: tuple[str, ...] = ()
    error: str | None = None
    missing: tuple[str, ...] = ()
    not_counted: str = ""

    @property
    def passed(self) -> bool:
        return (
            self.error is None
            and not self.missing
            and self.comparison is not None
            and self.comparison.passed
            and self.divergences == 0
        )

    @property
    def status(self) -> str:
        """PASS, FAIL, or NOT COUNTED (a posterior expected to fail, whatever happened)."""
        if self.not_counted:
            return "NOT COUNTED"
        return "PASS" if self.passed else "FAIL"

    @property
    def min_ess(self) -> float:
        return self.comparison.min_ess if self.comparison is not None else float("nan")

    def problems(self) -> list[str]:
        """Every reason this run did not pass."""
        out = [] if self.error is None else [f"error: {self.error}"]
        out += [f"{name}: not in our posterior" for name in self.missing]
        if self.comparison is not None:
            out += self.comparison.failures()
        if self.divergences:
            out.append(f"{self.divergences} divergence{'s' if self.divergences > 1 else ''}")
        return out


@dataclass(frozen=True)
class Skipped:
    """A posterior a sampler is not meant for, and why."""

    posterior: str
    sampler: str
    reason: str


@dataclass(frozen=True)
class Row:
    """All seeds of one sampler on one posterior."""

    runs: tuple[Run, ...]

    @property
    def posterior(self) -> str:
        return self.runs[0].posterior

    @property
    def sampler(self) -> str:
        return self.runs[0].sampler

    @property
    def not_counted(self) -> str:
        return self.runs[0].not_counted

    @property
    def passes(self) -> int:
        return sum(r.passed for r in self.runs)

    @property
    def status(self) -> str:
        if self.not_counted:
            return "NOT COUNTED"
        return "PASS" if self.passes == len(self.runs) else "FAIL"

    @property
    def comparisons(self) -> list[Comparison]:
        return [r.comparison for r in self.runs if r.comparison is not None and r.comparison.checks]

    @property
    def approximate(self) -> bool:
        return any(c.tolerance is not None for c in self.comparisons)

    @property
    def scalars(self) -> int:
        return max((len(c.checks) for c in self.comparisons), default=0)

    @property
    def threshold(self) -> float:
        return max((c.threshold for c in self.comparisons), default=float("nan"))

    @property
    def max_abs_z(self) -> float:
        return max((c.max_abs_z for c in self.comparisons), default=float("nan"))

    def worst_error(self, criterion: int) -> float:
        """The largest |error| (in reference sds) of one criterion over scalars and seeds."""
        return max((abs(s.error[criterion]) for c in self.comparisons for s in c.checks), default=np.nan)

    def power(self, probability: float) -> Power | None:
        """The smallest errors detected with ``probability``: worst scalar, worst seed."""
        powers = [c.power(probability) for c in self.comparisons if c.tolerance is None]
        if not powers:
            return None
        fields = ("mean", "sd", "q05", "q95")
        return Power(probability, *(max(getattr(p, f) for p in powers) for f in fields))


@dataclass(frozen=True)
class ValidationReport:
    """All runs of a validation, grouped into rows.

    Attributes:
        runs: every (sampler, posterior, seed) run, in the order run.
        skipped: the (sampler, posterior) pairs not run, with the reason.
        draws, tune, seeds: the run sizes; chains vary by sampler and are in each row.
        alpha: the family-wise false-alarm rate per posterior and run.
    """

    runs: tuple[Run, ...]
    skipped: tuple[Skipped, ...] = ()
    draws: int = 1000
    tune: int = 1000
    seeds: tuple[int, ...] = (0,)
    alpha: float = 0.001

    @property
    def rows(self) -> tuple[Row, ...]:
        groups: dict[tuple[str, str], list[Run]] = {}
        for run in self.runs:
            groups.setdefault((run.sampler, run.posterior), []).append(run)
        return tuple(Row(tuple(runs)) for runs in groups.values())

    @property
    def samplers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([r.sampler for r in self.runs] + [s.sampler for s in self.skipped]))

    @property
    def passed(self) -> bool:
        """True when at least one row is counted and no counted row is FAIL."""
        rows = self.rows
        return any(r.status == "PASS" for r in rows) and not any(r.status == "FAIL" for r in rows)

    def tally(self, sampler: str | None = None) -> str:
        """``"12 PASS, 1 FAIL, 1 not counted; runs 37/39"`` over one sampler's rows or all."""
        rows = [r for r in self.rows if sampler is None or r.sampler == sampler]
        counted = [r for r in rows if not r.not_counted]
        runs = [run for r in counted for run in r.runs]
        passes = sum(r.status == "PASS" for r in counted)
        fails = sum(r.status == "FAIL" for r in counted)
        return (
            f"{passes} PASS, {fails} FAIL, {len(rows) - len(counted)} not counted; "
            f"runs passed {sum(run.passed for run in runs)}/{len(runs)}"
        )

    def table(self) -> str:
        """The report as text in 80 columns: a table per sampler, power, problems, then the verdict."""
        seeds = ", ".join(map(str, self.seeds))
        lines = _wrap(
            f"posteriordb validation: {self.draws} draws per chain after {self.tune} warmup, seeds {seeds}. "
            "A run FAILs when any |z| > t: z of the mean, sd, 5% and 95% quantile of every scalar against "
            "the reference (combined MCSE); t is the Bonferroni threshold over those 4 x scalars z-scores "
            f"at family-wise alpha {self.alpha:g} per run; or on any divergence, error or missing "
            "parameter. Approximations: mean within 0.25 sd and sd within 30% instead. mean90, sd90: "
            "smallest mean shift (sd) and sd error detected 90% of the time (worst scalar). n/c: not "
            "counted."
        )
        rows = self.rows
        for sampler in self.samplers:
            mine = [r for r in rows if r.sampler == sampler]
            lines.append("")
            if mine:
                lines += _wrap(f"{sampler}: {self.tally(sampler)}")
                lines += _sampler_table(mine)
            skipped = [s for s in self.skipped if s.sampler == sampler]
            if skipped:
                lines += _wrap(
                    f"{sampler} not run on: " + "; ".join(f"{s.posterior} ({s.reason})" for s in skipped),
                    indent="  ",
                )
        power_lines = []
        for row in rows:
            low, high = row.power(0.5), row.power(0.9)
            if low is None or high is None:
                continue
            power_lines += [
                f"  {row.sampler} {row.posterior}",
                f"    mean {low.mean:.3f}/{high.mean:.3f} sd  sd {100 * low.sd:.1f}/{100 * high.sd:.1f}%  "
                f"q05 {low.q05:.2f}/{high.q05:.2f} sd  q95 {low.q95:.2f}/{high.q95:.2f} sd",
            ]
        if power_lines:
            lines += [
                "",
                "smallest error detected 50%/90% of the time (worst scalar and seed):",
                *power_lines,
            ]
        details = []
        for row in rows:
            found = []
            if row.not_counted:
                found.append(f"not counted: {row.not_counted}")
            for run in row.runs:
                if not run.passed:
                    problems = run.problems()
                    more = f" (+{len(problems) - 4} more)" if len(problems) > 4 else ""
                    found.append(f"seed {run.seed}: " + "; ".join(problems[:4]) + more)
                    found += [f"seed {run.seed}: {note}" for note in run.notes]
            if found:
                details.append(f"  {row.sampler} {row.posterior} [{row.status}]")
                for item in found:
                    details += _wrap(item, indent="    - ", subsequent="      ")
        if details:
            lines += ["", "details:", *details]
        verdict = "PASSED" if self.passed else "FAILED"
        lines += ["", *_wrap(f"{len(rows)} rows: {self.tally()} -> {verdict}")]
        return "\n".join(lines)


def _sampler_table(rows: list[Row]) -> list[str]:
    approximate = any(r.approximate for r in rows)
    if approximate:
        header = f"{'posterior':<39} {'scal':>4} {'mean err':>8} {'sd err':>7} {'pass':>5} status"
    else:
        header = (
            f"{'posterior':<39} {'scal':>4} {'max|z|':>6} {'t':>4} {'pass':>5} {'mean90':>6} {'sd90':>5} stat"
        )
    lines = [header, "-" * min(WIDTH, len(header))]
    for row in rows:
        status = "n/c" if row.not_counted else row.status
        rate = f"{row.passes}/{len(row.runs)}"
        if approximate:
            lines.append(
                f"{row.posterior:<39} {row.scalars:>4} {_num(row.worst_error(0), 3):>8} "
                f"{_pct(row.worst_error(1)):>7} {rate:>5} {status}"
            )
            continue
        power = row.power(0.9)
        mean90 = _num(power.mean, 3) if power else "-"
        sd90 = _pct(power.sd) if power else "-"
        lines.append(
            f"{row.posterior:<39} {row.scalars:>4} {_num(row.max_abs_z, 2):>6} {_num(row.threshold, 2):>4} "
            f"{rate:>5} {mean90:>6} {sd90:>5} {status}"
        )
    return lines


def _wrap(text: str, *, indent: str = "", subsequent: str | None = None) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent if subsequent is None else subsequent,
        break_on_hyphens=False,
    )


def _num(x: float | None, digits: int) -> str:
    if x is None or not np.isfinite(x):
        return "-" if x is None or np.isnan(x) else "inf"
    return f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return _num(x, 0)
    return f"{100 * x:.1f}%"
