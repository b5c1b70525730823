"""The validation report: one row per posterior, a verdict, and a plain-text table."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pytensor_blackjax.validate._compare import KS_ALPHA, SD_TOL, Z_MAX, MarginalCheck

__all__ = ["Row", "ValidationReport"]


@dataclass(frozen=True)
class Row:
    """The outcome for one posterior.

    Attributes:
        name: posterior name.
        checks: one `MarginalCheck` per reference parameter.
        divergences: divergent transitions after warmup (all chains).
        grad_evals: gradient evaluations after warmup (sum of ``n_steps``), None when not reported.
        seconds: wall-clock time of compiling and sampling.
        expect_warn: a known hard case, whose failures are reported as WARN.
        notes: sampler diagnostics and other remarks (missing parameters, errors).
        error: set when the posterior could not be sampled at all.
    """

    name: str
    checks: tuple[MarginalCheck, ...] = ()
    divergences: int = 0
    grad_evals: int | None = None
    seconds: float = float("nan")
    expect_warn: bool = False
    notes: tuple[str, ...] = ()
    error: str | None = None
    missing: tuple[str, ...] = field(default=())

    @property
    def comparisons_pass(self) -> bool:
        return (
            self.error is None
            and not self.missing
            and bool(self.checks)
            and all(c.passed for c in self.checks)
        )

    @property
    def status(self) -> str:
        """PASS, WARN or FAIL.

        PASS: every comparison holds and there are no divergences. A posterior marked expect_warn is
        WARN when a comparison fails or when it diverges. Any other posterior with a failed comparison
        or divergences is FAIL.
        """
        clean = self.comparisons_pass and self.divergences == 0
        if clean:
            return "PASS"
        if self.expect_warn and self.error is None:
            return "WARN"
        return "FAIL"

    @property
    def worst_z(self) -> float:
        return max((c.z for c in self.checks), default=np.nan)

    @property
    def worst_sd_ratio(self) -> float:
        return max(
            (c.sd_ratio for c in self.checks),
            key=lambda r: abs(np.log(r)) if r > 0 else np.inf,
            default=np.nan,
        )

    @property
    def worst_ks(self) -> float:
        return max((c.ks_ratio for c in self.checks), default=np.nan)

    @property
    def min_ess(self) -> float:
        return min((c.ess for c in self.checks), default=np.nan)

    def problems(self) -> list[str]:
        """Every reason this row is not a clean PASS."""
        out = [] if self.error is None else [f"error: {self.error}"]
        out += [f"{name}: not in our posterior" for name in self.missing]
        for check in self.checks:
            out += check.problems()
        if self.divergences:
            out.append(f"{self.divergences} divergences")
        return out


@dataclass(frozen=True)
class ValidationReport:
    """All rows of a validation run.

    Attributes:
        rows: one `Row` per posterior, in the order run.
        sampler: a description of the sampler used.
        draws, chains, seed: the run's sizes.
    """

    rows: tuple[Row, ...]
    sampler: str = "nuts"
    draws: int = 1000
    chains: int = 4
    seed: int = 0

    @property
    def passed(self) -> bool:
        """True when no row is FAIL (rows marked expect_warn may be WARN) and there is at least one row."""
        return bool(self.rows) and all(r.status != "FAIL" for r in self.rows)

    def table(self) -> str:
        """The report as fixed-width text: one line per posterior, then the problems and the verdict."""
        header = (
            f"{'posterior':<40} {'params':>6} {'worst z':>8} {'sd ratio':>8} {'KS/lim':>7} "
            f"{'diverg':>6} {'min ESS':>8} {'grad evals':>11} {'seconds':>8}  status"
        )
        lines = [
            f"posteriordb validation: sampler {self.sampler}, {self.chains} chains x {self.draws} draws, "
            f"seed {self.seed}",
            f"pass when |mean - ref| <= {Z_MAX:g} combined MCSE, sd within {100 * SD_TOL:.0f}%, "
            f"KS distance <= its alpha={KS_ALPHA:g} limit (ESS-based), and no divergences",
            "",
            header,
            "-" * len(header),
        ]
        for row in self.rows:
            evals = "-" if row.grad_evals is None else f"{row.grad_evals:,}"
            status = row.status + (" (expected)" if row.expect_warn and row.status == "WARN" else "")
            lines.append(
                f"{row.name:<40} {len(row.checks):>6} {_num(row.worst_z, 2):>8} "
                f"{_num(row.worst_sd_ratio, 3):>8} {_num(row.worst_ks, 2):>7} {row.divergences:>6} "
                f"{_num(row.min_ess, 0):>8} {evals:>11} {_num(row.seconds, 1):>8}  {status}"
            )
        details = [(row, row.problems() + list(row.notes)) for row in self.rows]
        details = [(row, found) for row, found in details if found]
        if details:
            lines += ["", "details:"]
            for row, found in details:
                lines.append(f"  {row.name} [{row.status}]")
                lines += [f"    - {item}" for item in found]
        counts = {s: sum(r.status == s for r in self.rows) for s in ("PASS", "WARN", "FAIL")}
        verdict = "PASSED" if self.passed else "FAILED"
        lines += [
            "",
            f"{len(self.rows)} posteriors: {counts['PASS']} PASS, {counts['WARN']} WARN, "
            f"{counts['FAIL']} FAIL -> {verdict}",
        ]
        return "\n".join(lines)


def _num(x: float, digits: int) -> str:
    if x is None or not np.isfinite(x):
        return "-" if x is None or np.isnan(x) else "inf"
    return f"{x:.{digits}f}"
