"""Every transform: log-Jacobian equals log|det| of jax.jacfwd of forward; backward inverts forward."""

import jax
import jax.numpy as jnp
import numpy as np
import pytensor.tensor as pt
import pytest

from pytensor_blackjax.compile._jaxify import jaxify
from pytensor_blackjax.model import transforms

# (transform, constrained shape); batched shapes check that Jacobians add up over leading axes.
CASES = [
    (transforms.Real(), (3,)),
    (transforms.Positive(), (4,)),
    (transforms.Positive(), ()),
    (transforms.LowerBound(-1.5), (3,)),
    (transforms.UpperBound(2.0), (3,)),
    (transforms.Interval(-2.0, 5.0), (3,)),
    (transforms.Interval([-2.0, 0.0, 1.0], [5.0, 0.5, 1.1]), (2, 3)),
    (transforms.LowerBound([0.0, -3.0]), (2,)),
    (transforms.UpperBound([1.0, 2.0, 3.0]), (3,)),
    (transforms.Unit(), (2, 2)),
    (transforms.Simplex(), (4,)),
    (transforms.Simplex(), (2, 3)),
    (transforms.Ordered(), (5,)),
    (transforms.Ordered(), (2, 3)),
    (transforms.CholeskyCorr(), (2, 2)),
    (transforms.CholeskyCorr(), (4, 4)),
    (transforms.CholeskyCorr(), (2, 3, 3)),
]


def _free_coordinates(transform, y):
    """The constrained entries that determine the rest: the map x -> these is square."""
    if isinstance(transform, transforms.Simplex):
        return y[..., :-1]
    if isinstance(transform, transforms.CholeskyCorr):
        rows, cols = np.tril_indices(y.shape[-1], k=-1)
        return y[..., rows, cols]
    return y


def _jax_functions(transform, shape):
    x = pt.tensor("x", dtype="float64", shape=transform.value_shape(shape))
    y = pt.tensor("y", dtype="float64", shape=shape)
    forward = jaxify([x], [transform.forward(x), transform.log_jacobian(x)])
    backward = jaxify([y], [transform.backward(y)])
    return forward, backward


def _ids(case):
    transform, shape = case
    return f"{type(transform).__name__}{shape}"


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_log_jacobian_matches_jacfwd(case):
    transform, shape = case
    forward, _ = _jax_functions(transform, shape)
    rng = np.random.default_rng(0)
    value_shape = transform.value_shape(shape)
    for _ in range(3):
        x = jnp.asarray(rng.normal(scale=1.5, size=value_shape))

        def free(flat):
            y, _ = forward(flat.reshape(value_shape))
            return jnp.ravel(_free_coordinates(transform, y))

        jac = jax.jacfwd(free)(jnp.ravel(x))
        assert jac.shape[0] == jac.shape[1], "the map to the free coordinates must be square"
        expected = jnp.linalg.slogdet(jac)[1] if jac.size else 0.0
        _, log_jac = forward(x)
        np.testing.assert_allclose(float(log_jac), float(expected), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_backward_inverts_forward(case):
    transform, shape = case
    forward, backward = _jax_functions(transform, shape)
    x = jnp.asarray(np.random.default_rng(1).normal(size=transform.value_shape(shape)))
    y, _ = forward(x)
    (x_again,) = backward(y)
    np.testing.assert_allclose(np.asarray(x_again), np.asarray(x), rtol=1e-9, atol=1e-9)


def test_forward_lands_in_the_support():
    rng = np.random.default_rng(2)
    checks = {
        transforms.Positive(): lambda y: np.all(y > 0),
        transforms.LowerBound(-1.5): lambda y: np.all(y > -1.5),
        transforms.UpperBound(2.0): lambda y: np.all(y < 2.0),
        transforms.Interval(-2.0, 5.0): lambda y: np.all((y > -2.0) & (y < 5.0)),
        transforms.Unit(): lambda y: np.all((y > 0) & (y < 1)),
        transforms.Simplex(): lambda y: np.all(y > 0) and np.allclose(y.sum(-1), 1.0),
        transforms.Ordered(): lambda y: np.all(np.diff(y, axis=-1) > 0),
    }
    for transform, holds in checks.items():
        forward, _ = _jax_functions(transform, (6,))
        y, _ = forward(jnp.asarray(rng.normal(scale=3.0, size=transform.value_shape((6,)))))
        assert holds(np.asarray(y)), transform


def test_cholesky_corr_gives_a_correlation_matrix():
    transform = transforms.CholeskyCorr()
    forward, _ = _jax_functions(transform, (5, 5))
    chol, _ = forward(jnp.asarray(np.random.default_rng(3).normal(scale=2.0, size=(10,))))
    chol = np.asarray(chol)
    corr = chol @ chol.T
    np.testing.assert_allclose(np.diag(corr), 1.0, rtol=1e-12)
    assert np.allclose(np.triu(chol, k=1), 0.0)
    assert np.all(np.diag(chol) > 0)
    assert np.all(np.linalg.eigvalsh(corr) > 0)


def test_log_jacobian_is_finite_far_out():
    # saturating sigmoids and tanh must not give log(0)
    for transform, shape in [
        (transforms.Unit(), (2,)),
        (transforms.Interval(0.0, 1.0), (2,)),
        (transforms.Simplex(), (3,)),
        (transforms.CholeskyCorr(), (3, 3)),
    ]:
        forward, _ = _jax_functions(transform, shape)
        x = jnp.full(transform.value_shape(shape), 40.0)
        _, log_jac = forward(x)
        assert np.isfinite(float(log_jac)), transform


def test_per_entry_bounds_are_respected():
    transform = transforms.Interval([-2.0, 0.0, 1.0], [5.0, 0.5, 1.1])
    forward, _ = _jax_functions(transform, (3,))
    y, _ = forward(jnp.asarray([30.0, -30.0, 0.0]))
    np.testing.assert_allclose(np.asarray(y), [5.0, 0.0, 1.05], atol=1e-10)
    assert hash(transform) == hash(transforms.Interval((-2, 0, 1), (5, 0.5, 1.1)))


def test_named_transforms_resolve():
    assert isinstance(transforms.resolve(None, param="a"), transforms.Real)
    assert isinstance(transforms.resolve("cholesky_corr", param="a"), transforms.CholeskyCorr)
    assert transforms.resolve(transforms.Interval(0, 1), param="a") == transforms.Interval(0, 1)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: transforms.Interval(1.0, 1.0), r"Interval\(lower=1.0, upper=1.0\).*lower < upper"),
        (lambda: transforms.Interval(0.0, np.inf), r"both ends must be finite"),
        (lambda: transforms.Interval([0.0, 2.0], [1.0, 1.0]), r"both ends must be finite with lower < upper"),
        (lambda: transforms.LowerBound(np.nan), r"LowerBound\(lower\)=nan must be a finite number"),
        (lambda: transforms.UpperBound("a"), r"UpperBound\(upper\)='a' must be a number"),
        (lambda: transforms.LowerBound([[0.0]]), r"or a 1-d sequence of finite numbers"),
        (lambda: transforms.LowerBound([0.0, 1.0]).value_shape((3,)), r"has 2 bounds but the parameter"),
        (lambda: transforms.Interval(0.0, [1.0, 2.0]).value_shape(()), r"has 2 bounds but the parameter"),
        (lambda: transforms.Simplex().value_shape((1,)), r"transform='simplex'.*at least 2"),
        (lambda: transforms.Ordered().value_shape(()), r"transform='ordered' needs a vector"),
        (lambda: transforms.CholeskyCorr().value_shape((3,)), r"CholeskyCorr\(\) needs a square shape"),
        (lambda: transforms.resolve("postive", param="a"), r"param 'a': unknown transform='postive'"),
    ],
)
def test_bad_transform_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
