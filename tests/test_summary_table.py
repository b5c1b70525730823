"""The command line's summary table is ArviZ's summary (``arviz_stats.summary``, tail ESS at
`TAIL_PROB`), row for row and column for column, computed for all entries at once without importing
``arviz_stats``."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
from arviz_base import rc_context

from pytensor_blackjax.cli import _report
from pytensor_blackjax.results import make_datatree


def ar1(rng, chains, draws, *shape, phi=0.8):
    noise = rng.normal(size=(chains, draws, *shape))
    x = np.empty_like(noise)
    x[:, 0] = noise[:, 0]
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


def tree_of(chains, draws, seed=0):
    """Scalars, a vector with named coordinates, a matrix, a constant, a heavy-tailed and a slowly
    mixing variable."""
    rng = np.random.default_rng(seed)
    posterior = {
        "mu": ar1(rng, chains, draws),
        "theta": 2.0 * ar1(rng, chains, draws, 3) + 5.0,
        "L": ar1(rng, chains, draws, 2, 2, phi=0.3),
        "fixed": np.full((chains, draws), 1.5),
        "scale": np.exp(2.0 * ar1(rng, chains, draws)),
        "slow": ar1(rng, chains, draws, phi=0.995),
    }
    coords = {"school": ["A", "B", "C"]}
    return make_datatree({"posterior": posterior}, coords=coords, dims={"theta": ["school"]})


def arviz_table(tree, kind="all"):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return _report._arviz_summary(tree, kind)


def assert_same_table(ours: pd.DataFrame, reference: pd.DataFrame) -> None:
    assert list(ours.index) == list(reference.index)
    assert list(ours.columns) == list(reference.columns)
    got, expected = ours.to_numpy(float), reference.to_numpy(float)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=0)


@pytest.mark.parametrize("chains, draws", [(4, 400), (2, 101), (8, 50)])
def test_the_table_is_arvizs_summary(chains, draws):
    tree = tree_of(chains, draws)
    table = _report.summary_table(tree)
    assert list(table.index[:5]) == ["mu", "theta[A]", "theta[B]", "theta[C]", "L[0, 0]"]
    assert list(table.columns) == [
        "mean", "sd", "eti89_lb", "eti89_ub", "ess_bulk", "ess_tail", "r_hat", "mcse_mean", "mcse_sd"
    ]  # fmt: skip
    assert_same_table(table, arviz_table(tree))


def test_a_wrong_estimator_is_caught(monkeypatch):
    """The comparison has power: an MCSE of the mean from the bulk ESS (not ArviZ's mean ESS) fails it."""
    from pytensor_blackjax.run import _until_diagnostics

    def bulk_instead(x):
        return _until_diagnostics.rank_diagnostics(x, tail=False, rhat=False)["ess_bulk"]

    monkeypatch.setattr(_until_diagnostics, "mean_ess", bulk_instead)
    tree = tree_of(4, 400)
    with pytest.raises(AssertionError):
        assert_same_table(_report.summary_table(tree), arviz_table(tree))


def test_short_single_and_broken_chains_give_nan_where_arviz_does():
    one_chain = tree_of(1, 60)
    table = _report.summary_table(one_chain)
    assert table["r_hat"].isna().all() and table["ess_bulk"].notna().any()
    assert_same_table(table, arviz_table(one_chain))
    short = tree_of(4, 3)
    assert_same_table(_report.summary_table(short), arviz_table(short))
    broken = tree_of(4, 100)
    broken["posterior"]["mu"].values[2, 10] = np.nan
    table = _report.summary_table(broken)
    assert table.loc["mu"].isna().all() and table.loc["theta[A]"].notna().all()
    assert_same_table(table, arviz_table(broken))


def test_an_approximation_gets_the_statistics_only():
    tree = tree_of(4, 200)
    tree.attrs["approximate"] = 1
    table = _report.summary_table(tree)
    assert list(table.columns) == ["mean", "sd", "eti89_lb", "eti89_ub"]
    assert_same_table(table, arviz_table(tree, kind="stats"))


def test_the_interval_follows_arvizs_settings():
    tree = tree_of(4, 200)
    with rc_context({"stats.ci_prob": 0.9}):
        table = _report.summary_table(tree)
        assert {"eti90_lb", "eti90_ub"} <= set(table.columns)
        assert_same_table(table, arviz_table(tree))
    with rc_context({"stats.ci_kind": "hdi"}):
        assert {"hdi89_lb", "hdi89_ub"} <= set(_report.summary_table(tree).columns)


def test_the_table_does_not_import_arviz_stats():
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from pytensor_blackjax.cli._report import summary_table
        from pytensor_blackjax.results import make_datatree
        tree = make_datatree({"posterior": {"x": np.random.default_rng(0).normal(size=(4, 100, 2))}})
        summary_table(tree)
        assert "arviz_stats" not in sys.modules, "arviz_stats imported"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_posterior_without_variables_gives_the_columns_and_no_rows():
    tree = tree_of(2, 10)
    tree["posterior"] = tree["posterior"].to_dataset().drop_vars(list(tree["posterior"].data_vars))
    table = _report.summary_table(tree)
    assert table.empty and list(table.columns)[:4] == ["mean", "sd", "eti89_lb", "eti89_ub"]


def test_a_long_run_is_summarised_in_blocks_with_the_same_numbers(monkeypatch):
    """Blocks of scalars bound a long run's temporaries; every number is the same bit for bit, and a
    block of one scalar longer than the bound still gets its row."""
    from pytensor_blackjax.run import _until_diagnostics

    tree = tree_of(4, 400)
    whole = _report.summary_table(tree)
    seen = []
    compute = _until_diagnostics.rank_diagnostics
    monkeypatch.setattr(
        _until_diagnostics, "rank_diagnostics", lambda x, **o: seen.append(len(x)) or compute(x, **o)
    )
    for bound, sizes in ((3200, [2, 2, 2, 2, 2, 1]), (1000, [1] * 11)):
        seen.clear()
        monkeypatch.setattr(_until_diagnostics, "SCALAR_BLOCK_VALUES", bound)
        pd.testing.assert_frame_equal(_report.summary_table(tree), whole, check_exact=True)
        assert seen == sizes
