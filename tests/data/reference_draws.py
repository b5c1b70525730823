"""Reference draws: small runs of every sampler and chain layout, saved once so that a change meant to
keep behaviour (a refactor of the driver, the samplers or the program store) can be checked to give
bit-identical draws.

Bit-identical holds on one kind of CPU only: XLA compiles for the CPU it runs on and OpenBLAS picks its
kernels by CPU, so the last bits of a dense metric's products differ between CPU models, and a chaotic
sampler (SMC's resampling, an accept/reject that flips) then goes another way. Each file is therefore
made on one CPU (``reference_draws-<cpu>.npz``, see `cpu_signature`; ``reference_draws.npz`` is the
first set, from a CPU not recorded). ``python tests/data/reference_draws.py`` writes this CPU's file (at
a commit whose draws are known good); add ``--drop-others`` when draws are meant to change, which makes
the other CPUs' files stale (and say so in the commit)."""

from __future__ import annotations

import glob
import os
import platform
import re
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def cpu_signature() -> str:
    """What the draws' last bits depend on: the machine and the CPU's vendor, family and model."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    parts = [platform.machine()] + [fields.get(k, "") for k in ("vendor_id", "cpu family", "model")]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(p for p in parts if p))


def path_for(signature: str) -> str:
    return os.path.join(HERE, f"reference_draws-{signature}.npz")


def reference_files() -> list[str]:
    """Every saved set: this CPU's first (if there is one), then the others."""
    own = path_for(cpu_signature())
    others = sorted(set(glob.glob(os.path.join(HERE, "reference_draws*.npz"))) - {own})
    return ([own] if os.path.exists(own) else []) + others


# name -> (sampler, keyword arguments of pbj.sample); every case: seed 11, the model of `model()`
CASES: dict[str, tuple[str | tuple[str, dict], dict]] = {
    "nuts": ("nuts", {"chains": 2, "tune": 150, "draws": 30}),
    "nuts_vectorized": ("nuts", {"chains": 2, "tune": 150, "draws": 30, "chain_method": "vectorized"}),
    "nuts_diag": (("nuts", {"adaptation": "diag"}), {"chains": 2, "tune": 150, "draws": 30}),
    "nuts_low_rank": (("nuts", {"adaptation": "low_rank"}), {"chains": 2, "tune": 150, "draws": 30}),
    "nuts_thin_chunk": ("nuts", {"chains": 2, "tune": 150, "draws": 30, "thin": 2, "chunk_size": 7}),
    "nuts_float32": ("nuts", {"chains": 2, "tune": 150, "draws": 30, "precision": "float32"}),
    "hmc": ("hmc", {"chains": 2, "tune": 150, "draws": 30}),
    "mala": ("mala", {"chains": 2, "tune": 150, "draws": 30}),
    "mclmc": ("mclmc", {"chains": 2, "tune": 150, "draws": 30}),
    "adjusted_mclmc": ("adjusted_mclmc", {"chains": 2, "tune": 150, "draws": 30}),
    "chees": ("chees", {"chains": 16, "tune": 150, "draws": 20}),
    "meads": ("meads", {"chains": 32, "tune": 150, "draws": 20}),
    "smc": ("smc", {"chains": 2, "tune": 60, "draws": 30}),
    "pathfinder": ("pathfinder", {"chains": 2, "tune": 100, "draws": 30}),
    "meanfield_vi": ("meanfield_vi", {"chains": 2, "tune": 100, "draws": 30}),
    "fullrank_vi": ("fullrank_vi", {"chains": 2, "tune": 100, "draws": 30}),
}
# run in a process with two forced host devices
SHARDED = {
    "nuts_sharded": ("nuts", {"chains": 3, "tune": 150, "draws": 30}),
    "hmc_sharded": ("hmc", {"chains": 2, "tune": 150, "draws": 30}),
}


def model():
    import pytensor.tensor as pt

    import pytensor_blackjax as pbj

    m = pbj.ModelBuilder()
    x = m.param("x", shape=(2,))
    s = m.param("s", transform="positive")
    p = m.param("p", transform="unit")
    m.add_logp(
        -0.5 * (x[0] ** 2 + (x[1] - 0.8 * x[0]) ** 2 / 0.36)
        - s
        + 2.0 * pt.log(s)
        + 2.0 * pt.log(p)
        + pt.log1p(-p)
    )
    return m.build()


def run_case(spec) -> dict[str, np.ndarray]:
    import pytensor_blackjax as pbj

    sampler, kwargs = spec
    if isinstance(sampler, tuple):
        sampler = pbj.samplers.resolve(sampler[0]).__class__(**sampler[1])
    tree = pbj.sample(model(), sampler=sampler, seed=11, progressbar=False, **kwargs)
    out = {f"posterior/{k}": np.asarray(v.values) for k, v in tree["posterior"].data_vars.items()}
    out.update({f"sample_stats/{k}": np.asarray(v.values) for k, v in tree["sample_stats"].data_vars.items()})
    return out


def run_all(cases) -> dict[str, np.ndarray]:
    import warnings

    out = {}
    for name, spec in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k, v in run_case(spec).items():
                out[f"{name}|{k}"] = v
    return out


def run_sharded() -> dict[str, np.ndarray]:
    """The sharded cases, in a child process with two forced host devices."""
    import tempfile

    target = os.path.join(tempfile.mkdtemp(), "sharded.npz")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    code = (
        f"import sys; sys.path.insert(0, {HERE!r}); import numpy as np, reference_draws as r; "
        f"np.savez({target!r}, **r.run_all(r.SHARDED))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    with np.load(target) as f:
        return dict(f)


if __name__ == "__main__":
    draws = {**run_all(CASES), **run_sharded()}
    target = path_for(cpu_signature())
    np.savez_compressed(target, **draws)
    for stale in reference_files() if "--drop-others" in sys.argv else []:
        if stale != target:
            os.remove(stale)
            print(f"removed {stale} (another CPU's; stale once draws change)")
    print(f"wrote {len(draws)} arrays to {target}")
