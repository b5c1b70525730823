"""Groups kept on request: the warmup draws (``keep_warmup``: ``warmup_posterior``,
``warmup_sample_stats``) and the unconstrained draws (``include_unconstrained``)."""

import numpy as np
import pytensor.tensor as pt
import pytest

import pytensor_blackjax as pbj

# Short runs: what is tested is the groups, not the draws' quality.
pytestmark = pytest.mark.filterwarnings("ignore::pytensor_blackjax.results.SamplingWarning")
SMALL = {"draws": 20, "tune": 25, "chains": 2, "seed": 4, "progressbar": False, "chunk_size": 10}


@pytest.fixture(scope="module")
def model():
    m = pbj.ModelBuilder(name="groups")
    mu = m.param("mu")
    sigma = m.param("sigma", transform="positive")
    w = m.param("w", shape=(3,), transform="simplex", dims="k")
    m.coords(k=["a", "b", "c"])
    m.deterministic("double", 2 * mu)
    m.add_logp(-0.5 * mu**2 - sigma + pt.sum(pt.log(w)))
    return m.build()


def test_warmup_groups_hold_every_warmup_step(model):
    # tune=25 in chunks of 10: the last warmup chunk is partial; thin does not apply to warmup
    tree = pbj.sample(model, **SMALL, thin=2, keep_warmup=True)
    warm, stats = tree["warmup_posterior"], tree["warmup_sample_stats"]
    assert set(warm.data_vars) == {"mu", "sigma", "w", "double"}
    assert warm["w"].dims == ("chain", "draw", "k") and warm["w"].shape == (2, 25, 3)
    np.testing.assert_array_equal(warm["draw"].values, np.arange(25))
    assert stats["diverging"].shape == (2, 25) and "step_size" in stats
    np.testing.assert_allclose(warm["double"].values, 2 * warm["mu"].values)
    assert np.all(np.isfinite(warm["mu"].values))
    # the warmup moves: its last draws are not its first
    assert not np.array_equal(warm["mu"].values[:, 0], warm["mu"].values[:, -1])
    assert int(tree.attrs["warmup_divergences"]) == int(stats["diverging"].values.sum())


@pytest.mark.parametrize("chain_method", ["vectorized", "parallel"])
def test_keep_warmup_leaves_the_posterior_unchanged(model, chain_method):
    plain = pbj.sample(model, **SMALL, chain_method=chain_method)
    kept = pbj.sample(model, **SMALL, chain_method=chain_method, keep_warmup=True)
    for name in ("mu", "sigma", "w"):
        np.testing.assert_array_equal(plain["posterior"][name].values, kept["posterior"][name].values)
    assert "warmup_posterior" not in plain.children


def test_var_names_apply_to_the_warmup_draws(model):
    tree = pbj.sample(model, **SMALL, keep_warmup=True, var_names=["mu"])
    assert list(tree["warmup_posterior"].data_vars) == ["mu"]


def test_keep_warmup_refused_where_warmup_makes_no_draws(model, tmp_path):
    with pytest.raises(ValueError, match=r"keep_warmup=True: the warmup of Pathfinder makes no draws"):
        pbj.sample(model, **SMALL, sampler="pathfinder", keep_warmup=True)
    with pytest.raises(ValueError, match=r"keep_warmup=True with store=.*drop one of them"):
        pbj.sample(model, **SMALL, keep_warmup=True, store=str(tmp_path / "s.zarr"))
    with pytest.raises(TypeError, match=r"include_unconstrained='yes' must be True or False"):
        pbj.sample(model, **SMALL, include_unconstrained="yes")


def test_unconstrained_draws_are_the_transformed_posterior(model):
    tree = pbj.sample(model, **SMALL, include_unconstrained=True)
    post, free = tree["posterior"], tree["unconstrained_posterior"]
    assert set(free.data_vars) == {"mu", "sigma_log__", "w_simplex__"}
    assert free["w_simplex__"].dims == ("chain", "draw", "w_simplex___dim_0")
    assert free["w_simplex__"].shape == (2, 20, 2)
    np.testing.assert_allclose(free["mu"].values, post["mu"].values)
    np.testing.assert_allclose(free["sigma_log__"].values, np.log(post["sigma"].values), rtol=1e-12)
    w = post["w"].values
    np.testing.assert_allclose(free["w_simplex__"].values, np.log(w[..., :2] / w[..., 2:]), rtol=1e-9)


class Crash(Exception):
    pass


def test_unconstrained_draws_go_to_the_store_and_survive_a_resume(model, tmp_path, monkeypatch):
    from pytensor_blackjax.store._sink import StoreSink

    reference = pbj.sample(model, **SMALL, include_unconstrained=True)
    store = str(tmp_path / "run.zarr")
    commit = StoreSink._commit_state

    def crash_at_20(self, state, *, num_draws, **kw):
        if num_draws == 20:  # the second chunk is on disk, its commit is not
            raise Crash
        return commit(self, state, num_draws=num_draws, **kw)

    monkeypatch.setattr(StoreSink, "_commit_state", crash_at_20)
    with pytest.raises(Crash):
        pbj.sample(model, **SMALL, include_unconstrained=True, store=store)
    monkeypatch.undo()
    again = pbj.resume(store, progressbar=False)
    np.testing.assert_array_equal(
        again["unconstrained_posterior"]["sigma_log__"].values,
        reference["unconstrained_posterior"]["sigma_log__"].values,
    )


def test_pymc_value_names():
    pm = pytest.importorskip("pymc")
    with pm.Model() as pm_model:
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Normal("y", 0.0, sigma, observed=[0.3, -1.2, 0.8])
    tree = pbj.sample(pm_model, **SMALL, include_unconstrained=True)
    np.testing.assert_allclose(
        tree["unconstrained_posterior"]["sigma_log__"].values, np.log(tree["posterior"]["sigma"].values)
    )
