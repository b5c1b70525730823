"""The validation criteria, their power on deliberately wrong draws, their verdicts, and real runs.

The power tests compare one half of a posterior's reference draws (5 of its 10 chains, about 5000
nearly independent draws) with a wrong version of the other half: they must FAIL, while the two
halves as they are must PASS.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import require_posteriordb
from scipy import stats

from pytensor_blackjax.validate import (
    Comparison,
    Run,
    Skipped,
    Tolerance,
    ValidationReport,
    check_scalars,
    compare,
    detectable_shift,
    load_reference,
    moments,
    run_validation,
)
from pytensor_blackjax.validate._docs import (
    provenance,
    replace_block,
    samplers_table,
    validation_table,
    write_docs,
)

# A fast subset run for real: hierarchical with a deterministic, a correlated regression, a custom
# transform with a scan, and a regression with flat priors.
FAST_SUBSET = [
    "eight_schools-eight_schools_noncentered",
    "kidiq-kidscore_interaction",
    "garch-garch11",
    "mesquite-logmesquite_logvas",
]


def halves(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The reference draws of ``name`` split into chains 0-4 and 5-9 (independent halves)."""
    reference = load_reference(require_posteriordb() / name)
    return {k: v[:5] for k, v in reference.items()}, {k: v[5:] for k, v in reference.items()}


def missing_jacobian(draws: dict[str, np.ndarray], scale: str, rng) -> dict[str, np.ndarray]:
    """Exact draws of the posterior whose log-density lacks ``log(scale)``: reweighting by ``1 / scale``.

    A model that samples ``log(scale)`` but forgets the log-Jacobian ``+ log(scale)`` targets
    ``p(theta) / scale``. Rejection sampling (accept with probability ``min(scale) / scale``, the same
    draws for every parameter) turns draws of ``p`` into independent draws of that target; each chain is
    cut to the shortest so the arrays stay ``(chain, draw)``.
    """
    s = draws[scale]
    keep = rng.uniform(size=s.shape) < s.min() / s
    length = int(keep.sum(axis=1).min())
    return {k: np.stack([v[c][keep[c]][:length] for c in range(v.shape[0])]) for k, v in draws.items()}


@pytest.mark.parametrize(
    "name",
    [
        "kidiq-kidscore_interaction",
        "arK-arK",
        "eight_schools-eight_schools_noncentered",
        "mesquite-logmesquite_logvas",
    ],
)
def test_independent_halves_of_the_reference_pass(name):
    ours, reference = halves(name)
    result = compare(ours, reference)
    assert result.passed, result.failures()
    assert result.tests == 4 * len(result.checks) and result.threshold > 3.5


def test_posterior_ten_percent_too_wide_fails():
    ours, reference = halves("kidiq-kidscore_interaction")
    wide = {k: v.mean() + 1.1 * (v - v.mean()) for k, v in ours.items()}
    result = compare(wide, reference)
    assert not result.passed
    assert any(": sd z=+" in f for f in result.failures())
    assert compare(ours, reference).power(0.9).sd < 0.10  # the stated power covers this error


def test_shift_of_a_fifth_sd_in_one_coordinate_fails():
    ours, reference = halves("arK-arK")
    shifted = dict(ours, **{"beta[2]": ours["beta[2]"] + 0.2 * reference["beta[2]"].std()})
    result = compare(shifted, reference)
    assert not result.passed
    assert {f.split(":")[0] for f in result.failures()} == {"beta[2]"}
    assert any("beta[2]: mean z=+" in f for f in result.failures())


def test_missing_log_jacobian_on_a_scale_parameter_fails_when_its_shift_is_detectable():
    # mesquite's sigma (data-dominated, cv 0.12): dropping the Jacobian moves it by about 0.12 sd, z about
    # -5.1 against t = 4.16 for these sizes, so it is detected about 80% of the time (5 of 5 seeds tried)
    ours, reference = halves("mesquite-logmesquite_logvas")
    wrong = missing_jacobian(ours, "sigma", np.random.default_rng(0))
    result = compare(wrong, reference)
    assert not result.passed
    assert any(f.startswith("sigma: mean") for f in result.failures())


def test_missing_log_jacobian_on_kidiq_sigma_is_below_the_stated_power():
    # kidiq's sigma has cv 0.034, so the missing Jacobian shifts it by ~0.03 sd. The power statement
    # must say so: even the 50% detection size is larger (the reference's own 10,000 draws limit it).
    ours, reference = halves("kidiq-kidscore_interaction")
    wrong = missing_jacobian(ours, "sigma", np.random.default_rng(0))
    shift = (wrong["sigma"].mean() - ours["sigma"].mean()) / reference["sigma"].std()
    assert -0.05 < shift < -0.02
    assert compare(wrong, reference).power(0.5).mean > abs(shift)


def test_detectable_shift_matches_the_normal_power():
    t = stats.norm.isf(0.001 / 40)
    d50, d90 = detectable_shift(t, 0.5), detectable_shift(t, 0.9)
    assert d50 == pytest.approx(t, abs=1e-3) and d90 == pytest.approx(t + stats.norm.isf(0.1), abs=1e-3)
    z = np.random.default_rng(0).normal(d90, 1.0, 100_000)
    assert np.mean(np.abs(z) > t) == pytest.approx(0.9, abs=0.005)
    with pytest.raises(ValueError, match="probability=1.5"):
        detectable_shift(t, 1.5)


def test_compare_from_mappings_datasets_and_elements():
    import xarray as xr

    rng = np.random.default_rng(4)
    ours = {"theta": rng.normal(size=(4, 500, 3)), "mu": rng.normal(size=(4, 500))}
    reference = {"theta": rng.normal(size=(4, 500, 3)), "mu": rng.normal(size=(4, 500))}
    result = compare(
        ours,
        xr.Dataset(
            {k: (("chain", "draw", *[f"d{i}" for i in range(v.ndim - 2)]), v) for k, v in reference.items()}
        ),
    )
    assert [c.name for c in result.checks] == ["theta[0]", "theta[1]", "theta[2]", "mu"]
    assert result.passed and isinstance(result, Comparison)
    assert "mean shift" in result.power(0.9).describe()


def test_compare_errors_name_the_problem():
    rng = np.random.default_rng(5)
    x = {"a": rng.normal(size=(2, 100))}
    with pytest.raises(ValueError, match=r"var_names \['b'\] are not in both"):
        compare(x, {"b": rng.normal(size=(2, 100))})
    with pytest.raises(ValueError, match="shape"):
        compare({"a": rng.normal(size=(2, 100, 2))}, x)
    with pytest.raises(ValueError, match="alpha=0"):
        compare(x, x, alpha=0)
    with pytest.raises(ValueError, match=r"\(chain, draw, \.\.\.\)"):
        compare({"a": np.zeros(10)}, x)


def test_non_finite_draws_fail():
    rng = np.random.default_rng(2)
    ours = rng.normal(size=(4, 500))
    ours[0, 0] = np.nan
    assert not compare({"x": ours}, {"x": rng.normal(size=(4, 500))}).passed


def test_approximations_are_judged_by_their_tolerance():
    rng = np.random.default_rng(6)
    reference = {"x": rng.normal(size=(4, 2000))}
    slightly_off = {"x": 0.1 + 0.9 * rng.normal(size=(4, 2000))}
    assert not compare(slightly_off, reference).passed  # the exact criterion sees it
    assert compare(slightly_off, reference, tolerance=Tolerance()).passed
    too_narrow = {"x": 0.5 * rng.normal(size=(4, 2000))}
    failures = compare(too_narrow, reference, tolerance=Tolerance()).failures()
    assert failures and "tolerance 30%" in failures[0]


def _comparison(passed: bool) -> Comparison:
    rng = np.random.default_rng(3)
    reference = {"x": rng.normal(size=(4, 1000))}
    return compare({"x": rng.normal(loc=0.0 if passed else 1.0, size=(4, 1000))}, reference)


def test_not_counted_is_outside_the_tally_and_any_fail_fails():
    good, bad = _comparison(True), _comparison(False)
    assert Run("a", comparison=good).status == "PASS"
    assert Run("a", comparison=good, divergences=3).status == "FAIL"
    assert Run("a", comparison=bad).status == "FAIL"
    assert Run("a", comparison=good, missing=("y",)).status == "FAIL"
    assert Run("a", error="boom").status == "FAIL"
    funnel = Run("f", comparison=bad, divergences=7, not_counted="a funnel")
    assert funnel.status == "NOT COUNTED"
    report = ValidationReport(
        (Run("a", seed=0, comparison=good), Run("a", seed=1, comparison=good), funnel),
        (Skipped("b", "nuts", "not meant for it"),),
        seeds=(0, 1),
    )
    assert report.passed and [r.status for r in report.rows] == ["PASS", "NOT COUNTED"]
    table = report.table()
    assert "1 PASS, 0 FAIL, 1 not counted; runs passed 2/2 -> PASSED" in table
    assert "not counted: a funnel" in table and "7 divergences" in table and "not meant for it" in table
    assert max(len(line) for line in table.splitlines()) <= 80
    mixed = ValidationReport((Run("a", seed=0, comparison=good), Run("a", seed=1, comparison=bad)))
    assert not mixed.passed and mixed.rows[0].passes == 1 and "1/2" in mixed.table()
    assert not ValidationReport((funnel,)).passed  # nothing counted is not a pass
    assert not ValidationReport(()).passed


def test_docs_tables_replace_only_the_marked_block(tmp_path):
    report = ValidationReport((Run("a", comparison=_comparison(True)),), seeds=(0,))
    text = "intro\n<!-- t:begin -->\nold\n<!-- t:end -->\nrest\n"
    assert replace_block(text, "t", "new") == "intro\n<!-- t:begin -->\nnew\n<!-- t:end -->\nrest\n"
    with pytest.raises(ValueError, match="markers <!-- u:begin -->"):
        replace_block(text, "u", "new")
    assert "| nuts | `a` | 1 |" in validation_table(report)
    assert "| nuts | exact (z) | 1 | 1 | 0 | 0 | 0 | 1/1 |" in samplers_table(report)
    assert provenance(tmp_path).startswith("commit unknown, ")  # not a git repository
    (tmp_path / "validation.md").write_text(
        "# V\n<!-- validation-table:begin -->\n<!-- validation-table:end -->\n"
    )
    (tmp_path / "samplers.md").write_text(
        "<!-- sampler-validation-table:begin -->\nold\n<!-- sampler-validation-table:end -->"
    )
    write_docs(report, tmp_path, command="pytensor-blackjax validate X", ran_on="commit abc1234, today")
    written = (tmp_path / "samplers.md").read_text()
    assert (
        "Generated by `pytensor-blackjax validate X` on commit abc1234, today" in written
        and "old" not in written
    )
    assert "| nuts | `a` |" in (tmp_path / "validation.md").read_text()
    repo = Path(__file__).resolve().parents[1]
    assert re.fullmatch(r"commit [0-9a-f]{7,}(\+dirty)?, \d{4}-\d\d-\d\d \d\d:\d\d UTC", provenance(repo))


def test_missing_posteriordb_fails_the_tests_with_how_to_fix(tmp_path):
    with pytest.raises(pytest.fail.Exception, match="posterior database is missing"):
        require_posteriordb(tmp_path / "nowhere")


def test_bad_paths_and_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_validation(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="holds no posterior folder"):
        run_validation(tmp_path)
    with pytest.raises(ValueError, match="source='other' is not known"):
        run_validation(tmp_path, source="other")
    with pytest.raises(ValueError, match="sampler='nope' is not known"):
        run_validation(tmp_path, sampler="nope")
    with pytest.raises(ValueError, match="seeds=0"):
        run_validation(tmp_path, seeds=0)


def test_unknown_posterior_is_a_failed_row_not_a_skip(tmp_path):
    folder = tmp_path / "mystery-model"
    folder.mkdir()
    (folder / "data.json").write_text("{}")
    (folder / "reference_draws.json").write_text(json.dumps([{"x": [0.0, 1.0]}]))
    report = run_validation(tmp_path, progress=False, seeds=1)
    assert not report.passed
    assert report.rows[0].status == "FAIL" and "no model" in report.runs[0].error
    with pytest.raises(ValueError, match=r"\['nope'\] not found"):
        run_validation(tmp_path, only=["nope"])


def test_fast_subset_passes(posteriordb_root):
    report = run_validation(posteriordb_root, only=FAST_SUBSET, progress=False, seeds=[1])
    assert [r.posterior for r in report.rows] == FAST_SUBSET
    assert len(report.runs[0].comparison.checks) == 10  # theta[1..8] (a deterministic here), mu, tau
    assert report.passed, report.table()
    for run in report.runs:
        assert run.grad_evals > 0 and run.min_ess > 400 and not run.missing


@pytest.mark.slow
def test_full_suite_passes(posteriordb_root):
    report = run_validation(posteriordb_root, progress=False)
    assert len(report.rows) == 14
    assert report.passed, report.table()
    centered = next(r for r in report.rows if r.posterior == "eight_schools-eight_schools_centered")
    assert centered.status == "NOT COUNTED" and any(run.divergences > 0 for run in centered.runs)


@pytest.mark.slow
def test_pymc_versions_pass(posteriordb_root):
    pytest.importorskip("pymc")
    report = run_validation(posteriordb_root, source="pymc", progress=False)
    assert len(report.rows) == 3
    assert report.passed, report.table()


def test_cli_exits_non_zero_on_a_fail(tmp_path):
    from typer.testing import CliRunner

    from pytensor_blackjax.cli import app

    folder = tmp_path / "mystery-model"
    folder.mkdir()
    (folder / "data.json").write_text("{}")
    (folder / "reference_draws.json").write_text(json.dumps([{"x": [0.0, 1.0]}]))
    result = CliRunner().invoke(app, ["validate", str(tmp_path), "--seeds", "2", "--no-progress"])
    assert result.exit_code == 1, result.output
    assert "runs passed 0/2 -> FAILED" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


@pytest.mark.slow  # two compilations and two runs: about a minute on 2 busy cores
def test_sampled_model_missing_the_log_jacobian_of_sigma_fails(posteriordb_root, monkeypatch):
    # The real sampler on a broken mesquite: its log-density lacks log(sigma), the Jacobian of the
    # positive transform (the same as a prior 1/sigma). sigma moves by about 0.12 sd; with 4 x 1000 NUTS
    # draws against the 10,000 reference draws, z is about -6 against t = 4.16 (detected ~98%).
    import pytensor.tensor as pt

    import pytensor_blackjax as pbj
    from pytensor_blackjax.examples import posteriordb
    from pytensor_blackjax.examples.posteriordb import _regressions

    folder = posteriordb_root / "mesquite-logmesquite_logvas"
    data = posteriordb.load_data(folder)
    correct = posteriordb.model(folder.name, data)
    # the same model built with a "prior" of -log(sigma): exactly the missing Jacobian
    monkeypatch.setattr(
        _regressions._regression, "__kwdefaults__", {"sigma_prior": lambda s: -pt.log(s), "beta_prior": None}
    )
    broken = posteriordb.model(folder.name, data)
    monkeypatch.undo()
    reference = load_reference(folder)
    results = {}
    for label, model in [("correct", correct), ("broken", broken)]:
        tree = pbj.sample(model, draws=1000, tune=1000, chains=4, seed=3, progressbar=False)
        ours = {k: v for k, v in _flat_posterior(tree).items() if k in reference}
        results[label] = compare(ours, reference)
    assert results["correct"].passed, results["correct"].failures()
    assert not results["broken"].passed
    assert {f.split(":")[0] for f in results["broken"].failures()} == {"sigma"}


def _flat_posterior(tree) -> dict[str, np.ndarray]:
    """Our posterior keyed by the reference's 1-based names (``beta[1]`` is ``beta`` at index 0)."""
    out = {}
    for name, values in tree["posterior"].to_dataset().items():
        array = np.asarray(values)
        if array.ndim == 2:
            out[str(name)] = array
        else:
            for i in np.ndindex(*array.shape[2:]):
                out[f"{name}[{','.join(str(j + 1) for j in i)}]"] = array[(..., *i)]
    return out


def test_z_scores_are_close_to_standard_normal_for_autocorrelated_draws():
    # AR(1) chains at rho 0.9 (ESS about 1/19 of the draws) against independent reference draws: the
    # MCSEs must carry the autocorrelation, or the threshold's false-alarm rate would be wrong.
    rng = np.random.default_rng(0)
    zs = []
    for _ in range(120):
        noise = rng.normal(size=(4, 1000)) * np.sqrt(1 - 0.9**2)
        chain = np.empty((4, 1000))
        chain[:, 0] = rng.normal(size=4)
        for t in range(1, 1000):
            chain[:, t] = 0.9 * chain[:, t - 1] + noise[:, t]
        zs.append(check_scalars("x", moments(chain), moments(rng.normal(size=(10, 1000)))).z)
    spread = np.std(zs, axis=0)
    assert np.all((spread > 0.8) & (spread < 1.3)), spread  # measured 1.07, 1.13, 1.15, 1.06 at 200 reps


def test_plans_skip_only_shipped_posteriors_and_say_why():
    from pytensor_blackjax.examples import posteriordb
    from pytensor_blackjax.validate import PLANS

    for plan in PLANS.values():
        unknown = set(plan.not_meant_for) - set(posteriordb.POSTERIORS)
        assert not unknown, f"{plan.name}: not_meant_for names unknown posteriors {sorted(unknown)}"
        assert all(len(reason) > 40 for reason in plan.not_meant_for.values()), plan.name


def test_plan_settings_name_shipped_posteriors_and_reach_the_sampler():
    from pytensor_blackjax.examples import posteriordb
    from pytensor_blackjax.samplers import HMC
    from pytensor_blackjax.validate import PLANS
    from pytensor_blackjax.validate._run import _sampler_for

    for plan in PLANS.values():
        for name, options in plan.settings.items():
            assert name in posteriordb.POSTERIORS, f"{plan.name}: settings for unknown posterior {name!r}"
            assert name not in plan.not_meant_for, f"{plan.name}: {name} has settings but is not run"
            config = _sampler_for(name, plan.name, plan)  # an unknown option raises here
            assert all(getattr(config, k) == v for k, v in options.items()), (plan.name, name)
    hmc = PLANS["hmc"]
    assert _sampler_for("gp_pois_regr-gp_pois_regr", "hmc", hmc).target_accept == 0.99
    assert _sampler_for("arK-arK", "hmc", hmc).target_accept == HMC().target_accept
