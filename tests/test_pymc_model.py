"""What Model.from_pymc keeps of a PyMC model: names, outputs, data, coords, bounds and errors."""

import jax
import numpy as np
import pytest
from pytensor.raise_op import Assert

pm = pytest.importorskip("pymc")

import pytensor_blackjax as pbj  # noqa: E402

# PyMC's reference functions compile to C; without a system BLAS PyTensor warns once about speed only
pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS:UserWarning")

Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def eight_schools():
    with pm.Model(coords={"school": list("ABCDEFGH")}) as m:
        sigma = pm.Data("sigma", SIGMA, dims="school")
        mu = pm.Normal("mu", 0, 5)
        tau = pm.HalfCauchy("tau", 5)
        z = pm.Normal("z", 0, 1, dims="school")
        theta = pm.Deterministic("theta", mu + tau * z, dims="school")
        pm.Normal("y", theta, sigma, observed=Y, dims="school")
        pm.Potential("tau_penalty", -0.01 * tau)
    return m


def test_names_outputs_and_source():
    pm_model = eight_schools()
    model = pbj.Model.from_pymc(pm_model)
    assert model.value_names == ("mu", "tau_log__", "z")
    assert model.value_shapes == {"mu": (), "tau_log__": (), "z": (8,)}
    assert list(model.outputs) == ["mu", "tau", "z", "theta"]
    assert model.source is pm_model


def test_coords_dims_and_data_kinds():
    model = pbj.Model.from_pymc(eight_schools())
    assert model.coords == {"school": list("ABCDEFGH")}
    assert model.dims["theta"] == ("school",) and model.dims["y"] == ("school",)
    assert model.data["sigma"].kind == "constant"
    assert model.data["y"].kind == "observed"
    np.testing.assert_array_equal(model.data["y"].value, Y)
    assert list(model.log_likelihood) == ["y"]


def test_potential_is_in_the_log_density():
    pm_model = eight_schools()
    compiled = pbj.compile(pbj.Model.from_pymc(pm_model))
    point = {"mu": np.array(1.0), "tau_log__": np.array(0.7), "z": np.linspace(-1, 1, 8)}
    with_potential = float(compiled.logdensity_fn(point))
    no_potential = float(
        pm_model.compile_logp(vars=pm_model.free_RVs + pm_model.observed_RVs, mode="FAST_COMPILE")(point)
    )
    np.testing.assert_allclose(with_potential - no_potential, -0.01 * np.exp(0.7), rtol=1e-10)


def test_pointwise_log_likelihood_equals_pymc():
    pm_model = eight_schools()
    compiled = pbj.compile(pbj.Model.from_pymc(pm_model))
    point = {"mu": np.array(1.0), "tau_log__": np.array(0.7), "z": np.linspace(-1, 1, 8)}
    ours = compiled.flat_log_likelihood(compiled.ravel(point), compiled.data_tuple())["y"]
    theirs = pm_model.compile_logp(vars=pm_model.observed_RVs, sum=False, mode="FAST_COMPILE")(point)[0]
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-10)


def test_data_swap_matches_pymc_and_does_not_retrace():
    pm_model = eight_schools()
    compiled = pbj.compile(pbj.Model.from_pymc(pm_model))
    traces = []

    @jax.jit
    def logdensity(flat, data):
        traces.append(1)
        return compiled.flat_logdensity(flat, data)

    point = {"mu": np.array(1.0), "tau_log__": np.array(0.7), "z": np.linspace(-1, 1, 8)}
    flat = compiled.ravel(point)
    new_sigma = SIGMA * 2
    first = float(logdensity(flat, compiled.data_tuple()))
    second = float(logdensity(flat, compiled.data_tuple({"sigma": new_sigma})))
    assert len(traces) == 1
    pymc_logp = pm_model.compile_logp(mode="FAST_COMPILE")
    np.testing.assert_allclose(first, pymc_logp(point), rtol=1e-10)
    pm_model.set_data("sigma", new_sigma)
    np.testing.assert_allclose(second, pymc_logp(point), rtol=1e-10)


def test_pm_data_as_observation_is_swappable_observed_data():
    with pm.Model() as pm_model:
        y_data = pm.Data("y_data", Y)
        mu = pm.Normal("mu", 0, 10)
        pm.Normal("y", mu, 5.0, observed=y_data)
    model = pbj.Model.from_pymc(pm_model)
    assert model.data["y_data"].kind == "observed"
    compiled = pbj.compile(model)
    point = {"mu": np.array(2.0)}
    ours = float(compiled.logdensity_with({"y_data": Y + 1})(point))
    pm_model.set_data("y_data", Y + 1)
    np.testing.assert_allclose(ours, pm_model.compile_logp(mode="FAST_COMPILE")(point), rtol=1e-10)


def test_observation_computed_from_data_is_reported():
    with pm.Model() as pm_model:
        raw = pm.Data("raw", Y)
        mu = pm.Normal("mu", 0, 10)
        pm.Normal("y", mu, 5.0, observed=raw - 3.0)
    model = pbj.Model.from_pymc(pm_model)
    assert model.data["raw"].kind == "constant"
    assert model.data["y"].kind == "observed"
    np.testing.assert_allclose(model.data["y"].value, Y - 3.0)


def test_discrete_free_variables_are_named_in_the_error():
    with pm.Model() as pm_model:
        pm.Normal("mu", 0, 1)
        pm.Poisson("count", 3.0)
        pm.Bernoulli("flag", 0.5, shape=2)
    with pytest.raises(ValueError, match=r"discrete free variables \['count', 'flag'\].*[Mm]arginalise"):
        pbj.Model.from_pymc(pm_model)


def test_not_a_pymc_model():
    with pytest.raises(TypeError, match="expected a pymc.Model, got dict"):
        pbj.Model.from_pymc({"mu": 1.0})


def test_model_without_free_variables():
    with pm.Model() as pm_model:
        pm.Normal("y", 0.0, 1.0, observed=Y)
    with pytest.raises(ValueError, match="no free random variables"):
        pbj.Model.from_pymc(pm_model)


def test_invalid_parameters_give_minus_inf_like_pymc():
    with pm.Model() as pm_model:
        scale = pm.Data("scale", np.array(2.0))
        mu = pm.Normal("mu", 0, 1)
        pm.Normal("y", mu, scale, observed=Y)
    compiled = pbj.compile(pbj.Model.from_pymc(pm_model))
    point = {"mu": np.array(0.3)}
    assert np.isfinite(float(compiled.logdensity_fn(point)))
    assert float(compiled.logdensity_with({"scale": np.array(-1.0)})(point)) == -np.inf
    pm_model.set_data("scale", np.array(-1.0))
    assert pm_model.compile_logp(mode="FAST_COMPILE")(point) == -np.inf


def test_observation_outside_the_support_gives_minus_inf():
    with pm.Model() as pm_model:
        waits = pm.Data("waits", np.array([0.5, 1.2, 3.0]))
        rate = pm.Gamma("rate", 2, 1)
        pm.Exponential("y", rate, observed=waits)
    compiled = pbj.compile(pbj.Model.from_pymc(pm_model))
    point = {"rate_log__": np.array(0.1)}
    assert float(compiled.logdensity_with({"waits": np.array([0.5, -1.2, 3.0])})(point)) == -np.inf
    grad = jax.grad(compiled.logdensity_fn)(point)
    assert np.isfinite(float(grad["rate_log__"]))


def test_check_bounds_false_drops_the_checks_like_pymc():
    with pm.Model(check_bounds=False) as pm_model:
        mu = pm.Normal("mu", 0, 1)
        pm.Normal("y", mu, 2.0, observed=Y)
    compiled = pbj.compile(pbj.Model.from_pymc(pm_model))
    point = {"mu": np.array(0.3)}
    np.testing.assert_allclose(
        float(compiled.logdensity_fn(point)), pm_model.compile_logp(mode="FAST_COMPILE")(point), rtol=1e-10
    )


def test_assertions_are_dropped_under_jax():
    with pm.Model() as pm_model:
        mu = pm.Normal("mu", 0, 1)
        pm.Potential("guard", Assert("mu must be below 5")(0.0 * mu, mu < 5))
    compiled = pbj.compile(pbj.Model.from_pymc(pm_model))
    # PyMC's C backend would raise here; JAX cannot, so the check is gone (documented in docs/pymc.md)
    np.testing.assert_allclose(
        float(compiled.logdensity_fn({"mu": np.array(6.0)})), -18.0 - 0.5 * np.log(2 * np.pi), rtol=1e-12
    )


def test_shapes_equal_pymcs_own():
    from pytensor_blackjax.model._pymc import rv_shapes

    with pm.Model(coords={"g": range(4)}) as m:
        x = pm.Data("x", np.ones((6, 3)))
        w = pm.Dirichlet("w", np.ones(3))
        s = pm.HalfNormal("s", 1, dims="g")
        pm.Normal("b", 0, 1, shape=(x.shape[1], 2))
        pm.LKJCholeskyCov("chol", n=3, eta=2.0, sd_dist=pm.Exponential.dist(1.0, shape=3))
        pm.Normal("y", pm.math.dot(x, w) + s.sum(), 1, observed=np.zeros(6))
    assert rv_shapes(m) == m.eval_rv_shapes()
    assert rv_shapes(eight_schools()) == eight_schools().eval_rv_shapes()


def test_translation_compiles_no_c_code(tmp_path):
    """PyMC's own shape evaluation builds PyTensor's C virtual machine: seconds on a machine whose
    PyTensor cache is empty; the translation evaluates shapes and dimension lengths in Python."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, pymc as pm, pytensor_blackjax as pbj\n"
        "with pm.Model(coords={'g': range(3)}) as m:\n"
        "    k = pm.Data('k', np.ones(3), dims='g')\n"
        "    a = pm.HalfNormal('a', 1, dims='g')\n"
        "    pm.Normal('y', a * k, 1, observed=pm.math.exp(k))\n"
        "pbj.Model.from_pymc(m)\n"
        "print(sorted(k for k in sys.modules if k.startswith('pytensor.link.c.')))\n"
    )
    env = {**os.environ, "PYTENSOR_FLAGS": f"compiledir={tmp_path}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert "lazylinker_c" not in out.stdout and "cvm" not in out.stdout, out.stdout


def test_terms_and_log_prior_are_built_on_first_use():
    # a run reads them only on request (log_prior=True, a log-density that is not finite)
    model = pbj.Model.from_pymc(eight_schools())
    assert not model.terms.built and not model.log_prior.built
    compiled = pbj.compile(model)
    compiled.flat_logdensity(np.zeros(compiled.num_dims), compiled.data_tuple())
    assert not model.terms.built and not model.log_prior.built
    assert list(model.terms) == ["mu", "tau", "z", "y", "tau_penalty"]
    assert list(model.log_prior) == ["mu", "tau", "z"]
    assert model.terms.built and model.log_prior.built


def test_a_model_pickles_with_its_unbuilt_graphs_built():
    import pickle

    from pytensor_blackjax.store._model_io import dump_model

    model = pbj.Model.from_pymc(eight_schools())
    back = pickle.loads(dump_model(model))
    assert list(back.terms) == list(model.terms) and list(back.log_prior) == list(model.log_prior)
    assert type(back.terms).__name__ == "mappingproxy"


def test_lazy_graphs_build_once_across_threads():
    import threading

    from pytensor_blackjax.model._model import LazyGraphs

    calls = []
    barrier = threading.Barrier(8)

    def build():
        calls.append(1)
        return {"a": None}

    lazy = LazyGraphs(build)

    def read():
        barrier.wait()
        assert list(lazy) == ["a"]

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
