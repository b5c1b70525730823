"""``sample(initvals=...)``: chains start at given constrained values, converted through the model's
transforms; bad values are errors that name the variable and the fix."""

import numpy as np
import pytensor.tensor as pt
import pytest

import pytensor_blackjax as pbj
from pytensor_blackjax._initvals import check_initvals, start_points
from pytensor_blackjax.run._keys import chain_keys
from pytensor_blackjax.run._start import initial_points

# Short runs: what is tested is where chains start, not the draws' quality.
pytestmark = pytest.mark.filterwarnings("ignore::pytensor_blackjax.results.SamplingWarning")
SMALL = {"draws": 20, "tune": 20, "chains": 2, "seed": 1, "progressbar": False, "chunk_size": 10}


@pytest.fixture(scope="module")
def model():
    m = pbj.ModelBuilder(name="three")
    mu = m.param("mu")
    sigma = m.param("sigma", transform="positive")
    w = m.param("w", shape=(3,), transform="simplex")
    m.deterministic("double", 2 * mu)
    # mu ~ N(0, 10): far starts stay far for the first warmup steps
    m.add_logp(-0.5 * (mu / 10.0) ** 2 - sigma + pt.sum(pt.log(w)))
    return m.build()


def _starts(model, initvals, chains=2, seed=1):
    compiled = pbj.compile(model)
    given, shared = check_initvals(initvals, compiled, chains)
    data = compiled.data_tuple()
    default = initial_points(compiled, chain_keys(seed, chains), data)
    return compiled, default, start_points(given, compiled, default, data, shared=shared)


def test_start_points_are_the_unconstrained_given_values(model):
    compiled, default, starts = _starts(model, [{"mu": 3.0, "sigma": 2.0}, {"w": [0.2, 0.3, 0.5]}])
    blocks = {b.name: b for b in compiled.blocks}
    mu, sigma, w = blocks["mu"], blocks["sigma_log__"], blocks["w_simplex__"]
    assert starts[0, mu.start] == 3.0
    assert np.isclose(starts[0, sigma.start], np.log(2.0))
    np.testing.assert_allclose(starts[1, w.start : w.start + 2], np.log([0.2, 0.3]) - np.log(0.5))
    # the variables not named keep the default start
    np.testing.assert_array_equal(starts[0, w.start : w.start + 2], default[0, w.start : w.start + 2])
    np.testing.assert_array_equal(starts[1, : w.start], default[1, : w.start])


def test_chains_start_at_the_given_values(model):
    # before initvals existed this was a TypeError; a default start lies in (-2, 2)
    tree = pbj.sample(model, **SMALL, keep_warmup=True, initvals=[{"mu": 40.0}, {"mu": -40.0, "sigma": 0.5}])
    first = tree["warmup_posterior"]["mu"].values[:, 0]
    assert first[0] > 30 and first[1] < -30
    one = pbj.sample(model, **SMALL, keep_warmup=True, initvals={"mu": 40.0})
    assert np.all(one["warmup_posterior"]["mu"].values[:, 0] > 30)


@pytest.mark.parametrize("chain_method", ["vectorized", "parallel"])
def test_initvals_in_every_per_chain_layout(model, chain_method):
    tree = pbj.sample(model, **SMALL, keep_warmup=True, chain_method=chain_method, initvals={"mu": 40.0})
    assert np.all(tree["warmup_posterior"]["mu"].values[:, 0] > 30)


def test_ensemble_samplers_jitter_one_shared_dict(model):
    compiled = pbj.compile(model)
    given, shared = check_initvals({"mu": 3.0}, compiled, 4)
    data = compiled.data_tuple()
    default = initial_points(compiled, chain_keys(1, 4), data)
    starts = start_points(given, compiled, default, data, jitter_seed=1)
    mu = starts[:, 0]
    assert shared and len(set(mu.tolist())) == 4 and np.all(np.abs(mu - 3.0) <= 1.0)
    tree = pbj.sample(model, draws=20, tune=20, chains=4, seed=1, progressbar=False, sampler="pathfinder",
                      initvals={"mu": 3.0})  # fmt: skip
    assert tree["posterior"]["mu"].shape == (4, 20)


@pytest.mark.parametrize(
    ("initvals", "error", "match"),
    [
        ({"sigam": 1.0}, ValueError, r"'sigam' is not a free variable.*did you mean 'sigma'\?"),
        ({"sigma_log__": 0.0}, ValueError, r"unconstrained value of 'sigma'; give 'sigma'"),
        ({"double": 1.0}, ValueError, r"'double' is a deterministic"),
        ({"w": [0.5, 0.5]}, ValueError, r"initvals\['w'\] has shape \(2,\) but 'w' has shape \(3,\)"),
        ({"sigma": -1.0}, ValueError, r"initvals\['sigma'\]=-1.0 is outside the support of 'sigma'"),
        ({"w": [0.2, 0.2, 0.2]}, ValueError, r"initvals\['w'\].*outside the support of 'w'"),
        ({"mu": np.nan}, ValueError, r"initvals\['mu'\]=nan is not finite"),
        ([{"mu": 1.0}], ValueError, r"initvals has 1 dicts for chains=2"),
        ("mu=1", TypeError, r"give a dict \{variable name: value\}"),
        ([{"mu": 1.0}, 2.0], TypeError, r"initvals\[1\]=2.0 is not a dict"),
    ],
)
def test_bad_initvals_name_the_culprit(model, initvals, error, match):
    with pytest.raises(error, match=match):
        pbj.sample(model, **SMALL, initvals=initvals)


def test_a_start_with_infinite_log_density_names_the_term():
    m = pbj.ModelBuilder()
    mu = m.param("mu")
    y = m.data("y", [0.5, 1.5], observed=True)
    m.add_logp(-0.5 * mu**2)
    m.add_logp(pt.sum(pt.switch(pt.lt(y, mu), -np.inf, -(y - mu))))  # y >= mu: an exponential's support
    with pytest.raises(ValueError, match=r"log-density is not finite at the start.*add_logp term 2: -inf"):
        pbj.sample(m.build(), **SMALL, initvals={"mu": 1.0})


def test_smc_refuses_initvals(model):
    with pytest.raises(ValueError, match=r"initvals: SMC does not start from given points"):
        pbj.sample(model, **SMALL, sampler="smc", initvals={"mu": 1.0})


def test_from_logp_models_take_their_input_names():
    x = pt.vector("x", shape=(2,))
    model = pbj.Model.from_logp(-0.5 * pt.sum(x**2), inputs=[x])
    compiled, _, starts = _starts(model, {"x": [7.0, -7.0]})
    np.testing.assert_array_equal(starts, [[7.0, -7.0], [7.0, -7.0]])


class Crash(Exception):
    pass


def test_a_store_records_the_start_and_resume_repeats_it(model, tmp_path, monkeypatch):
    from pytensor_blackjax.store._sink import StoreSink

    reference = pbj.sample(model, **SMALL, initvals={"mu": 40.0})
    store = tmp_path / "run.zarr"

    def crash(self, checkpoint):
        raise Crash

    # killed at the end of warmup: the resume repeats the warmup from the recorded start
    monkeypatch.setattr(StoreSink, "warmup_done", crash)
    with pytest.raises(Crash):
        pbj.sample(model, **SMALL, initvals={"mu": 40.0}, store=str(store))
    monkeypatch.undo()
    starts = np.load(store / "_pbj" / "start.npz")["start"]
    assert np.all(starts[:, 0] == 40.0)
    again = pbj.resume(str(store), progressbar=False)
    np.testing.assert_array_equal(again["posterior"]["mu"].values, reference["posterior"]["mu"].values)


pm = pytest.importorskip("pymc")


def test_pymc_names_and_a_bound_given_by_another_variable():
    with pm.Model() as pm_model:
        a = pm.Normal("a", 0.0, 1.0)
        pm.HalfNormal("s", 1.0, shape=2)
        pm.Uniform("u", lower=a, upper=a + 2.0)
    compiled, _, starts = _starts(pbj.Model.from_pymc(pm_model), {"a": 0.5, "s": [1.0, 2.0], "u": 2.0})
    blocks = {b.name: b for b in compiled.blocks}
    assert starts[0, blocks["a"].start] == 0.5
    np.testing.assert_allclose(starts[0, blocks["s_log__"].start :][:2], np.log([1.0, 2.0]))
    # u = 2 in (0.5, 2.5): its interval value uses a's given value
    assert np.isclose(starts[0, blocks["u_interval__"].start], np.log(1.5) - np.log(0.5))
    with pytest.raises(ValueError, match=r"initvals\['u'\]=3.0 is outside the support of 'u'"):
        _starts(pbj.Model.from_pymc(pm_model), {"a": 0.5, "u": 3.0})
