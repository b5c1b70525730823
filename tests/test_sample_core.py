"""``sample`` end to end: the rat-tumor posterior both ways, reproducibility, no retracing, the result."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytensor.tensor as pt  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from conftest import RATS_REF, mcse_z  # noqa: E402

import pytensor_blackjax as pbj  # noqa: E402
from pytensor_blackjax.compile import CompiledModel  # noqa: E402

STATS = (
    "lp",
    "diverging",
    "energy",
    "tree_depth",
    "n_steps",
    "acceptance_rate",
    "step_size",
    "reached_max_treedepth",
)


@pytest.fixture(scope="module")
def rats_builder_tree():
    return pbj.sample(pbj.examples.rat_tumors(), draws=1000, tune=1000, chains=4, seed=11, progressbar=False)


def gaussian_model():
    """A correlated 2-d Gaussian with swappable data (its mean)."""
    m = pbj.ModelBuilder(name="gaussian")
    x = m.param("x", shape=(2,))
    center = m.data("center", np.array([1.0, -1.0]))
    d = x - center
    m.add_logp(-0.5 * (d[0] ** 2 + (d[1] - 0.5 * d[0]) ** 2 / 0.75))
    return m.build()


# long enough that split R-hat of a well-sampled target stays below 1.01 (no SamplingWarning)
QUICK = {"draws": 1000, "tune": 500, "chains": 4, "progressbar": False}


@pytest.fixture(scope="module")
def gaussian():
    return gaussian_model()


@pytest.mark.parametrize("name", ["alpha", "beta"])
def test_rats_builder_recovers_the_reference_posterior(rats_builder_tree, name):
    mean, _ = RATS_REF[name]
    assert mcse_z(rats_builder_tree, name, mean) < 5


def test_rats_seed_style_recovers_the_reference_posterior(rats_seed_model):
    tree = pbj.sample(rats_seed_model, draws=1000, tune=1000, chains=4, seed=12, progressbar=False)
    for name, (mean, _) in RATS_REF.items():
        assert mcse_z(tree, name, mean) < 5, name
    assert tree["posterior"]["theta"].shape == (4, 1000, 71)


def test_same_seed_gives_bitwise_identical_draws(gaussian):
    model = gaussian
    first = pbj.sample(model, seed=5, **QUICK)
    again = pbj.sample(model, seed=5, **QUICK)
    other = pbj.sample(model, seed=6, **QUICK)
    np.testing.assert_array_equal(first["posterior"]["x"].values, again["posterior"]["x"].values)
    np.testing.assert_array_equal(first["sample_stats"]["lp"].values, again["sample_stats"]["lp"].values)
    assert not np.array_equal(first["posterior"]["x"].values, other["posterior"]["x"].values)


def test_chunk_size_does_not_change_the_draws(gaussian):
    model = gaussian
    small = pbj.sample(model, seed=7, chunk_size=7, **QUICK)
    large = pbj.sample(model, seed=7, chunk_size=100, **QUICK)
    np.testing.assert_array_equal(small["posterior"]["x"].values, large["posterior"]["x"].values)
    np.testing.assert_array_equal(
        small["sample_stats"]["step_size"].values, large["sample_stats"]["step_size"].values
    )


def test_new_data_of_the_same_shape_does_not_retrace(monkeypatch):
    traces = []
    original = CompiledModel.flat_logdensity

    def counting(self, flat, data):
        traces.append(1)  # runs only while JAX traces; compiled programs do not call back into Python
        return original(self, flat, data)

    monkeypatch.setattr(CompiledModel, "flat_logdensity", counting)
    # programs compiled here, not loaded from the program store (which another test may have filled)
    monkeypatch.setenv("PBJ_COMPILATION_CACHE", "off")
    model = gaussian_model()
    first = pbj.sample(model, seed=8, **QUICK)
    traced = len(traces)
    assert traced > 0
    moved = pbj.sample(model, seed=8, data={"center": np.array([10.0, 20.0])}, **QUICK)
    assert len(traces) == traced, "sampling with new data of the same shape retraced the log-density"
    shift = (
        moved["posterior"]["x"].mean(("chain", "draw")).values
        - first["posterior"]["x"].mean(("chain", "draw")).values
    )
    np.testing.assert_allclose(shift, [9.0, 21.0], atol=0.5)
    np.testing.assert_array_equal(moved["constant_data"]["center"].values, [10.0, 20.0])


def test_sample_stats_names_and_shapes(rats_builder_tree):
    stats = rats_builder_tree["sample_stats"]
    for name in STATS:
        assert name in stats.data_vars, name
        assert stats[name].dims == ("chain", "draw"), name
        assert stats[name].shape == (4, 1000), name
    assert stats["diverging"].dtype == bool
    assert stats["reached_max_treedepth"].dtype == bool
    assert np.all(stats["n_steps"].values >= 1)
    assert np.all((stats["acceptance_rate"].values >= 0) & (stats["acceptance_rate"].values <= 1))
    # one adapted step size per chain, constant over the draws
    assert np.all(stats["step_size"].values == stats["step_size"].values[:, :1])


def test_posterior_layout(rats_builder_tree):
    assert isinstance(rats_builder_tree, xr.DataTree)
    post = rats_builder_tree["posterior"]
    assert set(post.data_vars) == {"alpha", "beta", "theta", "mean_rate"}
    assert post["theta"].dims == ("chain", "draw", "group")
    assert post["alpha"].dims == ("chain", "draw")
    np.testing.assert_array_equal(post["chain"].values, np.arange(4))
    np.testing.assert_array_equal(post["draw"].values, np.arange(1000))
    alpha, beta = post["alpha"].values, post["beta"].values
    np.testing.assert_allclose(post["mean_rate"].values, alpha / (alpha + beta), rtol=1e-12)
    assert np.all((post["theta"].values > 0) & (post["theta"].values < 1))
    assert "y" in rats_builder_tree["observed_data"].data_vars
    assert "n" in rats_builder_tree["constant_data"].data_vars


def test_attrs(rats_builder_tree):
    attrs = rats_builder_tree.attrs
    assert attrs["seed"] == 11 and attrs["draws"] == 1000 and attrs["tune"] == 1000 and attrs["chains"] == 4
    assert attrs["sampler"] == "nuts" and attrs["model"] == "rat_tumors"
    for lib in ("pytensor", "jax", "blackjax", "arviz-base", "xarray", "numpy", "pytensor-blackjax"):
        assert attrs[f"version_{lib}"] not in ("", "not installed"), lib
    for timing in ("sampling_time", "warmup_time", "total_time"):
        assert attrs[timing] > 0, timing
    assert rats_builder_tree["posterior"].attrs["inference_library"] == "blackjax"


def test_a_random_seed_is_recorded(gaussian):
    tree = pbj.sample(gaussian, **QUICK)
    assert isinstance(tree.attrs["seed"], int) and tree.attrs["seed"] >= 0


def test_arviz_summary_and_trace_plot(rats_builder_tree):
    import arviz_plots
    import arviz_stats
    import matplotlib.pyplot as plt

    summary = arviz_stats.summary(rats_builder_tree, var_names=["alpha", "beta"])
    assert {"mean", "sd", "ess_bulk", "r_hat"} <= set(summary.columns)
    assert summary.loc["alpha", "mean"] == pytest.approx(RATS_REF["alpha"][0], rel=0.15)
    plot = arviz_plots.plot_trace_dist(rats_builder_tree, var_names=["alpha", "beta"])
    assert plot is not None
    plt.close("all")


def test_diagnostics_warning_fires_on_divergences():
    # Neal's funnel, centred: its neck makes NUTS diverge, surely so with steps tuned for low acceptance
    m = pbj.ModelBuilder(name="funnel")
    v = m.param("v")
    x = m.param("x", shape=(9,))
    m.add_logp(-0.5 * (v / 3.0) ** 2 - 0.5 * pt.sum(x**2) * pt.exp(-v) - 4.5 * v)
    with pytest.warns(pbj.SamplingWarning, match=r"sampling diagnostics: \d+ divergent transitions"):
        tree = pbj.sample(m.build(), seed=3, sampler=pbj.samplers.NUTS(target_accept=0.3), **QUICK)
    assert int(tree["sample_stats"]["diverging"].values.sum()) > 0


def test_starting_points_are_retried_until_finite():
    from pytensor_blackjax.run._keys import chain_keys
    from pytensor_blackjax.run._start import initial_points

    # finite only on (1.5, 2) of the (-2, 2) starting box: most first tries fail
    x = pt.scalar("x")
    model = pbj.Model.from_logp(pt.switch(x > 1.5, -0.5 * x**2, -np.inf), inputs=[x])
    compiled = pbj.compile(model)
    points = initial_points(compiled, chain_keys(0, 8), compiled.data_tuple())
    assert points.shape == (8, 1)
    assert np.all(points > 1.5)


@pytest.mark.filterwarnings(
    "ignore::pytensor_blackjax.SamplingWarning"
)  # a hard edge, a short run: support only
@pytest.mark.parametrize("chain_method", ["parallel", "vectorized"])
def test_random_starts_are_judged_by_the_warmup_init_program(chain_method):
    """Per-chain layouts draw the attempts on the host and keep, per chain, the first one whose warmup
    state is finite: the points `initial_points` finds, with no program of its own."""
    from pytensor_blackjax.run._keys import chain_keys
    from pytensor_blackjax.run._layouts import Threaded, Vectorized
    from pytensor_blackjax.run._programs import programs_for
    from pytensor_blackjax.run._start import initial_points, random_starts
    from pytensor_blackjax.samplers import RunSize

    x = pt.scalar("x")
    model = pbj.Model.from_logp(pt.switch(x > 1.5, -0.5 * x**2, -np.inf), inputs=[x])
    compiled, data = pbj.compile(model), pbj.compile(model).data_tuple()
    layout_cls = Threaded if chain_method == "parallel" else Vectorized
    programs = programs_for(
        compiled, pbj.samplers.NUTS(), layout_cls, RunSize(draws=10, tune=10, chains=8), 10, 1
    )
    layout = layout_cls(programs, chain_keys(0, 8), 0, data, precision="float64")
    try:
        points = random_starts(layout, compiled, data)
        assert layout.finite_chains().all()
    finally:
        layout.close()
    np.testing.assert_array_equal(points, initial_points(compiled, chain_keys(0, 8), data))
    # and through sample: every chain starts (and stays) where the log-density is finite
    tree = pbj.sample(
        model, chains=8, draws=20, tune=20, seed=0, chain_method=chain_method, progressbar=False
    )
    assert np.all(tree["posterior"]["x"].values > 1.5)


@pytest.mark.parametrize("chain_method", ["parallel", "vectorized"])
def test_no_finite_random_start_names_the_chain_and_the_terms(chain_method):
    x = pt.scalar("x")
    model = pbj.Model.from_logp(pt.switch(x > 5.0, -0.5 * x**2, -np.inf), inputs=[x])
    with pytest.raises(ValueError, match=r"not finite at any of 100 random starting points .* for chain 0"):
        pbj.sample(model, chains=2, draws=10, tune=10, seed=0, chain_method=chain_method, progressbar=False)


def test_a_hand_written_model_without_deterministics_reports_its_inputs():
    x = pt.vector("x", shape=(2,))
    model = pbj.Model.from_logp(-0.5 * pt.sum((x - np.array([3.0, -3.0])) ** 2), inputs=[x])
    tree = pbj.sample(model, seed=9, **QUICK)
    assert tree["posterior"]["x"].shape == (4, 1000, 2)
    assert mcse_z(tree, "x", [3.0, -3.0]) < 5


@pytest.mark.filterwarnings("ignore::pytensor_blackjax.SamplingWarning")  # short run; order is the point
def test_a_hand_written_model_keeps_its_order_inputs_then_deterministics():
    z, a = pt.scalar("z"), pt.vector("a", shape=(2,))
    model = pbj.Model.from_logp(-0.5 * (z**2 + pt.sum(a**2)), inputs=[z, a], deterministics={"b": z + a[0]})
    tree = pbj.sample(model, seed=9, draws=100, tune=100, chains=2, progressbar=False)
    assert list(tree.posterior.data_vars) == ["z", "a", "b"]


def test_a_zero_length_parameter_is_carried_through():
    m = pbj.ModelBuilder()
    a = m.param("a")
    empty = m.param("empty", shape=(0,))
    m.add_logp(-0.5 * a**2 + pt.sum(empty))
    tree = pbj.sample(m.build(), seed=10, **QUICK)
    assert tree["posterior"]["empty"].shape == (4, 1000, 0)
