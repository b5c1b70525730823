"""The program store: a later process loads the compiled programs instead of tracing them, draws the
same bits, and never loads anything it cannot trust (other model, other config, damaged file, a program
that crashed a process, an executable JAX's own cache served)."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import jax
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import pytensor_blackjax as pbj
from pytensor_blackjax.run import _cache, _keys, _stored
from pytensor_blackjax.run._program_keys import signature
from pytensor_blackjax.run._sealed import ProgramStoreWarning
from pytensor_blackjax.samplers import MCLMC, NUTS

# these runs compare bits between processes, not posteriors: short runs, their diagnostics not checked
pytestmark = pytest.mark.filterwarnings("ignore::pytensor_blackjax.SamplingWarning")

# A correlated Gaussian: the dense metric ("auto" below 200 dimensions) factorises its estimate with
# LAPACK at every window end, so a loaded program that calls unbound LAPACK kernels would crash here.
SCRIPT = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np, pytensor.tensor as pt
    import pytensor_blackjax as pbj
    from pytensor_blackjax.run import _stored

    if len(sys.argv) > 1:  # the user's own JAX persistent cache, keeping every program
        import jax
        jax.config.update("jax_compilation_cache_dir", sys.argv[1])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    b = pbj.ModelBuilder(name="corr")
    x = b.param("x", shape=(2,))
    b.add_logp(-0.5 * (x[0] ** 2 + (x[1] - 0.9 * x[0]) ** 2 / 0.19))
    compiled = pbj.compile(b.build())
    tree = pbj.sample(compiled, draws=100, tune=200, chains=2, seed=3, progressbar=False)
    bits = hashlib.sha256(np.ascontiguousarray(tree["posterior"]["x"].values).tobytes()).hexdigest()
    jaxified = compiled._logp._fn is not None  # the model's JAX functions were made
    print(json.dumps({"bits": bits, "blackjax": "blackjax" in sys.modules, "jaxified": jaxified,
                      "dispatch": "pytensor.link.jax.dispatch" in sys.modules, **_stored.STATS}))
""")


def run_script(store, *args, env_extra=None):
    env = {**os.environ, _cache.ENV: str(store), **(env_extra or {})}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, *map(str, args)], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_every_program_and_draws_the_same_bits_without_blackjax(tmp_path):
    first = run_script(tmp_path / "store")
    # warmup-init, the warmup-and-sampling program, finish, constrain (starts and window ends: host)
    assert first["loaded"] == 0 and first["saved"] == first["compiled"] >= 4
    second = run_script(tmp_path / "store")
    assert second["compiled"] == 0 and second["loaded"] == first["saved"]
    assert second["bits"] == first["bits"]
    assert not list((tmp_path / "store").glob("*.running"))  # no process left a marker behind
    # the default NUTS imports no Blackjax, traced or loaded (its types are `samplers._states`'; that
    # the check sees an import: tests/test_states.py)
    assert not first["blackjax"] and not second["blackjax"]
    # nor is the model turned into JAX: the store found its digest under its PyTensor graphs
    assert first["jaxified"] and first["dispatch"]
    assert not second["jaxified"] and not second["dispatch"]


def test_a_known_model_with_a_program_gone_makes_its_jax_functions_when_traced(tmp_path):
    first = run_script(tmp_path / "store")
    programs = sorted((tmp_path / "store").glob("*.bin"), key=lambda p: p.stat().st_size)
    programs[-1].unlink()  # the largest: a warmup or sampling program, traced from the model
    second = run_script(tmp_path / "store")
    assert second["compiled"] == 1 and second["loaded"] == first["saved"] - 1
    assert second["jaxified"] and second["bits"] == first["bits"]


def test_executables_served_by_jax_own_cache_are_not_stored(tmp_path):
    """JAX re-serialises an executable it loaded from its own cache without the code: such a file
    would crash the process that loads it. They are run, never stored."""
    fill = run_script(tmp_path / "unused", tmp_path / "jax", env_extra={_cache.ENV: "off"})
    served = run_script(tmp_path / "store", tmp_path / "jax")
    assert served["saved"] == 0 and served["bits"] == fill["bits"]
    again = run_script(tmp_path / "store", tmp_path / "jax")
    assert again["bits"] == fill["bits"]


def gaussian(mu=0.0, n=3):
    b = pbj.ModelBuilder(name="g")
    y = b.data("y", np.zeros(n))
    x = b.param("x")
    b.add_logp(-0.5 * pt.sum((y - x - mu) ** 2))
    return pbj.compile(b.build())


def test_the_model_digest_follows_what_the_model_computes():
    def digest(compiled, data=None):
        return _stored.model_digest(compiled, compiled.data_tuple(data))

    assert digest(gaussian()) == digest(gaussian())  # rebuilt: same program
    assert digest(gaussian()) != digest(gaussian(mu=1.0))  # another constant
    assert digest(gaussian()) != digest(gaussian(n=4))  # other data shapes
    same = gaussian()
    assert digest(same, {"y": np.ones(3)}) == digest(same)  # data values are arguments, not the program


def test_the_graph_fingerprint_follows_the_graphs_or_refuses():
    def fingerprint(compiled):
        assert compiled.fingerprint is not None
        return compiled.fingerprint

    assert fingerprint(gaussian()) == fingerprint(gaussian())  # rebuilt: same graphs
    assert fingerprint(gaussian()) != fingerprint(gaussian(mu=1.0))  # another constant
    assert fingerprint(gaussian()) != fingerprint(gaussian(n=4))  # other data shapes

    def renamed():
        b = pbj.ModelBuilder(name="g")
        y = b.data("y", np.zeros(3))
        x = b.param("z")
        b.add_logp(-0.5 * pt.sum((y - x) ** 2))
        return pbj.compile(b.build())

    assert fingerprint(renamed()) != fingerprint(gaussian())  # what the programs return is named

    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    from pytensor_blackjax.compile._fingerprint import graph_fingerprint

    class Double(Op):  # another package's Op may bring a JAX conversion no digest of its fields sees
        __props__ = ()

        def make_node(self, x):
            x = pt.as_tensor_variable(x)
            return Apply(self, [x], [x.type()])

        def perform(self, node, inputs, outputs):
            outputs[0][0] = 2 * inputs[0]

    x = pt.dvector("x")
    assert graph_fingerprint([x], {"f": {"out": pt.sum(x)}}, ()) is not None
    assert graph_fingerprint([x], {"f": {"out": pt.sum(Double()(x))}}, ()) is None

    from pytensor_blackjax.compile import _fingerprint

    assert _fingerprint._plain(np.float64) == ("class", "numpy", "float64")
    with pytest.raises(_fingerprint._Unkeyable):  # a class of a package named like NumPy is not NumPy's
        _fingerprint._plain(type("Dist", (), {"__module__": "numpyro.distributions"}))


SCAN_MODEL = textwrap.dedent("""
    import numpy as np, pytensor, pytensor.tensor as pt
    import pytensor_blackjax as pbj


    def scan_model(inner=lambda shock, before, rho: shock + rho * before, start=0.5):
        b = pbj.ModelBuilder(name="ar")
        y = b.data("y", np.linspace(-1.0, 1.0, 6))
        rho = b.param("rho", transform=pbj.transforms.Interval(-1.0, 1.0))
        level = pytensor.scan(
            inner, sequences=[y[:-1]], outputs_info=[pt.as_tensor(start, dtype="float64")],
            non_sequences=[rho], return_updates=False,
        )
        b.add_logp(-0.5 * pt.sum((y[1:] - level) ** 2))
        return pbj.compile(b.build())
""")
exec(SCAN_MODEL)


def test_the_graph_fingerprint_describes_an_inner_graph_by_its_structure():
    # a Scan's inner graph is part of the model: described, not refused (a model with a scan would
    # otherwise trace its JAX functions on every run to find its programs)
    first = scan_model().fingerprint  # noqa: F821 - defined by SCAN_MODEL
    assert first is not None and first == scan_model().fingerprint  # noqa: F821
    assert scan_model(inner=lambda s, b, r: s - r * b).fingerprint != first  # noqa: F821 - another inner Op
    assert scan_model(start=0.25).fingerprint != first  # noqa: F821 - another initial value

    # the inner graph's placeholders are numbered by position: two processes give the same digest (this
    # one may differ from theirs: an earlier test may have imported PyMC, whose rewrites count). There
    # PyTensor registers its sparse rewrites by a plain import (pytensor.scan's first call does), not
    # by the JAX dispatch's: PyTensor's own rewrites, whenever registered, leave the digest alone
    script = SCAN_MODEL + textwrap.dedent("""
        import sys
        from pytensor_blackjax.compile._fingerprint import graph_fingerprint
        x = pt.dvector("x")
        square = lambda: graph_fingerprint([x], {"f": {"out": pt.sum(x**2)}}, ())
        before = square()
        assert before is not None and "pytensor.sparse" not in sys.modules
        import pytensor.sparse
        print(before == square(), scan_model().fingerprint.hex())
    """)
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    ]
    runs.append(
        subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    )
    outs = [run.communicate(timeout=300) for run in runs]
    for run, (_, err) in zip(runs, outs, strict=True):
        assert run.returncode == 0, err[-3000:]
    printed = [out.split() for out, _ in outs]
    assert printed[0][0] == "True" and printed[0] == printed[1]

    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    class Halve(Op):  # another package's Op inside the inner graph still refuses
        __props__ = ()

        def make_node(self, x):
            x = pt.as_tensor_variable(x)
            return Apply(self, [x], [x.type()])

        def perform(self, node, inputs, outputs):
            outputs[0][0] = inputs[0] / 2

    from pytensor_blackjax.compile._fingerprint import graph_fingerprint

    x = pt.dvector("x")
    level = pytensor.scan(
        lambda s, b: Halve()(s) + b,
        sequences=[x],
        outputs_info=[pt.as_tensor(0.0, dtype="float64")],
        return_updates=False,
    )
    assert graph_fingerprint([x], {"f": {"out": pt.sum(level)}}, ()) is None


DISPATCH_SCRIPT = textwrap.dedent("""
    import sys
    import pytensor.tensor as pt
    import pytensor_blackjax  # noqa: F401
    from pytensor_blackjax.compile._fingerprint import graph_fingerprint
    from pytensor_blackjax.compile._jaxify import _import_dispatch

    x = pt.dvector("x")
    before = graph_fingerprint([x], {"f": {"out": pt.sum(x**2)}}, ())
    assert "pytensor.link.jax.dispatch" not in sys.modules and "pytensor.sparse" not in sys.modules
    _import_dispatch()
    print(before is not None and before == graph_fingerprint([x], {"f": {"out": pt.sum(x**2)}}, ()))
""")


def test_the_graph_fingerprint_is_the_same_before_and_after_the_jax_dispatch_is_imported():
    # a process's first compile digests its model before it imports PyTensor's JAX dispatch, which brings
    # PyTensor's JAX conversions and pytensor.sparse's rewrites; a model compiled after it (in the same
    # process) must get the same digest, or it misses the store
    out = subprocess.run([sys.executable, "-c", DISPATCH_SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["True"]


def test_the_config_identity_covers_every_field_or_refuses():
    assert _stored.config_identity(NUTS()) == _stored.config_identity(NUTS())
    assert _stored.config_identity(NUTS()) != _stored.config_identity(NUTS(target_accept=0.9))
    assert _stored.config_identity(MCLMC()) != _stored.config_identity(MCLMC(init_radius=1.0))

    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Outside:
        step: float = 0.1

    assert _stored.config_identity(Outside()) is None  # its code is not part of any key
    odd = NUTS()
    object.__setattr__(odd, "max_tree_depth", np.array([5]))
    assert _stored.config_identity(odd) is None  # an array's repr may elide its values


def draws(compiled, **kw):
    tree = pbj.sample(compiled, draws=300, tune=200, chains=2, seed=5, progressbar=False, **kw)
    return np.asarray(tree["posterior"]["x"].values)


def test_a_first_run_keys_its_programs_on_the_graphs_without_tracing_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv(_cache.ENV, str(tmp_path))
    traced = []
    trace = _stored.model_digest
    monkeypatch.setattr(_stored, "model_digest", lambda *a: traced.append(1) or trace(*a))
    first = draws(gaussian(mu=0.375))
    assert not traced and len(list(tmp_path.glob("*.model"))) == 1  # the graphs' fingerprint keyed them
    loaded = _stored.STATS["loaded"]
    np.testing.assert_array_equal(draws(gaussian(mu=0.375)), first)  # a new compiled model finds them
    assert _stored.STATS["loaded"] > loaded and not traced

    # graphs the fingerprint cannot describe: keyed on the model as JAX traces it
    opaque = gaussian(mu=0.4375)
    object.__setattr__(opaque, "fingerprint", None)
    draws(opaque)
    assert traced


def test_a_damaged_file_is_compiled_again_and_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv(_cache.ENV, str(tmp_path))
    before = draws(gaussian(mu=0.25))
    files = sorted(tmp_path.glob("*.bin"))
    assert files
    for f in files:
        f.write_bytes(b"not a program")
    _keys._program.cache_clear()  # the chain-key program is kept per process: look it up again too
    loaded = _stored.STATS["loaded"]
    # a new compiled model: its programs come from the store, whose files no longer carry their HMAC
    with pytest.warns(ProgramStoreWarning, match="does not carry a valid HMAC"):
        again = draws(gaussian(mu=0.25))
    assert _stored.STATS["loaded"] == loaded
    np.testing.assert_array_equal(again, before)
    assert all(f.read_bytes() != b"not a program" for f in files)
    _keys._program.cache_clear()
    third = draws(gaussian(mu=0.25))
    assert _stored.STATS["loaded"] >= loaded + len(files)
    np.testing.assert_array_equal(third, before)


def crash_while_loading(victim):
    """What a process that died while loading or first running ``victim`` leaves behind."""
    dead = victim.with_name(f"{victim.stem}.{2**22 + 12345}.running")  # beyond any pid_max
    dead.touch()
    return dead


def test_a_program_whose_process_died_twice_is_never_stored_again(tmp_path, monkeypatch):
    monkeypatch.setenv(_cache.ENV, str(tmp_path))
    before = draws(gaussian(mu=0.5))
    victim = sorted(tmp_path.glob("*.bin"))[0]
    dead = crash_while_loading(victim)
    np.testing.assert_array_equal(draws(gaussian(mu=0.5)), before)
    # first strike: deleted, compiled again and stored again (the process may have been killed)
    assert victim.with_suffix(".bad").read_text() == "1" and not dead.exists()
    assert victim.exists()
    crash_while_loading(victim)
    np.testing.assert_array_equal(draws(gaussian(mu=0.5)), before)
    assert victim.with_suffix(".bad").read_text() == "2" and not victim.exists()
    draws(gaussian(mu=0.5))
    assert not victim.exists()  # compiled, never stored again


def test_a_marker_is_held_only_while_a_loaded_program_first_runs(tmp_path, monkeypatch):
    monkeypatch.setenv(_cache.ENV, str(tmp_path))
    draws(gaussian(mu=0.625))
    loaded = _stored.STATS["loaded"]
    draws(gaussian(mu=0.625))
    assert _stored.STATS["loaded"] > loaded
    assert not list(tmp_path.glob("*.running"))  # a kill from now on condemns nothing
    assert not _stored._MARKERS


def test_the_store_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv(_cache.ENV, "off")
    assert _stored.store_dir() is None
    monkeypatch.setenv(_cache.ENV, str(tmp_path / "c"))
    assert _stored.store_dir() == tmp_path / "c"


def test_trimming_drops_the_least_recently_used(tmp_path):
    for i in range(5):
        f = tmp_path / f"{i}.bin"
        f.write_bytes(b"x" * 100)
        os.utime(f, (1000 + i, 1000 + i))
    _stored._trim(tmp_path, limit=250)
    assert sorted(p.name for p in tmp_path.glob("*.bin")) == ["3.bin", "4.bin"]


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_float32_and_float64_programs_do_not_mix(tmp_path, monkeypatch, precision):
    monkeypatch.setenv(_cache.ENV, str(tmp_path))
    other = "float32" if precision == "float64" else "float64"
    draws(gaussian(mu=0.75), precision=other)
    x = draws(gaussian(mu=0.75), precision=precision)
    assert x.dtype == np.dtype(precision)
    assert jax.config.jax_enable_x64


def test_program_store_switched_from_python(monkeypatch, tmp_path):
    monkeypatch.setenv(_cache.ENV, str(tmp_path / "env"))
    try:
        pbj.set_program_cache(False)
        assert _cache.cache_dir() is None and _stored.store_dir() is None
        pbj.set_program_cache(tmp_path / "chosen")
        assert _cache.cache_dir() == tmp_path / "chosen"
        pbj.set_program_cache(True)
        assert _cache.cache_dir().parts[-2:] == ("pytensor-blackjax", "programs")
        with pytest.raises(TypeError, match=r"set_program_cache\(3\): give False \(off\), True"):
            pbj.set_program_cache(3)
    finally:
        pbj.set_program_cache(None)
    assert _cache.cache_dir() == tmp_path / "env"


def test_output_types_come_from_a_trace_until_the_program_is_compiled_or_stored(tmp_path, monkeypatch):
    """`StoredProgram.out_types` lets programs that take another's outputs compile beside it: without
    compiling when the program is neither compiled nor stored, and equal to the executable's types."""
    monkeypatch.setenv(_cache.ENV, str(tmp_path))

    def fn(x):
        return {"y": jax.numpy.sin(x) * 2.0, "n": jax.numpy.sum(x > 0), "w": jax.numpy.asarray(1.0)}

    args = (jax.ShapeDtypeStruct((3,), np.float32),)
    cold = _stored.StoredProgram(jax.jit(fn), "out-types-test")
    traced = cold.out_types(*args)
    assert cold.compiled_count() == 0
    # the same argument types for a program that takes them (what the program lookup keys on)
    assert signature((traced,)) == signature((cold.compiled(*args).out_info,))
    assert not any(t.weak_type for t in jax.tree.leaves(traced))
    warm = _stored.StoredProgram(jax.jit(fn), "out-types-test")  # another process: in the store now
    loaded = _stored.STATS["loaded"]
    assert signature((warm.out_types(*args),)) == signature((traced,))
    assert _stored.STATS["loaded"] == loaded + 1


@pytest.mark.parametrize("x64", [True, False])
def test_signature_reads_the_types_a_program_receives(x64):
    """`signature` reads concrete arrays' types directly (a program is looked up by it at every call):
    the same as ``jax.typeof`` gives, host arrays in the precision the program gets, weak Python scalars,
    key arrays."""
    leaves = [
        np.zeros(4),
        np.zeros((2, 3), np.float32),
        np.zeros(3, np.int64),
        np.zeros(2, bool),
        np.int64(5),
        np.float64(0.5),
        2,
        1.5,
        jax.numpy.zeros((2, 2)),
        jax.numpy.asarray(1.0) * 2,  # weak
        jax.numpy.int32(0),
        jax.random.key(0),
        jax.random.split(jax.random.key(0), 3),
        jax.random.PRNGKey(0),
        jax.ShapeDtypeStruct((3,), np.float32, weak_type=True),
    ]
    with jax.enable_x64(x64):
        expected = []
        for x in leaves:
            t = x if isinstance(x, jax.ShapeDtypeStruct) else jax.typeof(x)
            expected.append((tuple(t.shape), str(t.dtype), bool(getattr(t, "weak_type", False))))
        assert signature((leaves,))[1] == tuple(expected)


def test_a_claimed_lowering_goes_first_and_other_programs_publish_their_types_meanwhile(
    tmp_path, monkeypatch
):
    """`LowerFirst`: while a claim is held, another thread's program is traced (its output types are
    published for `out_types`) but lowered only after the claiming thread has lowered its own; a
    released claim lets everything through. `out_types` answers from the published types even for a
    stored program that failed to load and is compiled by a thread waiting with its lock held. The
    programs compile as without a claim."""
    monkeypatch.setenv(_cache.ENV, str(tmp_path))
    monkeypatch.setattr(_stored.LowerFirst, "MAX_WAIT", 60.0)
    args = (jax.ShapeDtypeStruct((3,), np.float32),)

    def init(x):
        return jax.numpy.cos(x)

    def long(x):
        return jax.numpy.sin(x) * 2.0

    _stored.StoredProgram(jax.jit(init), "lower-first-other").compiled(*args)  # now in the store
    assert list(tmp_path.glob("*.bin"))
    monkeypatch.setattr(_stored, "_load", lambda vault, path: None)  # a stored file that fails to load
    order: list[str] = []
    lowered = jax.stages.Traced.lower

    def logged(traced, *args, **kwargs):
        order.append(traced.fun_name)
        return lowered(traced, *args, **kwargs)

    monkeypatch.setattr(jax.stages.Traced, "lower", logged)
    other = _stored.StoredProgram(jax.jit(init), "lower-first-other")
    first_program = _stored.StoredProgram(jax.jit(long), "lower-first-claimed")
    claim = _stored.LowerFirst()
    try:
        _claimed_first(claim, other, first_program, args, order)
    finally:
        claim.release()  # a failed check must not leave the process's lowerings waiting
    claim.release()  # once more: nothing happens
    assert _stored.LowerFirst._held == 0


def _claimed_first(claim, other, first_program, args, order):
    waiting = threading.Thread(target=lambda: other.compiled(*args))
    waiting.start()
    while other._types == {}:  # traced, its types published; then it waits to be lowered
        waiting.join(0.01)
    t = time.perf_counter()
    types = other.out_types(*args)
    assert time.perf_counter() - t < 5
    assert signature((types,)) == signature((jax.ShapeDtypeStruct((3,), np.float32),))
    waiting.join(0.3)
    assert waiting.is_alive() and order == []

    def claimed():
        with claim.carried():
            first_program.compiled(*args)

    carrier = threading.Thread(target=claimed)
    carrier.start()
    carrier.join(30)
    waiting.join(30)
    assert not waiting.is_alive()
    assert order == ["long", "init"]
    assert np.allclose(other.compiled(*args)(np.zeros(3, np.float32)), 1.0)
