"""Two processes joined by JAX's distributed runtime on 127.0.0.1 sample one set of chains together."""

import os
import socket
import subprocess
import sys
import textwrap

import arviz_stats
import numpy as np
import pytest

import pytensor_blackjax as pbj

MU = np.array([0.0, 1.0, -2.0])  # the script's target mean

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np, pytensor.tensor as pt
    import pytensor_blackjax as pbj

    port, pid, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    pbj.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=pid)
    import jax

    builder = pbj.ModelBuilder(name="gaussian")
    mu = builder.data("mu", np.array([0.0, 1.0, -2.0]))
    sigma = builder.data("sigma", np.array([1.0, 2.0, 0.5]))
    x = builder.param("x", shape=(3,))
    builder.add_logp(-0.5 * pt.sum(((x - mu) / sigma) ** 2))
    tree = pbj.sample(builder.build(), draws=400, tune=300, chains=4, seed=9, progressbar=False)
    np.savez(out, x=tree["posterior"]["x"].values, devices=len(jax.devices()),
             local=len(jax.local_devices()), method=tree.attrs["chain_method"])
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_gather_every_chain(tmp_path):
    port = _free_port()
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    outs = [tmp_path / f"p{i}.npz" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(port), str(i), str(outs[i])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    errors = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        errors.append(err[-3000:])
    assert [p.returncode for p in procs] == [0, 0], errors
    r0, r1 = np.load(outs[0]), np.load(outs[1])
    assert int(r0["devices"]) == 4 and int(r0["local"]) == 2
    assert str(r0["method"]) == "sharded"
    x = r0["x"]
    assert x.shape == (4, 400, 3) and np.isfinite(x).all()
    assert np.array_equal(x, r1["x"])  # every process receives every chain
    mcse = x.std(axis=(0, 1)) / np.sqrt(arviz_stats.ess(x, method="mean"))
    assert np.all(np.abs(x.mean(axis=(0, 1)) - MU) < 4.5 * mcse)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            dict(coordinator_address="localhost", num_processes=2, process_id=0),
            "coordinator_address='localhost'",
        ),
        (dict(coordinator_address="127.0.0.1:1", num_processes=0, process_id=0), "num_processes=0"),
        (dict(coordinator_address="127.0.0.1:1", num_processes=2, process_id=2), "process_id=2.*0 to 1"),
        (
            dict(coordinator_address="127.0.0.1:1", num_processes=2, process_id=0, cpu_collectives="nccl"),
            "cpu_collectives='nccl'",
        ),
    ],
)
def test_initialize_names_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pbj.distributed.initialize(**kwargs)
