"""The NUTS transition (`samplers._nuts_kernel`): Blackjax's interface and Blackjax's draws, bit for bit;
with a `DenseMass` (velocities cached), Blackjax's draws to rounding and its integers exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pytensor_blackjax.samplers._metric import DenseMass, dense_factors, dense_metric

SCALES = jnp.array([0.05, 0.5, 1.0, 3.0, 20.0])
CORR = 0.8 * jnp.ones((5, 5)) + 0.2 * jnp.eye(5)
PRECISION = jnp.linalg.inv(CORR * jnp.outer(SCALES, SCALES))


def logdensity(x):
    return -0.5 * x @ PRECISION @ x


def _metrics():
    imm = CORR * jnp.outer(SCALES, SCALES)
    return {
        "identity": jnp.ones(5),
        "diagonal": SCALES**2,
        "dense": dense_metric(imm, dense_factors(imm)),
        "dense_mass": DenseMass(imm, dense_factors(imm)),
    }


def _run(kernel, metric, step_size, max_num_doublings):
    from blackjax.mcmc.hmc import HMCState

    def body(state, key):
        state, info = kernel(key, state, logdensity, step_size, metric, max_num_doublings)
        return state, (state.position, state.logdensity_grad, info)

    x = jnp.linspace(-1.0, 1.0, 5)
    start = HMCState(x, logdensity(x), jax.grad(logdensity)(x))
    return jax.jit(lambda k: jax.lax.scan(body, start, jax.random.split(k, 60)))(jax.random.key(7))


# each metric kind; a step size too large for the narrowest scale; a depth limit that small steps reach
@pytest.mark.parametrize(
    ("metric", "step_size", "depth"),
    [
        ("identity", 0.3, 10),
        ("diagonal", 2.5, 10),
        ("dense", 0.3, 10),
        ("dense", 0.02, 4),
        ("dense_mass", 0.3, 10),
        ("dense_mass", 0.02, 4),
        ("dense_mass", 0.6, 10),
    ],
)
def test_nuts_kernel_draws_equal_blackjax_draws(metric, step_size, depth):
    import blackjax

    from pytensor_blackjax.samplers._nuts_kernel import build_kernel

    ours = _run(build_kernel(), _metrics()[metric], step_size, depth)
    theirs = _run(
        blackjax.nuts.build_kernel(),
        _metrics()["dense" if metric == "dense_mass" else metric],
        step_size,
        depth,
    )
    # Blackjax's state type back, and its info's fields (`_states`: the default NUTS imports no Blackjax)
    assert type(ours[0]) is type(theirs[0])
    info, their_info = ours[1][2], theirs[1][2]
    assert type(info).__name__ == type(their_info).__name__ and info._fields == their_info._fields
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if metric == "dense_mass" and a.dtype.kind == "f":
            # float32, 60 chained transitions: the cached velocities' rounding, relative to each array's scale
            assert np.max(np.abs(a - b)) <= 2e-5 * np.max(np.abs(b)), (a, b)
        elif (
            a.dtype.kind == "f"
        ):  # the dense energy (p' L squared) can differ from Blackjax's in its last bit
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=0)
        else:
            np.testing.assert_array_equal(a, b)
