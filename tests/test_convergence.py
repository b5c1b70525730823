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
