"""The default NUTS runs on Blackjax's state and info fields without importing Blackjax."""

import subprocess
import sys
import textwrap

from pytensor_blackjax.samplers import _states


def test_the_types_have_blackjaxs_fields():
    from blackjax.mcmc.hmc import HMCState
    from blackjax.mcmc.integrators import IntegratorState
    from blackjax.mcmc.nuts import NUTSInfo

    for ours, theirs in (
        (_states.HMCState, HMCState),
        (_states.IntegratorState, IntegratorState),
        (_states.NUTSInfo, NUTSInfo),
    ):
        assert ours.__name__ == theirs.__name__ and ours._fields == theirs._fields


def _imports_blackjax(sampler: str) -> bool:
    code = textwrap.dedent(f"""
        import sys, warnings
        import pytensor.tensor as pt
        import pytensor_blackjax as pbj
        m = pbj.ModelBuilder()
        x = m.param("x", shape=(3,))
        m.add_logp(-0.5 * pt.sum(x**2))
        warnings.simplefilter("ignore")
        tree = pbj.sample(m.build(), draws=50, tune=50, chains=2, seed=1, progressbar=False,
                          sampler={sampler})
        assert tree["posterior"]["x"].shape == (2, 50, 3)
        print("blackjax" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_the_default_nuts_imports_no_blackjax_and_its_own_metrics_do():
    # the check has power: Blackjax's diagonal metric and integrator import it
    assert not _imports_blackjax("pbj.samplers.NUTS()")
    assert _imports_blackjax('pbj.samplers.NUTS(adaptation="diag")')
