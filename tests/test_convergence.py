"""The post-sampling R-hat and bulk ESS agree with ArviZ's."""

import numpy as np
import xarray as xr

from pytensor_blackjax.results._convergence import bulk_ess, rank_rhat


def ar1(rho, chains=4, draws=1000, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((chains, draws, 1))
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + rng.normal(size=(chains, 1))
    x[0] += shift
    return x


def test_rhat_and_ess_match_arviz():
    import arviz_stats

    for x in (ar1(0.9), ar1(0.2, seed=1), ar1(0.5, shift=3.0, seed=2)):
        ds = xr.Dataset({"a": (("chain", "draw"), x[..., 0])})
        np.testing.assert_allclose(rank_rhat(x)[0], float(arviz_stats.rhat(ds)["a"]), rtol=1e-6)
        np.testing.assert_allclose(bulk_ess(x)[0], float(arviz_stats.ess(ds, method="bulk")["a"]), rtol=0.02)


def test_rhat_flags_a_shifted_chain():
    assert rank_rhat(ar1(0.5, shift=3.0))[0] > 1.1
    assert rank_rhat(ar1(0.5))[0] < 1.01


def test_blocks_of_columns_give_the_same_answer():
    from pytensor_blackjax.results._convergence import rhat_and_ess

    x = np.concatenate([ar1(0.5, seed=s) for s in range(7)], axis=2)
    whole, blocked = rhat_and_ess(x, block=100), rhat_and_ess(x, block=3)
    np.testing.assert_allclose(whole[0], blocked[0])
    np.testing.assert_allclose(whole[1], blocked[1])


def _tree(**posterior):
    from pytensor_blackjax.results import make_datatree

    return make_datatree({"posterior": posterior})


def test_a_long_run_is_judged_on_evenly_spaced_draws(monkeypatch):
    from pytensor_blackjax.results import _diagnostics
    from pytensor_blackjax.results._convergence import rhat_and_ess

    x = np.concatenate([ar1(0.95, draws=4000, seed=s) for s in range(3)], axis=2)
    tree = _tree(a=x[..., :2], b=x[..., 2])
    whole = _diagnostics.convergence_of(tree)
    np.testing.assert_allclose(whole.rhat, rhat_and_ess(x)[0])  # short enough: every draw
    monkeypatch.setattr(_diagnostics, "MAX_VALUES_PER_ENTRY", 2000)
    assert _diagnostics.diagnostic_stride(4, 4000, 3) == 8
    thinned = _diagnostics.convergence_of(tree)
    expected = rhat_and_ess(x[:, ::8])
    np.testing.assert_allclose(thinned.rhat, expected[0])
    np.testing.assert_allclose(thinned.ess_bulk, expected[1])
    assert list(thinned.labels) == ["a[0]", "a[1]", "b"]
    monkeypatch.setattr(_diagnostics, "MAX_VALUES", 4000)  # all entries together: a larger stride
    assert _diagnostics.diagnostic_stride(4, 4000, 3) == 12


def test_thinning_keeps_the_ess_of_slow_chains_and_flags_a_stuck_one(monkeypatch):
    from pytensor_blackjax.results import _diagnostics

    # AR(1) at 0.995: ESS of 4 x 40 000 draws is 160 000 * 0.005 / 1.995 = 401, thinned by 8 the same
    x = ar1(0.995, draws=40_000, seed=3)
    whole = _diagnostics.convergence_of(_tree(a=x[..., 0]))
    monkeypatch.setattr(_diagnostics, "MAX_VALUES_PER_ENTRY", 20_000)
    thinned = _diagnostics.convergence_of(_tree(a=x[..., 0]))
    assert abs(thinned.ess_bulk[0] / whole.ess_bulk[0] - 1) < 0.15, (thinned.ess_bulk, whole.ess_bulk)
    assert 401 / 1.5 < thinned.ess_bulk[0] < 401 * 1.5
    stuck = ar1(0.5, draws=40_000, shift=1.0, seed=4)
    assert _diagnostics.convergence_of(_tree(a=stuck[..., 0])).rhat[0] > 1.05


def test_constant_non_finite_and_boolean_entries_are_left_out():
    from pytensor_blackjax.results import _diagnostics

    x = ar1(0.5)
    flags = x[..., 0] > 0
    nan = x[..., 0].copy()
    nan[1, 7] = np.nan
    conv = _diagnostics.convergence_of(_tree(a=x[..., 0], c=np.ones((4, 1000)), n=nan, flag=flags))
    assert list(conv.labels) == ["a", "flag"]
    assert np.all(np.isfinite(conv.rhat)) and len(conv.ess_bulk) == 2
