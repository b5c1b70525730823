"""Draws stay bit-identical to the saved reference for every sampler and chain layout (see
tests/data/reference_draws.py): refactors of the driver, samplers or program store must not change
them. Bit-identical holds on the CPU a reference set was made on; on a CPU without its own set, draws
must equal another CPU's set or agree with it to 1e-6 relative, and a case that departs further (a
chaotic sampler going another way after a last-bit difference) is skipped, naming the command that
records this CPU's set."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "data"))
import reference_draws as ref  # noqa: E402


@pytest.fixture(scope="module")
def saved():
    files = ref.reference_files()
    assert files, "no reference draws saved; run python tests/data/reference_draws.py"
    with np.load(files[0]) as f:
        draws = dict(f)
    return draws, files[0] == ref.path_for(ref.cpu_signature()), files[0]


def _compare(saved, name, got):
    draws, own_cpu, path = saved
    expected = {k.split("|", 1)[1]: v for k, v in draws.items() if k.startswith(name + "|")}
    assert expected, f"no reference draws saved for {name}"
    assert sorted(got) == sorted(expected), f"{name}: variables differ"
    for k, v in expected.items():
        assert (got[k].dtype, got[k].shape) == (v.dtype, v.shape), f"{name} {k}: {got[k].dtype}{got[k].shape}"
    if own_cpu:
        for k, v in expected.items():
            np.testing.assert_array_equal(got[k], v, err_msg=f"{name} {k} differs from the reference draws")
    elif not all(np.allclose(got[k], v, rtol=1e-6, atol=0, equal_nan=True) for k, v in expected.items()):
        pytest.skip(
            f"{name}: this CPU ({ref.cpu_signature()}) has no reference draws, and its draws depart from "
            f"another CPU's ({os.path.basename(path)}) beyond rounding; record this CPU's with `python "
            "tests/data/reference_draws.py` at a commit whose draws are known good"
        )


@pytest.mark.parametrize("name", sorted(ref.CASES))
def test_draws_equal_reference(saved, name):
    got = ref.run_all({name: ref.CASES[name]})
    _compare(saved, name, {k.split("|", 1)[1]: v for k, v in got.items()})


def test_sharded_draws_equal_reference(saved):
    got = ref.run_sharded()
    for name in ref.SHARDED:
        _compare(saved, name, {k.split("|", 1)[1]: v for k, v in got.items() if k.startswith(name + "|")})
