"""PyTensor's JAX dispatch is imported without NumPyro, which then stays available to the random
variables that need it, and without its sparse conversions, which load when a sparse graph needs them
(`compile._jaxify._import_dispatch`, which relies on PyTensor internals)."""

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


REGISTRY_SCRIPT = textwrap.dedent("""
    import sys
    if sys.argv[1] == "ours":
        import pytensor_blackjax  # noqa: F401
        from pytensor_blackjax.compile._jaxify import _import_dispatch
        _import_dispatch()
    else:
        import pytensor.link.jax.dispatch  # noqa: F401
    from pytensor.link.jax.dispatch import jax_funcify, jax_typify
    for name, registry in (("funcify", jax_funcify.registry), ("typify", jax_typify.registry)):
        for kind in registry:
            print(name, kind.__module__, kind.__qualname__)
    loaded = ("pytensor.link.jax.dispatch.sparse", "jax.experimental.sparse")
    print("loaded", *(name in sys.modules for name in loaded))
""")


def test_the_dispatch_converts_the_same_types_without_loading_the_sparse_conversions():
    """Every type PyTensor's complete dispatch converts has a conversion after ours (the sparse ones load
    on first use): a PyTensor that adds a sparse conversion fails this test, not a user's model."""
    runs = {}
    for how in ("ours", "pytensor"):
        out = subprocess.run(
            [sys.executable, "-c", REGISTRY_SCRIPT, how], capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr[-3000:]
        *types, loaded = out.stdout.strip().splitlines()
        runs[how] = (set(types), loaded)
    assert runs["ours"][0] == runs["pytensor"][0]
    assert runs["ours"][1] == "loaded False False"
    assert runs["pytensor"][1] == "loaded True True"


SPARSE_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np, scipy.sparse as sp
    import pytensor, pytensor.tensor as pt
    import pytensor_blackjax as pbj

    b = pbj.ModelBuilder(name="dense")
    x = b.param("x", shape=(3,))
    b.add_logp(-0.5 * pt.sum(x ** 2))
    assert float(pbj.compile(b.build()).logdensity_fn({"x": np.ones(3)})) == -1.5
    print("jax.experimental.sparse" in sys.modules)

    import pytensor.sparse as ps
    A = sp.csr_matrix(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]]))
    v = np.array([1.0, 2.0, 3.0])
    b = pbj.ModelBuilder(name="sparse")
    x = b.param("x", shape=(3,))
    b.add_logp(-0.5 * pt.sum(ps.dot(ps.as_sparse_variable(A), x[:, None]) ** 2))
    print(np.isclose(float(pbj.compile(b.build()).logdensity_fn({"x": v})), -0.5 * np.sum((A @ v) ** 2)))
    # PyTensor's own JAX functions of sparse graphs, in the same process, convert too
    y = pt.dvector("y")
    f = pytensor.function([y], ps.dot(ps.as_sparse_variable(A), y[:, None])[:, 0], mode="JAX")
    print(np.allclose(f(v), A @ v), "jax.experimental.sparse" in sys.modules)
""")


def test_a_sparse_model_compiles_after_a_dense_one_loaded_the_dispatch_without_its_sparse_part():
    out = subprocess.run([sys.executable, "-c", SPARSE_SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["False", "True", "True", "True"]
