"""Draws stay bit-identical to the saved reference for every sampler and chain layout (see
tests/data/reference_draws.py): refactors of the driver, samplers or program store must not change
them."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "data"))
import reference_draws as ref  # noqa: E402


@pytest.fixture(scope="module")
def saved():
    with np.load(ref.PATH) as f:
        return dict(f)


def _compare(saved, name, got):
    expected = {k.split("|", 1)[1]: v for k, v in saved.items() if k.startswith(name + "|")}
    assert expected, f"no reference draws saved for {name}"
    assert sorted(got) == sorted(expected), f"{name}: variables differ"
    for k, v in expected.items():
        assert (got[k].dtype, got[k].shape) == (v.dtype, v.shape), f"{name} {k}: {got[k].dtype}{got[k].shape}"
        np.testing.assert_array_equal(got[k], v, err_msg=f"{name} {k} differs from the reference draws")


@pytest.mark.parametrize("name", sorted(ref.CASES))
def test_draws_equal_reference(saved, name):
    got = ref.run_all({name: ref.CASES[name]})
    _compare(saved, name, {k.split("|", 1)[1]: v for k, v in got.items()})


def test_sharded_draws_equal_reference(saved):
    got = ref.run_sharded()
    for name in ref.SHARDED:
        _compare(saved, name, {k.split("|", 1)[1]: v for k, v in got.items() if k.startswith(name + "|")})
