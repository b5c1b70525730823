"""The ``softplus`` rewrite of `compile._jaxify` (``max(x, 0) + log1p(exp(-|x|))`` with selects): the
same values and gradients as PyTensor's own JAX form, fewer operations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytensor.tensor as pt
import pytest

from pytensor_blackjax.compile._jaxify import jaxify

POINTS = [0.0, 5e-324, -5e-324, 1e-300, -1e-300, 0.5, -0.5, 1.0, -1.0, 17.9, 18.0, 18.1, -36.9, -37.0,
          -37.1, 33.2, 33.3, 33.4, 40.0, -40.0, 700.0, -700.0, 745.2, -746.0, np.inf, -np.inf]  # fmt: skip


def _pytensor_form(x):
    # PyTensor's JAX dispatch of softplus (pytensor/link/jax/dispatch/scalar.py), the form replaced
    return jnp.where(
        x < -37.0,
        jnp.exp(x),
        jnp.where(x < 18.0, jnp.log1p(jnp.exp(x)), jnp.where(x < 33.3, x + jnp.exp(-x), x)),
    )


def _ours(dtype, total=True):
    x = pt.vector("x", dtype=dtype)
    f = jaxify([x], [pt.sum(pt.softplus(x)) if total else pt.softplus(x)])
    return lambda v: f(v)[0]


def test_values_and_gradients_are_softplus_and_sigmoid():
    with jax.enable_x64(True):
        f = _ours("float64")
        x = jnp.asarray(POINTS + list(np.linspace(-50, 50, 2001)))
        values = jax.vmap(lambda v: f(v[None]))(x)
        grads = jax.vmap(jax.grad(lambda v: f(v[None])))(x)
        expected = _pytensor_form(x)
        finite = np.isfinite(np.asarray(expected))
        np.testing.assert_allclose(values[finite], expected[finite], rtol=4e-16, atol=0)
        assert np.array_equal(values[~finite], expected[~finite])
        np.testing.assert_allclose(grads, jax.nn.sigmoid(x), rtol=4e-16, atol=1e-300)
        assert float(jax.grad(lambda v: f(v[None]))(0.0)) == 0.5  # where maximum and abs would give 0
        assert np.isnan(f(jnp.asarray([np.nan])))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_exponential_and_the_input_precision(dtype):
    with jax.enable_x64(True):
        f = _ours(dtype)
        x = jnp.linspace(-3, 3, 7, dtype=dtype)
        jaxpr = jax.make_jaxpr(jax.value_and_grad(f))(x)
        text = str(jaxpr)
        # PyTensor's form: four exponentials (three of them in the forward pass), here one
        assert text.count(" exp ") == 1
        assert jax.eval_shape(_ours(dtype, total=False), x).dtype == np.dtype(dtype)
        np.testing.assert_allclose(f(x), np.sum(np.logaddexp(0, np.asarray(x, np.float64))), rtol=1e-6)
