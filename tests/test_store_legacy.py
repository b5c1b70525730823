"""Stores written by the earlier release (state kept as pickles; tests/data/legacy_store.py) still
read and resume after the store format changed."""

import os
import sys
import tarfile
import warnings

import numpy as np
import pytest
import xarray as xr

import pytensor_blackjax as pbj

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "data"))
import legacy_store  # noqa: E402


@pytest.fixture
def legacy(tmp_path):
    with tarfile.open(legacy_store.ARCHIVE) as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path


def test_legacy_interrupted_store_resumes_to_the_same_draws(legacy):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pbj.SamplingWarning)
        tree = pbj.resume(legacy / "interrupted.zarr", progressbar=False)
    expected = np.load(legacy / "reference_x.npy")
    np.testing.assert_array_equal(np.asarray(tree["posterior"]["x"].values), expected)
    assert tree.attrs["num_draws_completed"] == legacy_store.DRAWS


def test_legacy_complete_store_reads(legacy):
    tree = xr.open_datatree(legacy / "complete.zarr", engine="zarr")
    np.testing.assert_array_equal(
        np.asarray(tree["posterior"]["x"].values), np.load(legacy / "reference_x.npy")
    )
    with pytest.warns(RuntimeWarning, match="already complete"), warnings.catch_warnings():
        warnings.simplefilter("ignore", pbj.SamplingWarning)
        again = pbj.resume(legacy / "complete.zarr", progressbar=False)
    assert again["posterior"]["x"].shape == (legacy_store.CHAINS, legacy_store.DRAWS, 2)
