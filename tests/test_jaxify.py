"""PyTensor's JAX dispatch is imported without NumPyro, which then stays available to the random
variables that need it (`compile._jaxify._import_dispatch`, which relies on a PyTensor internal)."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np, pytensor, pytensor.tensor as pt
    import pytensor_blackjax as pbj

    b = pbj.ModelBuilder(name="normal")
    x = b.param("x", shape=(3,))
    b.add_logp(-0.5 * pt.sum(x ** 2))
    compiled = pbj.compile(b.build())
    assert float(compiled.logdensity_fn({"x": np.ones(3)})) == -1.5
    print("numpyro" in sys.modules)
    from pytensor.link.jax.dispatch import random
    print(random.numpyro_available)
    if random.numpyro_available:  # a von Mises sampler, which imports NumPyro when it is built
        draw = pt.random.vonmises(0.0, 2.0, size=(4000,), rng=pytensor.shared(np.random.default_rng(1)))
        values = pytensor.function([], draw, mode="JAX")()
        # von Mises(0, 2): on (-pi, pi], mean 0, sd of the mean ~0.01
        print(bool(np.abs(values).max() <= np.pi and abs(values.mean()) < 0.05) and "numpyro" in sys.modules)
""")


@pytest.mark.skipif(importlib.util.find_spec("numpyro") is None, reason="NumPyro is not installed")
def test_compiling_a_model_leaves_numpyro_unimported_but_available():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    imported, available, sampled_ok = out.stdout.split()
    assert imported == "False"  # compiling the model did not import it ...
    assert available == "True"  # ... but PyTensor knows it is there ...
    assert sampled_ok == "True"  # ... and samples a von Mises variable with it


X64_SCRIPT = textwrap.dedent("""
    import sys
    import jax, pytensor.tensor as pt
    import pytensor_blackjax as pbj
    from pytensor_blackjax.compile._jaxify import _import_dispatch

    if sys.argv[1] == "first":  # else compile imports it (in a thread of its own)
        _import_dispatch()  # PyTensor's dispatch sets jax_enable_x64 from floatX at import; not kept
    print(jax.config.read("jax_enable_x64"))
    b = pbj.ModelBuilder(name="normal")
    x = b.param("x", shape=(3,))
    b.add_logp(-0.5 * pt.sum(x ** 2))
    compiled = pbj.compile(b.build())  # the package's own, explicit choice
    print(jax.config.read("jax_enable_x64"), compiled.initial_position(jax.random.key(0))["x"].dtype)
""")


@pytest.mark.parametrize("dispatch", ["first", "by_compile"])
@pytest.mark.parametrize("float_x", ["float64", "float32"])
def test_x64_is_switched_on_by_compile_not_by_importing_pytensors_dispatch(float_x, dispatch):
    env = {**os.environ, "PYTENSOR_FLAGS": f"floatX={float_x}"}
    out = subprocess.run(
        [sys.executable, "-c", X64_SCRIPT, dispatch], capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["False", "True", "float64"]


def test_array_constants_are_held_without_compiling_and_as_copies():
    import jax
    import jax.monitoring
    import numpy as np
    import pytensor.tensor as pt

    from pytensor_blackjax.compile._jaxify import enable_x64, jaxify

    enable_x64()
    predictor = np.linspace(-1.0, 1.0, 37)  # a shape no other test makes: PyTensor's way compiled for it
    scale = np.full((3, 5), 0.25, dtype="float32")
    beta = pt.dvector("beta")
    out = pt.sum(beta[0] + beta[1] * pt.as_tensor(predictor)) + pt.sum(pt.as_tensor(scale)) + 2.0
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **kw: compiles.append(event) if "backend_compile" in event else None
    )
    fn = jaxify([beta], [out])
    assert compiles == []  # making the function put the constants on the device, compiled nothing
    predictor[:] = 100.0  # the caller's array changes afterwards: the function keeps its copy
    (value,) = jax.jit(fn)(np.array([0.5, 2.0]))
    assert np.isclose(float(value), 37 * 0.5 + 2.0 * np.linspace(-1.0, 1.0, 37).sum() + 15 * 0.25 + 2.0)
