"""Stores written by the earlier release (state kept as pickles; tests/data/legacy_store.py) still
read and resume after the store format changed."""

import json
import os
import sys
import tarfile
import warnings

import numpy as np
import pytest
import xarray as xr

import pytensor_blackjax as pbj
from pytensor_blackjax.run import RunSettings
from pytensor_blackjax.store import open_stored

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "data"))
import legacy_store  # noqa: E402


@pytest.fixture
def legacy(tmp_path):
    with tarfile.open(legacy_store.ARCHIVE) as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path


def _assert_resumed(tree, expected):
    """The draws stored before the interruption (20 per chain) as they were; those after it come from
    today's NUTS, whose dense metric caches velocities, so they equal the release's to rounding."""
    got = np.asarray(tree["posterior"]["x"].values)
    np.testing.assert_array_equal(got[:, :20], expected[:, :20])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=0)


def test_legacy_interrupted_store_resumes_to_the_same_draws(legacy):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pbj.SamplingWarning)
        tree = pbj.resume(legacy / "interrupted.zarr", progressbar=False)
    expected = np.load(legacy / "reference_x.npy")
    _assert_resumed(tree, expected)
    assert tree.attrs["num_draws_completed"] == legacy_store.DRAWS
    # rewritten in the current format before it was written to: the model copy is its only pickle
    record = json.loads((legacy / "interrupted.zarr" / "zarr.json").read_text())["attributes"]
    assert record["pbj_store_format"] == 2 and record["status"] == "complete"
    assert sorted(p.suffix for p in (legacy / "interrupted.zarr" / "_pbj").iterdir()) == [
        ".json",
        ".npz",
        ".npz",
        ".npz",
        ".pkl",
    ]


def test_legacy_store_upgraded_then_interrupted_again_resumes_in_the_current_format(legacy):
    path = legacy / "interrupted.zarr"
    stored = open_stored(path, settings_type=RunSettings)  # upgrades; killed before sampling anything
    point = stored.resume_point
    assert point.phase == "sampling" and point.num_draws == 20 and point.layout == "threaded"
    assert not (path / "_pbj" / "run.pkl").exists() and (path / "_pbj" / "state-000000020.npz").exists()
    again = open_stored(path, settings_type=RunSettings)  # read as format 2 now
    assert [a.tobytes() for a in again.resume_point.state_leaves] == [a.tobytes() for a in point.state_leaves]
    assert again.settings == stored.settings and again.sampler == stored.sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pbj.SamplingWarning)
        tree = pbj.resume(path, progressbar=False)
    _assert_resumed(tree, np.load(legacy / "reference_x.npy"))


def test_legacy_complete_store_reads(legacy):
    tree = xr.open_datatree(legacy / "complete.zarr", engine="zarr")
    np.testing.assert_array_equal(
        np.asarray(tree["posterior"]["x"].values), np.load(legacy / "reference_x.npy")
    )
    with pytest.warns(RuntimeWarning, match="already complete"), warnings.catch_warnings():
        warnings.simplefilter("ignore", pbj.SamplingWarning)
        again = pbj.resume(legacy / "complete.zarr", progressbar=False)
    assert again["posterior"]["x"].shape == (legacy_store.CHAINS, legacy_store.DRAWS, 2)
