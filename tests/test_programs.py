"""What the driver compiles (`run._programs`): how often a first run traces what."""

import warnings

import pytensor.tensor as pt

import pytensor_blackjax as pbj
from pytensor_blackjax.run import _cache
from pytensor_blackjax.samplers.nuts import NUTS


def test_the_program_of_both_phases_traces_the_transition_once(monkeypatch):
    """The loop of the warmup-and-sampling program needs the types of a transition's stats before its
    body: both come from one trace of the transition (a second was most of a first run's trace)."""
    monkeypatch.setenv(_cache.ENV, "off")  # nothing loaded from the store: the program is traced here
    traces = []
    build = NUTS.build

    def counting_build(self, logdensity_fn, num_dims, size):
        kernel = build(self, logdensity_fn, num_dims, size)
        step = kernel.phase_step.step

        def counted(*args):
            traces.append(1)
            return step(*args)

        return kernel._replace(phase_step=kernel.phase_step._replace(step=counted))

    monkeypatch.setattr(NUTS, "build", counting_build)
    m = pbj.ModelBuilder(name="traced_once")
    x = m.param("x", shape=(2,))
    m.add_logp(-0.5 * pt.sum(x**2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 20 draws: too few for the diagnostics, enough for a trace
        idata = pbj.sample(m.build(), draws=20, tune=20, chains=2, seed=3, progressbar=False)
    assert idata["posterior"]["x"].shape == (2, 20, 2)
    assert len(traces) == 1


def test_a_first_run_runs_the_converted_log_density_once(monkeypatch):
    """Every program of a first run (model digest, start points, warmup init, both phases) takes the
    log-density's trace from JAX's cache: each converted Python function (log-density, outputs) runs
    once."""
    from pytensor_blackjax.compile import _compiled

    monkeypatch.setenv(_cache.ENV, "off")
    calls = []
    jaxify = _compiled.jaxify

    def counting_jaxify(inputs, outputs):
        fn = jaxify(inputs, outputs)

        def counted(*args):
            calls.append(counted)
            return fn(*args)

        return counted

    monkeypatch.setattr(_compiled, "jaxify", counting_jaxify)
    m = pbj.ModelBuilder(name="converted_once")
    x = m.param("x", shape=(2,))
    m.add_logp(-0.5 * pt.sum(x**2))
    model = m.build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pbj.sample(model, draws=20, tune=20, chains=2, seed=4, progressbar=False)
    assert len(calls) == len(set(calls)) == 2  # the log-density, the posterior outputs
