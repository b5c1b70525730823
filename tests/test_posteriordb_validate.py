"""The validation suite: its checks, its verdicts, and a fast subset of posteriors run for real."""

import json
from pathlib import Path

import numpy as np
import pytest

from pytensor_blackjax.validate import Row, ValidationReport, compare, run_validation

ROOT = Path(__file__).resolve().parents[2] / "shared" / "posteriordb"
needs_data = pytest.mark.skipif(not ROOT.is_dir(), reason=f"posteriordb data not found at {ROOT}")

# A fast subset: hierarchical with a deterministic, correlated regression, a custom transform with a
# scan, and a regression with flat priors.
FAST_SUBSET = [
    "eight_schools-eight_schools_noncentered",
    "kidiq-kidscore_interaction",
    "garch-garch11",
    "mesquite-logmesquite_logvas",
]


def draws(rng, size=(4, 5000), *, loc=0.0, scale=1.0, dist="normal"):
    if dist == "uniform":  # same mean and sd as the normal
        return loc + scale * np.sqrt(3.0) * rng.uniform(-1.0, 1.0, size)
    return rng.normal(loc, scale, size)


def test_compare_passes_the_same_distribution():
    rng = np.random.default_rng(0)
    check = compare("x", draws(rng), draws(rng, (10, 1000)))
    assert check.passed, check


def test_compare_flags_mean_sd_and_shape():
    rng = np.random.default_rng(1)
    reference = draws(rng, (10, 1000))
    shifted = compare("x", draws(rng, loc=0.2), reference)
    assert not shifted.mean_ok and shifted.z > 10
    wide = compare("x", draws(rng, scale=1.3), reference)
    assert wide.mean_ok and not wide.sd_ok
    flat = compare("x", draws(rng, (4, 20000), dist="uniform"), draws(rng, (10, 4000)))
    assert flat.mean_ok and flat.sd_ok and not flat.ks_ok
    assert any("KS distance" in p for p in flat.problems())


def test_compare_fails_non_finite_draws():
    rng = np.random.default_rng(2)
    ours = draws(rng)
    ours[0, 0] = np.nan
    assert not compare("x", ours, draws(rng)).passed


def test_status_and_verdict():
    rng = np.random.default_rng(3)
    good = compare("x", draws(rng), draws(rng, (10, 1000)))
    bad = compare("x", draws(rng, loc=1.0), draws(rng, (10, 1000)))
    assert Row("a", (good,)).status == "PASS"
    assert Row("a", (good,), divergences=3).status == "FAIL"
    assert Row("a", (bad,)).status == "FAIL"
    assert Row("a", (bad,), divergences=3, expect_warn=True).status == "WARN"
    assert Row("a", (good,), missing=("y",)).status == "FAIL"
    assert Row("a", error="boom", expect_warn=True).status == "FAIL"
    report = ValidationReport((Row("a", (good,)), Row("b", (bad,), divergences=7, expect_warn=True)))
    assert report.passed
    table = report.table()
    assert "WARN (expected)" in table and "7 divergences" in table and "-> PASSED" in table
    assert not ValidationReport((Row("a", (bad,)),)).passed
    assert not ValidationReport(()).passed


def test_bad_paths_and_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_validation(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="holds no posterior folder"):
        run_validation(tmp_path)
    with pytest.raises(ValueError, match="source='other' is not known"):
        run_validation(tmp_path, source="other")


def test_unknown_posterior_is_a_failed_row_not_a_skip(tmp_path):
    folder = tmp_path / "mystery-model"
    folder.mkdir()
    (folder / "data.json").write_text("{}")
    (folder / "reference_draws.json").write_text(json.dumps([{"x": [0.0, 1.0]}]))
    report = run_validation(tmp_path, progress=False)
    assert not report.passed
    assert report.rows[0].status == "FAIL" and "no model" in report.rows[0].error
    with pytest.raises(ValueError, match=r"\['nope'\] not found"):
        run_validation(tmp_path, only=["nope"])


@needs_data
def test_fast_subset_passes():
    report = run_validation(ROOT, only=FAST_SUBSET, progress=False, seed=1)
    assert [r.name for r in report.rows] == FAST_SUBSET
    assert len(report.rows[0].checks) == 10  # theta[1..8] (a deterministic here), mu, tau
    assert report.passed, report.table()
    for row in report.rows:
        assert row.grad_evals > 0 and row.min_ess > 400
        assert row.checks and not row.missing


@needs_data
@pytest.mark.slow
def test_full_suite_passes():
    report = run_validation(ROOT, progress=False)
    assert len(report.rows) == 14
    assert report.passed, report.table()
    centered = next(r for r in report.rows if r.name == "eight_schools-eight_schools_centered")
    assert centered.expect_warn and centered.divergences > 0  # the diagnostics see the funnel


@needs_data
@pytest.mark.slow
def test_pymc_versions_pass():
    pytest.importorskip("pymc")
    report = run_validation(ROOT, source="pymc", progress=False)
    assert len(report.rows) == 3
    assert report.passed, report.table()
