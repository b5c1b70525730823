"""Chain methods on one device: which one runs, vectorized chains that are real chains, bitwise
reproducibility, thinning, float32."""

import jax
import numpy as np
import pytensor.tensor as pt
import pytest
from conftest import mcse_z, mean_and_mcse, moment_z

import pytensor_blackjax as pbj
from pytensor_blackjax.run._layouts import choose_layout
from pytensor_blackjax.samplers import NUTS, RunSize

MU = np.array([0.0, 1.0, -2.0])
SIGMA = np.array([1.0, 2.0, 0.5])


def gaussian_model():
    builder = pbj.ModelBuilder(name="gaussian")
    mu = builder.data("mu", MU)
    sigma = builder.data("sigma", SIGMA)
    x = builder.param("x", shape=(3,))
    builder.add_logp(-0.5 * pt.sum(((x - mu) / sigma) ** 2))
    return builder.build()


@pytest.fixture(scope="module")
def gaussian():
    return gaussian_model()


def draws_of(model, **kw):
    settings = dict(draws=500, tune=300, chains=4, seed=11, progressbar=False, chunk_size=100)
    return pbj.sample(model, **{**settings, **kw})


# -- which method runs ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("requested", "devices", "cores", "chains", "expected"),
    [
        ("auto", 1, 2, 4, "threaded"),
        ("parallel", 1, 2, 4, "threaded"),
        ("auto", 1, 1, 4, "vectorized"),
        ("parallel", 1, 1, 4, "threaded"),
        ("auto", 4, 2, 4, "sharded"),
        ("parallel", 4, 2, 3, "sharded"),
        ("auto", 4, 2, 1, "threaded"),
        ("vectorized", 4, 2, 4, "vectorized"),
    ],
)
def test_choose_method(monkeypatch, requested, devices, cores, chains, expected):
    monkeypatch.setattr(jax, "device_count", lambda: devices)
    monkeypatch.setattr("pytensor_blackjax.run._layouts.available_cores", lambda: cores)
    assert choose_layout(NUTS().ensemble, chains, requested).name == expected


def test_unknown_chain_method_and_precision_are_named(gaussian):
    with pytest.raises(ValueError, match="chain_method='pmap'.*'auto'"):
        draws_of(gaussian, chain_method="pmap")
    with pytest.raises(ValueError, match="precision='float16'.*'float32'"):
        draws_of(gaussian, precision="float16")


# -- vectorized chains are independent chains of the same posterior -------------------------------
def layout_errors(vectorized, threaded) -> list[str]:
    """How vectorized draws (chain, draw, ...) fail to be chains like the threaded ones: two chains
    alike, a run that misses the truth (`moment_z`, with R-hat and ESS), or means more than 5 combined
    MCSE apart."""
    errors = []
    flat = vectorized.reshape(vectorized.shape[0], -1)
    for i in range(len(flat)):
        for j in range(i):
            if np.allclose(flat[i], flat[j], rtol=1e-6, atol=0.0):
                errors.append(f"chains {j} and {i} are the same draws")
    for what, x in (("vectorized", vectorized), ("threaded", threaded)):
        try:
            if (z := moment_z(x, MU, what=what)) >= 5:
                errors.append(f"{what}: mean off by {z:.1f} MCSE")
        except AssertionError as error:
            errors.append(str(error))
    (m_v, s_v), (m_t, s_t) = mean_and_mcse(vectorized), mean_and_mcse(threaded)
    if (z := np.max(np.abs(m_v - m_t) / np.hypot(s_v, s_t))) >= 5:
        errors.append(f"vectorized and threaded means {z:.1f} combined MCSE apart")
    return errors


def _layout_draws(model, method, seed):
    return draws_of(model, chain_method=method, seed=seed)["posterior"]["x"].values


@pytest.fixture(scope="module")
def threaded_draws(gaussian):
    # a seed of its own: the runs compared are independent, not the same chains in two layouts
    return _layout_draws(gaussian, "parallel", seed=22)


def test_vectorized_chains_are_distinct_and_agree_with_threaded(gaussian, threaded_draws):
    assert layout_errors(_layout_draws(gaussian, "vectorized", seed=21), threaded_draws) == []


def test_power_vectorized_copies_of_chain_0_fail_the_layout_check(gaussian, threaded_draws, monkeypatch):
    # the planted bug: the vectorized layout gives every chain chain 0's key and start point
    from pytensor_blackjax.run._layouts import Vectorized

    init = Vectorized._init

    def copies_of_chain_0(self, positions):
        self.keys = jax.numpy.broadcast_to(self.keys[:1], self.keys.shape)
        return init(self, np.broadcast_to(positions[:1], positions.shape))

    monkeypatch.setattr(Vectorized, "_init", copies_of_chain_0)
    vectorized = _layout_draws(gaussian, "vectorized", seed=21)
    monkeypatch.undo()
    errors = layout_errors(vectorized, threaded_draws)
    assert any("are the same draws" in e for e in errors), errors


# -- reproducibility -----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["auto", "vectorized"])
def test_same_seed_same_bits_whatever_the_chunk_size(gaussian, method):
    a = draws_of(gaussian, chain_method=method)
    b = draws_of(gaussian, chain_method=method)
    c = draws_of(gaussian, chain_method=method, chunk_size=37)
    x = a["posterior"]["x"].values
    assert a.attrs["chain_method"] == ("threaded" if method == "auto" else "vectorized")
    assert np.array_equal(x, b["posterior"]["x"].values)
    assert np.array_equal(x, c["posterior"]["x"].values)
    assert np.array_equal(a["sample_stats"]["lp"].values, c["sample_stats"]["lp"].values)
    assert not np.array_equal(x, draws_of(gaussian, chain_method=method, seed=12)["posterior"]["x"].values)


# -- thinning ------------------------------------------------------------------------------------
# compares bits with an unthinned run; 200 kept draws may show R-hat a hair above 1.01 by chance
@pytest.mark.filterwarnings("ignore::pytensor_blackjax.SamplingWarning")
def test_thin_keeps_every_kth_step(gaussian):
    full = draws_of(gaussian, draws=600)
    thinned = draws_of(gaussian, draws=200, thin=3)
    x_full, x_thin = full["posterior"]["x"].values, thinned["posterior"]["x"].values
    assert x_thin.shape == (4, 200, 3)
    assert thinned.attrs["thin"] == 3
    # the kept draw i is step 3 i + 2 of the same chain: same keys, same trajectory
    np.testing.assert_allclose(x_thin, x_full[:, 2::3], rtol=1e-9, atol=1e-12)


def test_thinned_draws_are_right(gaussian):
    tree = draws_of(gaussian, thin=2)
    assert tree["posterior"]["x"].shape == (4, 500, 3)
    assert mcse_z(tree, "x", MU) < 4.5


# -- float32 -------------------------------------------------------------------------------------
def test_float32_draws_are_float32_and_right(gaussian):
    tree = draws_of(gaussian, precision="float32", draws=800)
    x = tree["posterior"]["x"]
    assert x.dtype == np.float32
    assert tree["sample_stats"]["lp"].dtype == np.float32
    assert tree.attrs["precision"] == "float32"
    assert mcse_z(tree, "x", MU) < 4.5
    sd = x.values.reshape(-1, 3).std(0)
    np.testing.assert_allclose(sd, SIGMA, rtol=0.15)
    # precision is scoped to the run: JAX's global setting is untouched
    assert jax.config.jax_enable_x64


def test_float32_is_reproducible_and_vectorized_agrees(gaussian):
    a = draws_of(gaussian, precision="float32")
    b = draws_of(gaussian, precision="float32", chunk_size=64)
    assert np.array_equal(a["posterior"]["x"].values, b["posterior"]["x"].values)
    assert a["posterior"]["x"].dtype == np.float32


@pytest.mark.parametrize("chain_method", ["auto", "vectorized"])
def test_sampling_programs_compile_once_ahead(chain_method):
    """The programs compiled in the background during warmup are the ones the run calls: each is
    compiled exactly once (a mismatch would show as a second entry in its cache), also after the
    windows' ends, which run on the host and hand the next warmup call NumPy arrays of its types."""
    from pytensor_blackjax.run._programs import Programs

    compiled = pbj.compile(gaussian_model())
    draws_of(compiled, draws=500, tune=300, chain_method=chain_method)
    (programs,) = [p for p in compiled.programs.values() if isinstance(p, Programs)]
    for name in ("warmup_init", "warmup", "finish", "sample", "constrain"):
        assert getattr(programs, name).compiled_count() == 1, name
    assert not hasattr(programs.window_end, "compiled_count")  # a host function, not a program


@pytest.mark.parametrize("chain_method", ["auto", "vectorized"])
@pytest.mark.parametrize("thin", [1, 3])
def test_nuts_warms_up_and_samples_with_one_program(chain_method, thin):
    """XLA compiles NUTS's transition once: the warmup and the sampling phase call one executable,
    also when thinned (the transitions per draw are a runtime argument)."""
    from pytensor_blackjax.run._programs import Programs

    compiled = pbj.compile(gaussian_model())
    draws_of(compiled, draws=300, tune=200, chain_method=chain_method, thin=thin)
    (programs,) = [p for p in compiled.programs.values() if isinstance(p, Programs)]
    assert programs.warmup.owner.program is programs.sample.owner.program
    assert programs.sample.compiled_count() == 1


def test_finish_outputs_are_strongly_typed(gaussian):
    """The sampling program is compiled ahead from the finish program's output types; a weak-typed
    output (a step size that started as a Python float) made the real call a second compilation."""
    from pytensor_blackjax.run._layouts import Threaded
    from pytensor_blackjax.run._programs import programs_for

    compiled = pbj.compile(gaussian)
    programs = programs_for(compiled, NUTS(), Threaded, RunSize(draws=10, tune=10, chains=1), 10, 1)
    wstate = programs.warmup_init(jax.random.key(0), np.zeros(compiled.num_dims), compiled.data_tuple())
    weak = [
        path
        for path, leaf in jax.tree_util.tree_leaves_with_path(programs.finish(wstate))
        if getattr(leaf, "weak_type", False)
    ]
    assert weak == []


def test_threaded_chains_leave_blas_threads_as_they_were(gaussian):
    from threadpoolctl import threadpool_info

    before = [(i["filepath"], i["num_threads"]) for i in threadpool_info()]
    draws_of(gaussian)
    assert [(i["filepath"], i["num_threads"]) for i in threadpool_info()] == before


def test_process_exits_cleanly_while_programs_compile_ahead(tmp_path):
    """A run that fails on bad input leaves programs compiling ahead in background threads; the process
    must still exit with its own status (XLA compiling in a daemon thread at exit aborted it: 134)."""
    import os
    import subprocess
    import sys

    script = (
        "import pytensor.tensor as pt, pytensor_blackjax as pbj\n"
        "m = pbj.ModelBuilder()\n"
        "a = m.param('a')\n"
        "m.add_logp(pt.log(-pt.exp(a)))\n"  # -inf / NaN everywhere: the start-point search raises
        "try:\n"
        "    pbj.sample(m.build(), draws=10, tune=10, chains=2, seed=1, progressbar=False)\n"
        "except ValueError:\n"
        "    pass\n"
    )
    env = {**os.environ, "PBJ_COMPILATION_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
