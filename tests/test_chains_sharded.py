"""Chains sharded over 4 forced host devices, in a fresh process (the device count is fixed at JAX start)."""

import os
import subprocess
import sys
import textwrap

import arviz_stats
import numpy as np

MU = np.array([0.0, 1.0, -2.0])  # the script's target mean

SCRIPT = textwrap.dedent("""
    import sys
    import jax, numpy as np, pytensor.tensor as pt
    import pytensor_blackjax as pbj

    builder = pbj.ModelBuilder(name="gaussian")
    mu = builder.data("mu", np.array([0.0, 1.0, -2.0]))
    sigma = builder.data("sigma", np.array([1.0, 2.0, 0.5]))
    x = builder.param("x", shape=(3,))
    builder.add_logp(-0.5 * pt.sum(((x - mu) / sigma) ** 2))
    model = builder.build()

    def run(**kw):
        settings = dict(draws=400, tune=300, chains=4, seed=5, progressbar=False, chain_method="parallel")
        tree = pbj.sample(model, **{**settings, **kw})
        return tree.attrs["chain_method"], tree["posterior"]["x"].values

    method, a = run()
    _, b = run()
    _, c = run(chunk_size=64)
    method6, six = run(chains=6, draws=100)   # 2 per device, padded to 8, then cut
    np.savez(sys.argv[1], a=a, b=b, c=c, six=six, devices=len(jax.devices()), method=method,
             method6=method6)
""")


def test_four_devices_shard_chains_reproducibly(tmp_path):
    out = tmp_path / "sharded.npz"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    r = np.load(out)
    assert int(r["devices"]) == 4
    assert str(r["method"]) == "sharded" and str(r["method6"]) == "sharded"
    assert r["a"].shape == (4, 400, 3) and r["six"].shape == (6, 100, 3)
    assert len({r["six"][i].tobytes() for i in range(6)}) == 6
    assert np.array_equal(r["a"], r["b"])
    assert np.array_equal(r["a"], r["c"])  # chunk size never changes the draws
    assert len({r["a"][i].tobytes() for i in range(4)}) == 4  # chains are independent
    x = r["a"]
    mcse = x.std(axis=(0, 1)) / np.sqrt(arviz_stats.ess(x, method="mean"))
    assert np.all(np.abs(x.mean(axis=(0, 1)) - MU) < 4.5 * mcse)
