"""``sample``'s arguments as a PyMC user writes them: model context, pm.Model, target_accept, var_names,
and unknown keywords that name the nearest valid one."""

import dataclasses

import numpy as np
import pytest

import pytensor_blackjax as pbj
from pytensor_blackjax._arguments import resolve_model
from pytensor_blackjax.samplers import SAMPLERS

# Short runs: what is tested is the arguments, not the draws' quality.
pytestmark = pytest.mark.filterwarnings("ignore::pytensor_blackjax.results.SamplingWarning")
SMALL = {"draws": 50, "tune": 50, "chains": 2, "seed": 1, "progressbar": False}


@pytest.fixture(scope="module")
def model():
    m = pbj.ModelBuilder(name="two")
    mu = m.param("mu")
    sigma = m.param("sigma", transform="positive")
    m.add_logp(-0.5 * mu**2 - sigma)
    return m.build()


@pytest.mark.parametrize(
    ("keyword", "match"),
    [
        ("random_seed", r"'random_seed'.*use seed="),
        ("nuts_sampler", r"'nuts_sampler'.*use sampler="),
        ("store_unconstrained", r"'store_unconstrained'.*use include_unconstrained=True"),
        ("discard_tuned_samples", r"use keep_warmup="),
        ("draw", r"'draw'; did you mean 'draws'\?"),
        ("chain", r"did you mean 'chains'\?"),
    ],
)
def test_unknown_keywords_name_the_nearest(model, keyword, match):
    with pytest.raises(TypeError, match=match):
        pbj.sample(model, **{keyword: 1})


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler_config_typos_suggest_the_field(name):
    cls = SAMPLERS[name]
    field = dataclasses.fields(cls)[0].name
    cls()  # the defaults still construct
    with pytest.raises(TypeError, match=rf"{cls.__name__} has no option '{field}x'; did you mean '{field}'"):
        cls(**{field + "x": 1.0})


def test_nuts_typo_names_target_accept():
    with pytest.raises(TypeError, match=r"did you mean 'target_accept'\?"):
        pbj.samplers.NUTS(target_acept=0.9)


def test_target_accept_and_var_names(model):
    tree = pbj.sample(model, target_accept=0.95, var_names=["sigma"], **SMALL)
    assert "target_accept=0.95" in tree.attrs["sampler_config"]
    assert list(tree["posterior"].data_vars) == ["sigma"]


def test_target_accept_refused_without_one(model):
    with pytest.raises(ValueError, match=r"target_accept=0.9: the 'mclmc' sampler has no target acceptance"):
        pbj.sample(model, sampler="mclmc", target_accept=0.9, **SMALL)


def test_var_names_are_checked(model):
    with pytest.raises(ValueError, match=r"'sigam' is not a variable of the model; did you mean 'sigma'\?"):
        pbj.sample(model, var_names=["sigam"], **SMALL)


def test_no_model_and_no_context_says_what_to_pass():
    with pytest.raises(TypeError, match=r"sample\(\) needs a model: pass one"):
        pbj.sample(**SMALL)
    with pytest.raises(TypeError, match=r"expected a pbj.Model, a CompiledModel or a pymc.Model, got dict"):
        pbj.sample({}, **SMALL)
    builder = pbj.ModelBuilder()
    builder.add_logp(-0.5 * builder.param("mu") ** 2)
    with pytest.raises(TypeError, match=r"got ModelBuilder; pass the model it builds, m\.build\(\)\.$"):
        pbj.sample(builder, **SMALL)


def test_pymc_model_from_the_context_and_as_argument():
    pm = pytest.importorskip("pymc")
    with pm.Model() as pm_model:
        mu = pm.Normal("mu", 0.0, 1.0)
        pm.Normal("y", mu, 1.0, observed=np.array([0.5, 1.5]))
        tree = pbj.sample(**SMALL)
    assert list(tree["posterior"].data_vars) == ["mu"]
    first = resolve_model(pm_model)
    assert resolve_model(pm_model) is first  # translated once: its compiled programs are reused
    again = pbj.sample(pm_model, **SMALL)
    np.testing.assert_array_equal(again["posterior"]["mu"].values, tree["posterior"]["mu"].values)
    with pm_model:
        pm.Normal("z", 0.0, 1.0)
    assert resolve_model(pm_model) is not first  # the model grew: translated again
    assert "z" in resolve_model(pm_model).outputs
