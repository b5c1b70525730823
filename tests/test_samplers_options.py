"""Sampler configs: names, validation messages, refusal of settings that cannot work, stat names."""

import numpy as np
import pytensor.tensor as pt
import pytest

import pytensor_blackjax as pbj
from pytensor_blackjax.samplers import SAMPLERS, RunSize, resolve
from pytensor_blackjax.samplers._base import INFO_TO_STATS, size_key

NAMES = [
    "nuts",
    "hmc",
    "mala",
    "mclmc",
    "adjusted_mclmc",
    "chees",
    "meads",
    "smc",
    "pathfinder",
    "meanfield_vi",
    "fullrank_vi",
]


@pytest.fixture(scope="module")
def gaussian():
    m = pbj.ModelBuilder()
    x = m.param("x", shape=(3,))
    m.add_logp(-0.5 * pt.sum(x**2))
    return pbj.compile(m.build())


def test_every_name_resolves_to_its_config():
    assert sorted(SAMPLERS) == sorted(NAMES)
    for name in NAMES:
        sampler = resolve(name)
        assert sampler.name == name
        assert isinstance(sampler, pbj.samplers.Sampler)
        hash(sampler)  # keys the compiled-program cache


def test_only_variational_samplers_are_approximate():
    approx = {n for n in NAMES if resolve(n).approximate}
    assert approx == {"pathfinder", "meanfield_vi", "fullrank_vi"}


def test_run_sizes_key_only_what_a_sampler_depends_on():
    size = RunSize(draws=10, tune=20, chains=2)
    assert size_key(pbj.samplers.SMC(), size) == (10, 2)
    assert size_key(pbj.samplers.MCLMC(), size) == (20,)
    assert size_key(pbj.samplers.NUTS(), size) == ()  # NUTS programs serve every draws and tune
    assert size.only(("tune",)) == RunSize(draws=0, tune=20, chains=0)
    with pytest.raises(ValueError, match=r"RunSize\(chains=-1\): give a non-negative integer"):
        RunSize(draws=1, tune=1, chains=-1)


def test_every_sampler_takes_a_start_radius():
    for name in NAMES:
        assert resolve(name).init_radius == 2.0
    assert pbj.samplers.NUTS(init_radius=0.5).init_radius == 0.5
    with pytest.raises(ValueError, match=r"NUTS\(init_radius=0\): give a positive number"):
        pbj.samplers.NUTS(init_radius=0)
    with pytest.raises(ValueError, match=r"HMC\(init_radius=-1\)"):
        pbj.samplers.HMC(init_radius=-1)


def test_public_names_are_what_users_use():
    assert set(pbj.samplers.__all__) == {
        *(type(resolve(n)).__name__ for n in NAMES),
        "Sampler",
        "RunSize",
        "resolve",
        "SAMPLERS",
    }


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: pbj.samplers.HMC(num_integration_steps=0), r"num_integration_steps=0\).*integer from 1"),
        (lambda: pbj.samplers.HMC(target_accept=1.5), r"HMC\(target_accept=1.5\).*between 0 and 1"),
        (lambda: pbj.samplers.HMC(jitter="yes"), r"HMC\(jitter='yes'\).*True or False"),
        (lambda: pbj.samplers.MALA(adaptation="full"), r"MALA\(adaptation='full'\).*'diag'"),
        (lambda: pbj.samplers.MCLMC(desired_energy_var=0), r"desired_energy_var=0.*positive"),
        (lambda: pbj.samplers.AdjustedMCLMC(target_accept=0), r"target_accept=0.*between 0 and 1"),
        (lambda: pbj.samplers.ChEES(mass_matrix="dense"), r"ChEES\(mass_matrix='dense'\).*'diag'"),
        (lambda: pbj.samplers.MEADS(num_folds=0), r"MEADS\(num_folds=0\)"),
        (lambda: pbj.samplers.SMC(target_ess=2), r"SMC\(target_ess=2\)"),
        (
            lambda: pbj.samplers.SMC(num_mcmc_steps=200),
            r"SMC\(max_mcmc_steps=100, num_mcmc_steps=200\).*max_mcmc_steps from 200",
        ),
        (lambda: pbj.samplers.SMC(correlation_threshold=0), r"SMC\(correlation_threshold=0\)"),
        (lambda: pbj.samplers.Pathfinder(maxiter=0), r"Pathfinder\(maxiter=0\)"),
        (lambda: pbj.samplers.MeanFieldVI(learning_rate=-1), r"learning_rate=-1.*positive"),
        (lambda: pbj.samplers.FullRankVI(num_elbo_draws=0), r"num_elbo_draws=0"),
    ],
)
def test_bad_options_name_the_option_and_the_fix(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_meads_with_too_few_chains_says_how_many(gaussian):
    with pytest.raises(ValueError, match=r"chains=4 will not work; give chains=32 or more"):
        pbj.sample(gaussian, sampler="meads", chains=4, draws=10, tune=10, progressbar=False)
    with pytest.raises(ValueError, match=r"chains=36 will not work.*multiple of num_folds=8"):
        pbj.samplers.MEADS(num_folds=8).check(chains=36, tune=100, num_dims=3)


def test_chees_with_too_few_chains_says_how_many(gaussian):
    with pytest.raises(ValueError, match=r"chains=2 is too few; give chains >= 16"):
        pbj.sample(gaussian, sampler="chees", chains=2, draws=10, tune=10, progressbar=False)
    pbj.samplers.ChEES(min_chains=4).check(chains=4, tune=100, num_dims=3)


@pytest.mark.parametrize("name", ["mclmc", "adjusted_mclmc", "smc", "meanfield_vi", "fullrank_vi"])
def test_too_short_warmup_is_refused(gaussian, name):
    with pytest.raises(ValueError, match=r"tune=5 .*give tune >= \d+"):
        pbj.sample(gaussian, sampler=name, tune=5, draws=10, progressbar=False)


def test_mclmc_refuses_one_dimension():
    with pytest.raises(ValueError, match=r"at least 2 unconstrained dimensions.*has 1"):
        pbj.samplers.MCLMC().check(chains=4, tune=100, num_dims=1)


def test_info_table_uses_arviz_names():
    assert INFO_TO_STATS["is_divergent"] == "diverging"
    assert INFO_TO_STATS["num_integration_steps"] == "n_steps"
    assert INFO_TO_STATS["energy_change"] == "energy_error"
    assert set(INFO_TO_STATS.values()) >= {"diverging", "acceptance_rate", "n_steps", "energy", "tree_depth"}


def test_schedules_have_one_row_per_warmup_step():
    for name in NAMES:
        rows = resolve(name).schedule(37)
        assert rows.shape[0] == 37 and rows.ndim == 2
        assert np.asarray(resolve(name).schedule(0)).shape[0] == 0


def test_a_window_program_flag_that_disagrees_with_the_kernel_is_refused(gaussian):
    # the driver runs the window ends as a program of their own only when the sampler says so; a kernel
    # with a window_end it never ran would adapt without ever ending a window
    from dataclasses import dataclass
    from typing import ClassVar

    @dataclass(frozen=True)
    class Unsaid(pbj.samplers.NUTS):
        window_program: ClassVar[bool] = False

    with pytest.raises(
        TypeError, match=r"Unsaid.window_program is False.*set the class attribute window_program = True"
    ):
        pbj.sample(gaussian, sampler=Unsaid(), chains=2, draws=10, tune=50, progressbar=False)


def test_adjusted_mclmc_caps_the_trajectory_length():
    import jax
    from blackjax.mcmc import adjusted_mclmc_dynamic

    from pytensor_blackjax.samplers.mclmc import MAX_INTEGRATION_STEPS

    capped = pbj.samplers.AdjustedMCLMC().kernel_options()["integration_steps_fn"]
    draw = adjusted_mclmc_dynamic.make_random_trajectory_length_fn(True)
    keys = jax.random.split(jax.random.key(0), 200)
    # where the tuner leaves L / step_size (about 2) the draws are Blackjax's own
    for avg in (2.0, 37.5):
        ours, theirs = (
            jax.vmap(lambda k, a=avg: capped(k, a))(keys),
            jax.vmap(lambda k, a=avg: draw(k, a))(keys),
        )
        assert (ours == theirs).all()
    # a chain where every proposal is rejected drives it to thousands: capped, so a stuck run ends
    huge = jax.vmap(lambda k: capped(k, 1e9))(keys)
    assert int(huge.max()) == MAX_INTEGRATION_STEPS and int(huge.min()) >= 1


def test_a_phase_states_attribute_without_the_kernels_phase_step_is_refused(gaussian):
    # the driver runs warmup and sampling as one program when the class says its kernels can
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Unable(pbj.samplers.NUTS):
        def build(self, logdensity_fn, num_dims, size):
            return super().build(logdensity_fn, num_dims, size)._replace(phase_step=None)

    with pytest.raises(TypeError, match=r"Unable.phase_states is set but its kernel has no phase_step"):
        pbj.sample(gaussian, sampler=Unable(), chains=2, draws=10, tune=50, progressbar=False)
