"""Compiled JAX log-density and gradient equal PyTensor's own evaluation; shapes, constrain, start points."""

import jax
import jax.numpy as jnp
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from conftest import rats_seed_graph

import pytensor_blackjax as pbj
from pytensor_blackjax.model import transforms


def every_transform_model():
    """One parameter per transform, float and integer data, and a deterministic."""
    m = pbj.ModelBuilder(name="every_transform")
    mu = m.param("mu", shape=(2,))
    sigma = m.param("sigma", transform="positive")
    low = m.param("low", transform=transforms.LowerBound(1.0))
    high = m.param("high", transform=transforms.UpperBound(-1.0))
    rho = m.param("rho", transform=transforms.Interval(-1.0, 1.0))
    p = m.param("p", shape=(3,), transform="unit")
    w = m.param("w", shape=(4,), transform="simplex")
    cuts = m.param("cuts", shape=(3,), transform="ordered")
    chol = m.param("chol", shape=(3, 3), transform="cholesky_corr")
    x = m.data("x", np.array([0.3, -1.2, 2.0, 0.7]))
    k = m.data("k", np.array([1, 0, 3]), observed=True)
    m.add_logp(-0.5 * pt.sum(mu**2) - 0.5 * pt.sum(((x - mu[0]) / sigma) ** 2) - 4 * pt.log(sigma))
    m.add_logp(-(low - 1.0) - 0.5 * (high + 2.0) ** 2 + pt.log1p(-(rho**2)))
    m.add_logp(pt.sum(k * pt.log(p) + (3 - k) * pt.log1p(-p)) + pt.sum(2.0 * pt.log(w)))
    m.add_logp(-0.5 * pt.sum(cuts**2) + pt.sum(pt.log(pt.diag(chol)) * [1.0, 2.0, 3.0]))
    m.add_logp(pt.dot(w, x) * rho + pt.dot(chol[1], mu.sum() + x[:3]))
    m.deterministic("spread", high - low)
    return m.build()


def _pytensor_reference(model):
    """logp and gradient by PyTensor's default (C / Python) backend."""
    data_vars = [d.variable for d in model.data.values()]
    grads = pytensor.grad(model.logp, list(model.values))
    return pytensor.function([*model.values, *data_vars], [model.logp, *grads])


def _models():
    logp, inputs, dets = rats_seed_graph()
    return {
        "rats_seed": pbj.Model.from_logp(logp, inputs=inputs, deterministics=dets),
        "rats_builder": pbj.examples.rat_tumors(),
        "every_transform": every_transform_model(),
    }


@pytest.mark.parametrize("name", ["rats_seed", "rats_builder", "every_transform"])
def test_logdensity_and_gradient_equal_pytensor(name):
    model = _models()[name]
    compiled = pbj.compile(model)
    reference = _pytensor_reference(model)
    data = [d.value for d in model.data.values()]
    value_and_grad = jax.jit(jax.value_and_grad(compiled.logdensity_fn))
    rng = np.random.default_rng(0)
    for _ in range(5):
        position = {
            v.name: rng.uniform(-2, 2, size=shape)
            for v, shape in zip(model.values, model.value_shapes.values(), strict=True)
        }
        lp_ref, *grad_ref = reference(*position.values(), *data)
        lp, grad = value_and_grad({k: jnp.asarray(v) for k, v in position.items()})
        np.testing.assert_allclose(float(lp), float(lp_ref), rtol=1e-10)
        for v, g_ref in zip(model.values, grad_ref, strict=True):
            np.testing.assert_allclose(np.asarray(grad[v.name]), g_ref, rtol=1e-8, atol=1e-10)


def test_logdensity_works_under_vmap():
    compiled = pbj.compile(pbj.examples.rat_tumors())
    keys = jax.random.split(jax.random.key(0), 3)
    batch = jax.vmap(compiled.initial_position)(keys)
    lps = jax.vmap(compiled.logdensity_fn)(batch)
    one_by_one = [compiled.logdensity_fn(jax.tree.map(lambda v, i=i: v[i], batch)) for i in range(3)]
    np.testing.assert_allclose(np.asarray(lps), np.asarray(one_by_one), rtol=1e-12)


def test_vector_length_is_inferred_from_constants():
    logp, inputs, _ = rats_seed_graph()
    model = pbj.Model.from_logp(logp, inputs=inputs)
    assert model.value_shapes == {"log_a": (), "log_b": (), "logit_theta": (71,)}


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda b: pt.dot(np.ones((3, 4)), b), (4,)),
        (lambda b: np.ones((3, 4)) @ b, (4,)),
        (lambda b: pt.dot(b, np.ones((4, 3))), (4,)),
        (lambda b: pt.dot(b, pt.dot(np.eye(6), b)), (6,)),
        (lambda b: b[:, None] * np.ones((5, 2)), (5,)),
    ],
)
def test_vector_length_is_inferred_through_products_and_dimshuffles(make, expected):
    b = pt.vector("b")
    assert pbj.Model.from_logp(pt.sum(make(b)), inputs=[b]).value_shapes == {"b": expected}


def test_matrix_shape_is_inferred_through_a_matrix_product():
    w = pt.matrix("w")
    logp = pt.sum((pt.dot(w, np.ones((4, 2))) - np.ones((3, 2))) ** 2)
    assert pbj.Model.from_logp(logp, inputs=[w]).value_shapes == {"w": (3, 4)}


def test_shapes_argument_fixes_what_cannot_be_inferred():
    x = pt.vector("x")
    model = pbj.Model.from_logp(-0.5 * pt.sum(x**2), inputs=[x], shapes={"x": (5,)})
    assert model.value_shapes == {"x": (5,)}
    assert pbj.compile(model).num_dims == 5


def test_uninferable_shape_names_the_input_and_shapes():
    x = pt.vector("x")
    with pytest.raises(ValueError, match=r"input 'x' has no static shape.*shapes=\{'x': \(\.\.\.\)\}"):
        pbj.Model.from_logp(-0.5 * pt.sum(x**2), inputs=[x])


def test_shapes_that_do_not_fit():
    x = pt.vector("x", shape=(3,))
    with pytest.raises(ValueError, match=r"shapes\['x'\]=\(4,\) does not fit input 'x'"):
        pbj.Model.from_logp(pt.sum(x), inputs=[x], shapes={"x": (4,)})
    with pytest.raises(ValueError, match=r"shapes names \['y'\] that are not inputs"):
        pbj.Model.from_logp(pt.sum(x), inputs=[x], shapes={"y": (4,)})


def test_deterministics_equal_their_expressions():
    logp, inputs, dets = rats_seed_graph()
    compiled = pbj.compile(pbj.Model.from_logp(logp, inputs=inputs, deterministics=dets))
    position = compiled.initial_position(jax.random.key(3))
    out = compiled.constrain(position)
    a, b = np.exp(position["log_a"]), np.exp(position["log_b"])
    np.testing.assert_allclose(out["alpha"], a, rtol=1e-12)
    np.testing.assert_allclose(out["beta"], b, rtol=1e-12)
    theta = 1 / (1 + np.exp(-np.asarray(position["logit_theta"])))
    np.testing.assert_allclose(out["theta"], theta, rtol=1e-12)


def test_from_logp_reports_inputs_then_deterministics():
    logp, inputs, dets = rats_seed_graph()
    compiled = pbj.compile(pbj.Model.from_logp(logp, inputs=inputs, deterministics=dets))
    position = compiled.initial_position(jax.random.key(8))
    out = compiled.constrain(position)
    assert list(out) == ["log_a", "log_b", "logit_theta", "alpha", "beta", "theta"]
    np.testing.assert_array_equal(out["logit_theta"], position["logit_theta"])


def test_constrain_reports_constrained_parameters_then_deterministics():
    model = every_transform_model()
    compiled = pbj.compile(model)
    position = compiled.initial_position(jax.random.key(4))
    out = compiled.constrain(position)
    assert list(out) == ["mu", "sigma", "low", "high", "rho", "p", "w", "cuts", "chol", "spread"]
    assert {k: np.shape(v) for k, v in out.items()} == dict(compiled.output_shapes)
    np.testing.assert_allclose(out["sigma"], np.exp(position["sigma_log__"]), rtol=1e-12)
    np.testing.assert_allclose(out["spread"], out["high"] - out["low"], rtol=1e-12)
    assert float(np.sum(out["w"])) == pytest.approx(1.0)
    assert out["low"] > 1.0 and out["high"] < -1.0 and -1.0 < out["rho"] < 1.0
    # constrain with other data: the deterministic here does not use data, the shapes must not change
    again = compiled.constrain(position, data={"x": np.zeros(4)})
    np.testing.assert_allclose(again["spread"], out["spread"])


def test_initial_position_is_uniform_minus_two_two():
    compiled = pbj.compile(every_transform_model())
    position = compiled.initial_position(jax.random.key(5))
    assert set(position) == set(compiled.value_names)
    assert {k: v.shape for k, v in position.items()} == {b.name: b.shape for b in compiled.blocks}
    flat = np.asarray(compiled.ravel(position))
    assert flat.dtype == np.float64 and flat.shape == (compiled.num_dims,)
    assert np.all((flat >= -2) & (flat <= 2))
    many = np.asarray(
        jax.vmap(lambda k: compiled.ravel(compiled.initial_position(k)))(
            jax.random.split(jax.random.key(6), 400)
        )
    )
    assert abs(many.mean()) < 0.05 and many.std() == pytest.approx(4 / np.sqrt(12), rel=0.05)


def test_value_names_follow_transform_suffixes():
    model = every_transform_model()
    assert model.value_names == (
        "mu",
        "sigma_log__",
        "low_lowerbound__",
        "high_upperbound__",
        "rho_interval__",
        "p_logodds__",
        "w_simplex__",
        "cuts_ordered__",
        "chol_cholcorr__",
    )
    assert model.value_shapes["w_simplex__"] == (3,)
    assert model.value_shapes["chol_cholcorr__"] == (3,)


def test_compile_is_cached_per_model():
    model = pbj.examples.rat_tumors()
    assert pbj.compile(model) is pbj.compile(model)


def test_compile_rejects_other_objects():
    with pytest.raises(TypeError, match=r"compile\(model\): expected a pbj.Model, got str"):
        pbj.compile("rats")


def test_position_keyed_by_constrained_names_is_refused():
    compiled = pbj.compile(pbj.examples.rat_tumors())
    with pytest.raises(KeyError, match=r"position lacks \['alpha_log__', .*unconstrained value names"):
        compiled.logdensity_fn({"alpha": 1.0, "beta": 1.0, "theta": np.full(71, 0.1)})


def test_other_data_is_checked():
    compiled = pbj.compile(pbj.examples.rat_tumors())
    position = compiled.initial_position(jax.random.key(7))
    with pytest.raises(ValueError, match=r"data\['yy'\]: the model declares no data named 'yy'"):
        compiled.constrain(position, data={"yy": np.zeros(71)})
    with pytest.raises(ValueError, match=r"data\['y'\] has shape \(70,\)"):
        compiled.logdensity_with({"y": np.zeros(70, dtype=int)})
    # data may also be traced, e.g. to differentiate with respect to a covariate
    no_tumours = jax.jit(lambda y: compiled.logdensity_with({"y": y})(position))(np.zeros(71, dtype=int))
    assert np.isfinite(float(no_tumours))
    assert float(no_tumours) != pytest.approx(float(compiled.logdensity_fn(position)))
