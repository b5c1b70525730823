"""Bad input gives an error naming the argument, the offending value and the fix."""

import numpy as np
import pytensor.tensor as pt
import pytest

import pytensor_blackjax as pbj
from pytensor_blackjax.model import transforms


@pytest.fixture(scope="module")
def tiny():
    """A 2-d Gaussian with named data, compiled once for the sample-argument checks."""
    m = pbj.ModelBuilder(name="tiny")
    mu = m.param("mu", shape=(2,))
    y = m.data("y", np.array([0.5, -0.5]), observed=True)
    m.add_logp(-0.5 * pt.sum((y - mu) ** 2))
    return pbj.compile(m.build())


# -- Model.from_logp --------------------------------------------------------------------------------
def test_non_scalar_logp():
    x = pt.vector("x", shape=(3,))
    with pytest.raises(ValueError, match=r"from_logp: the log-density must be a scalar, got ndim=1.*pt.sum"):
        pbj.Model.from_logp(x**2, inputs=[x])


def test_logp_that_is_not_a_tensor():
    x = pt.scalar("x")
    with pytest.raises(TypeError, match=r"must be a PyTensor tensor expression, got float"):
        pbj.Model.from_logp(1.0, inputs=[x])


def test_non_root_input():
    x = pt.scalar("x")
    with pytest.raises(ValueError, match=r"inputs\[0\] .* is not a root input.*pt.scalar\('log_a'\)"):
        pbj.Model.from_logp(-(x**2), inputs=[pt.exp(x)])


def test_constant_or_shared_input():
    import pytensor

    shared = pytensor.shared(np.ones(3), name="w")
    with pytest.raises(ValueError, match=r"inputs\[0\] \(w\) is a shared variable, which the sampler cannot"):
        pbj.Model.from_logp(-pt.sum(shared**2), inputs=[shared])
    const = pt.constant(np.ones(3), name="c")
    with pytest.raises(ValueError, match=r"inputs\[0\] .* is a constant, which the sampler cannot move"):
        pbj.Model.from_logp(-pt.sum(const**2), inputs=[const])


def test_integer_input():
    k = pt.iscalar("k")
    with pytest.raises(TypeError, match=r"inputs\[0\] 'k' has dtype int32: integer \(discrete\) parameters"):
        pbj.Model.from_logp(-(pt.cast(k, "float64") ** 2), inputs=[k])


def test_unnamed_input():
    x = pt.scalar()
    with pytest.raises(ValueError, match=r"inputs\[0\] has no name; create it with a name"):
        pbj.Model.from_logp(-(x**2), inputs=[x])


def test_inputs_not_a_list():
    x = pt.scalar("x")
    with pytest.raises(TypeError, match=r"inputs must be a list of variables, e.g. inputs=\[log_a, log_b\]"):
        pbj.Model.from_logp(-(x**2), inputs=x)


def test_duplicate_input_names():
    a1, a2 = pt.scalar("a"), pt.scalar("a")
    with pytest.raises(ValueError, match=r"duplicate input names \['a'\]"):
        pbj.Model.from_logp(-(a1**2) - a2**2, inputs=[a1, a2])


def test_deterministic_named_like_an_input():
    a = pt.scalar("a")
    with pytest.raises(ValueError, match=r"deterministic 'a' has the same name as an input; rename"):
        pbj.Model.from_logp(-(a**2), inputs=[a], deterministics={"a": pt.exp(a)})


def test_negative_shape_in_shapes():
    x = pt.vector("x")
    with pytest.raises(ValueError, match=r"shapes\['x'\]=\(-2,\) does not fit input 'x'.*non-negative"):
        pbj.Model.from_logp(-pt.sum(x**2), inputs=[x], shapes={"x": (-2,)})


def test_missing_input():
    a, b = pt.scalar("a"), pt.scalar("b")
    model = pbj.Model.from_logp(-(a**2) - b**2, inputs=[a])
    with pytest.raises(ValueError, match=r"depend on \['b'\], which are neither inputs nor data"):
        pbj.compile(model)


# -- ModelBuilder -----------------------------------------------------------------------------------
def test_builder_duplicate_names():
    m = pbj.ModelBuilder()
    m.param("a")
    with pytest.raises(ValueError, match=r"param name 'a' is already used in this model"):
        m.param("a", transform="positive")
    with pytest.raises(ValueError, match=r"deterministic name 'a' is already used in this model"):
        m.deterministic("a", pt.constant(1.0))
    with pytest.raises(ValueError, match=r"data name 'a' is already used in this model"):
        m.data("a", [1.0])


def test_builder_name_clashing_with_an_unconstrained_value():
    m = pbj.ModelBuilder()
    m.param("s", transform="positive")
    with pytest.raises(ValueError, match=r"deterministic name 's_log__' is already used"):
        m.deterministic("s_log__", pt.constant(1.0))


def test_builder_unknown_transform():
    m = pbj.ModelBuilder()
    with pytest.raises(ValueError, match=r"param 'a': unknown transform='postive'. Use one of None, 'real'"):
        m.param("a", transform="postive")
    with pytest.raises(TypeError, match=r"param 'a': transform=3 is neither a name nor a Transform"):
        m.param("a", transform=3)


@pytest.mark.parametrize("shape", [(-1,), (2, -3), (1.5,), "3"])
def test_builder_bad_shape(shape):
    m = pbj.ModelBuilder()
    with pytest.raises((ValueError, TypeError), match=r"param 'a': shape=.* non-negative integers"):
        m.param("a", shape=shape)


@pytest.mark.parametrize("name", ["", "1a", "a b", "class", None])
def test_builder_bad_name(name):
    m = pbj.ModelBuilder()
    with pytest.raises(ValueError, match=r"param name .* is not usable"):
        m.param(name)


def test_builder_bad_data():
    m = pbj.ModelBuilder()
    with pytest.raises(ValueError, match=r"data 'y' contains NaN or inf"):
        m.data("y", [1.0, np.nan])
    with pytest.raises(TypeError, match=r"data 'y' must be numeric, got dtype <U1"):
        m.data("y", ["a", "b"])


def test_builder_non_scalar_term_is_summed_but_integer_logp_is_rejected():
    m = pbj.ModelBuilder()
    a = m.param("a")
    m.add_logp(pt.stack([-(a**2), -(a**2)]))
    with pytest.raises(TypeError, match=r"add_logp: the log-density must be floating point, got dtype int64"):
        m.add_logp(pt.constant(1, dtype="int64"))


def test_builder_empty():
    with pytest.raises(ValueError, match=r"the model has no parameters; declare some with m.param"):
        pbj.ModelBuilder().build()
    m = pbj.ModelBuilder()
    m.param("a")
    with pytest.raises(ValueError, match=r"no log-density terms; add them with m.add_logp"):
        m.build()


def test_builder_dims_of_the_wrong_length():
    m = pbj.ModelBuilder()
    with pytest.raises(ValueError, match=r"'a': dims=\('x', 'y'\) has 2 names for 1 dimensions"):
        m.param("a", shape=(3,), dims=("x", "y"))


def test_transform_arguments():
    with pytest.raises(ValueError, match=r"Interval\(lower=2, upper=1\): both ends must be finite"):
        transforms.Interval(2, 1)


# -- sample arguments -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"draws": 0}, r"draws=0 is not valid: draws must be an integer >= 1"),
        ({"draws": 10.5}, r"draws=10.5 is not valid"),
        ({"draws": "100"}, r"draws='100' is not valid"),
        ({"draws": True}, r"draws=True is not valid"),
        ({"tune": -1}, r"tune=-1 is not valid: tune must be an integer >= 0"),
        ({"chains": 0}, r"chains=0 is not valid: chains must be an integer >= 1"),
        ({"chains": 2.0}, r"chains=2.0 is not valid"),
        ({"chunk_size": 0}, r"chunk_size=0 is not valid"),
        ({"thin": -2}, r"thin=-2 is not valid"),
        ({"seed": -1}, r"seed=-1 is not valid: give a non-negative integer"),
        ({"seed": 1.5}, r"seed=1.5 is not valid"),
        ({"seed": "abc"}, r"seed='abc' is not valid"),
        ({"sampler": "nutz"}, r"sampler='nutz' is not known; use one of \[.*'nuts'"),
        ({"sampler": 3}, r"sampler=3 must be a name such as 'nuts'"),
        ({"chain_method": "gpu"}, r"chain_method='gpu' is not known"),
        (
            {"data": {"x": [1.0, 2.0]}},
            r"data\['x'\]: the model declares no data named 'x'; its data are \['y'\]\.",
        ),
        (
            {"data": {"y": [1.0, 2.0, 3.0]}},
            r"data\['y'\] has shape \(3,\) but the model was built with shape",
        ),
        ({"data": {"y": [1.0, np.nan]}}, r"data\['y'\] contains NaN or inf"),
        ({"data": {"y": ["a", "b"]}}, r"data\['y'\] must be numeric"),
        ({"data": [1.0, 2.0]}, r"data must be a dict of name -> array, got list"),
        ({"log_likelihood": True}, r"log_likelihood=True but the model declares no pointwise"),
    ],
)
def test_bad_sample_arguments(tiny, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        pbj.sample(tiny, **{"draws": 10, "tune": 10, "chains": 1, "progressbar": False, **kwargs})


def test_integer_data_given_fractions():
    m = pbj.ModelBuilder()
    mu = m.param("mu")
    k = m.data("k", np.array([1, 2]))
    m.add_logp(-0.5 * pt.sum((k - mu) ** 2))
    with pytest.raises(TypeError, match=r"data\['k'\] holds non-integer values .* declared it as int64"):
        pbj.sample(m.build(), draws=10, tune=10, chains=1, progressbar=False, data={"k": [1.5, 2.0]})


def test_sample_rejects_other_models():
    with pytest.raises(TypeError, match=r"expected a pbj.Model, a CompiledModel or a pymc.Model, got dict"):
        pbj.sample({"mu": 1.0}, progressbar=False)


def test_logp_minus_infinity_everywhere():
    x = pt.scalar("x")
    model = pbj.Model.from_logp(pt.as_tensor_variable(-np.inf) + 0.0 * x, inputs=[x])
    with pytest.raises(ValueError, match=r"not finite at any of 100 random starting points.*= -inf"):
        pbj.sample(model, draws=10, tune=10, chains=2, seed=1, progressbar=False)


def test_logp_nan_everywhere():
    x = pt.scalar("x")
    model = pbj.Model.from_logp(pt.log(-pt.exp(x)), inputs=[x])
    with pytest.raises(ValueError, match=r"not finite at any of 100 random starting points.*= nan"):
        pbj.sample(model, draws=10, tune=10, chains=1, seed=1, progressbar=False)


def grouped_model():
    m = pbj.ModelBuilder()
    a = m.param("a", shape=10)
    group = m.data("group", np.arange(20) % 10)
    count = m.data("count", np.arange(20))  # integer, but not an index: any value is fine
    m.add_logp(-0.5 * pt.sum(a**2) - 0.5 * pt.sum((a[group] - 0.01 * count) ** 2))
    return m.build()


def test_index_data_out_of_range_raises():
    model = grouped_model()
    assert pbj.compile(model).index_limits == {"group": 10}
    swapped = np.arange(20) % 10
    swapped[3] = 25
    with pytest.raises(
        ValueError,
        match=r"data\['group'\] indexes a dimension of length 10 \(valid 0..9\) but "
        r"holds 25 at position 3 \(1 out of range\); JAX would clamp it silently",
    ):
        pbj.sample(model, data={"group": swapped}, draws=10, tune=10, chains=1, progressbar=False)
    with pytest.raises(ValueError, match=r"holds -1 at position 0"):
        pbj.sample(model, data={"group": swapped - 1}, draws=10, tune=10, chains=1, progressbar=False)


def test_index_data_in_range_and_other_integers_pass():
    from pytensor_blackjax._validate import check_data

    compiled = pbj.compile(grouped_model())
    new = {"group": np.zeros(20, int), "count": np.full(20, 1000)}
    assert set(check_data(compiled.default_data, new, compiled.index_limits)) == {"group", "count"}


def test_builder_coords_of_the_wrong_length():
    m = pbj.ModelBuilder()
    m.coords(school=["A", "B"])
    m.add_logp(-pt.sum(m.param("theta", shape=3, dims="school") ** 2))
    with pytest.raises(
        ValueError, match=r"coords 'school' has 2 labels but 'theta' has 3 entries along 'school'"
    ):
        m.build()
    m = pbj.ModelBuilder()
    m.add_logp(-pt.sum(m.param("a", shape=3, dims="k") ** 2) - pt.sum(m.param("b", shape=4, dims="k") ** 2))
    with pytest.raises(ValueError, match=r"dimension 'k' has length 3 in 'a' but 4 in 'b'"):
        m.build()


def test_pymc_index_data_knows_its_dimension():
    pm = pytest.importorskip("pymc")
    with pm.Model(coords={"g": range(10)}) as pm_model:
        idx = pm.Data("idx", np.arange(20) % 10)
        a = pm.Normal("a", 0, 1, dims="g")
        pm.Normal("y", a[idx], 1, observed=np.zeros(20))
    assert pbj.compile(pbj.Model.from_pymc(pm_model)).index_limits == {"idx": 10}
