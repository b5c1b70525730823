"""``log_prior=True``: each free variable's pointwise prior log-density at every draw, for power-scaling
sensitivity (``arviz_stats.psense_summary``), from a builder's declared prior terms; kept by resume."""

import json

import arviz_stats
import numpy as np
import pytensor.tensor as pt
import pytest
from scipy import stats

import pytensor_blackjax as pbj
from pytensor_blackjax.store._sink import StoreSink

# short runs of a small hierarchical model may show a divergence; the draws are not what is tested here
pytestmark = pytest.mark.filterwarnings("ignore::pytensor_blackjax.SamplingWarning")
KW = dict(draws=400, tune=400, chains=2, seed=4, chunk_size=100, progressbar=False)
Y = np.array([1.2, 0.4, 2.2, 1.9, 0.7, 1.4])


def normal_logpdf(x, mu, sd):
    return -0.5 * ((x - mu) / sd) ** 2 - pt.log(sd) - 0.5 * np.log(2 * np.pi)


def regression(with_priors=True):
    """y ~ Normal(mu + b[group], sigma): priors on sigma (half-normal), mu and b, declared in the order
    sigma, mu, b - not the order the terms are added."""
    m = pbj.ModelBuilder()
    sigma = m.param("sigma", transform="positive")
    mu = m.param("mu")
    b = m.param("b", shape=(2,))
    y = m.data("y", Y, observed=True)
    group = m.data("group", np.array([0, 0, 0, 1, 1, 1]))
    prior = dict.fromkeys(("sigma", "mu", "b")) if not with_priors else {k: k for k in ("sigma", "mu", "b")}
    m.add_logp(normal_logpdf(b, 0.0, 1.0), prior=prior["b"])
    m.add_logp(normal_logpdf(mu, 0.0, 5.0), prior=prior["mu"])
    m.add_logp(normal_logpdf(sigma, 0.0, 2.0) + np.log(2.0), prior=prior["sigma"])
    pointwise = normal_logpdf(y, mu + b[group], sigma)
    m.add_logp(pointwise)
    m.log_likelihood("y", pointwise)
    return m.build()


@pytest.fixture(scope="module")
def tree():
    return pbj.sample(regression(), log_likelihood=True, log_prior=True, **KW)


def test_builder_log_prior_holds_the_declared_terms_at_each_draw(tree):
    prior, post = tree["log_prior"], tree["posterior"]
    assert list(prior.data_vars) == ["sigma", "mu", "b"]  # the params' order
    assert prior["b"].dims == post["b"].dims and prior["mu"].dims == ("chain", "draw")
    np.testing.assert_allclose(prior["mu"].values, stats.norm(0, 5).logpdf(post["mu"].values), atol=1e-10)
    np.testing.assert_allclose(prior["b"].values, stats.norm(0, 1).logpdf(post["b"].values), atol=1e-10)
    sigma = stats.halfnorm(scale=2.0).logpdf(post["sigma"].values)  # no Jacobian, as in PyMC
    np.testing.assert_allclose(prior["sigma"].values, sigma, atol=1e-10)


def test_psense_summary_runs_on_a_builder_model(tree):
    sensitivity = arviz_stats.psense_summary(tree)
    assert np.isfinite(sensitivity[["prior", "likelihood"]].to_numpy(dtype=float)).all()


def test_log_prior_without_declared_priors_is_refused():
    with pytest.raises(
        ValueError, match=r"log_prior=True but the model declares no prior terms.*prior='name'"
    ):
        pbj.sample(regression(with_priors=False), log_prior=True, **KW)


def test_a_prior_must_name_a_param():
    m = pbj.ModelBuilder()
    mu = m.param("mu")
    with pytest.raises(ValueError, match=r"add_logp\(prior='nu'\): 'nu' is not a param.*\['mu'\]"):
        m.add_logp(-0.5 * mu**2, prior="nu")


def test_var_names_do_not_stop_the_log_prior():
    tree = pbj.sample(regression(), log_prior=True, var_names=["mu"], **KW)
    assert list(tree["posterior"].data_vars) == ["mu"]
    assert list(tree["log_prior"].data_vars) == ["sigma", "mu", "b"]


def test_a_resumed_run_keeps_its_log_prior(tmp_path, monkeypatch, tree):
    path = tmp_path / "run.zarr"
    commit = StoreSink._commit_state

    def crash_at_200(self, carry, *, num_draws, **kw):
        if num_draws == 200:
            raise RuntimeError("the process dies")
        return commit(self, carry, num_draws=num_draws, **kw)

    monkeypatch.setattr(StoreSink, "_commit_state", crash_at_200)
    with pytest.raises(RuntimeError, match="the process dies"):
        pbj.sample(regression(), log_likelihood=True, log_prior=True, store=str(path), **KW)
    monkeypatch.undo()
    assert json.loads((path / "_pbj" / "run.json").read_text())["log_prior"] is True
    resumed = pbj.resume(str(path), progressbar=False)
    for name in ("sigma", "mu", "b"):
        np.testing.assert_array_equal(resumed["log_prior"][name].values, tree["log_prior"][name].values)
    extended = pbj.extend(str(path), draws=100, progressbar=False)
    assert extended["log_prior"]["b"].shape == (2, 500, 2)


def test_a_pymc_model_with_initval_converts_and_says_why_it_has_no_log_prior():
    import pymc as pm

    with pm.Model() as pm_model:
        mu = pm.Normal("mu", 0, 1, initval=0.5)
        pm.Normal("y", mu, 1, observed=[0.1, -0.2])
    model = pbj.Model.from_pymc(pm_model)  # converts: only the log prior needs PyMC's model copy
    with pytest.raises(ValueError, match=r"initval= set \(\['mu'\]\).*pass initvals=\{\.\.\.\} to sample"):
        pbj.sample(model, log_prior=True, draws=10, tune=10, chains=1, progressbar=False)
