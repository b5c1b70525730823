"""Streaming to a Zarr store and resuming in-process: crashes simulated at each step of the commit."""

import errno
import shutil

import arviz_stats
import numpy as np
import pytensor.tensor as pt
import pytest
import xarray as xr

import pytensor_blackjax as pbj
from pytensor_blackjax.store import StoreError, fingerprint
from pytensor_blackjax.store._sink import StoreSink

KW = dict(draws=300, tune=200, chains=2, seed=3, chunk_size=50, progressbar=False)
# these runs are short (2 x 300 draws): R-hat may pass 1.01 by chance, which is not what they test
pytestmark = pytest.mark.filterwarnings("ignore:sampling diagnostics:pytensor_blackjax.SamplingWarning")


def make_model(center=1.0):
    m = pbj.ModelBuilder()
    x = m.param("x", shape=(3,))
    m.add_logp(-0.5 * pt.sum((x - center) ** 2))
    return m.build()


class Crash(Exception):
    """Stands in for the process dying at a chosen point."""


@pytest.fixture(scope="module")
def model():
    return make_model()


@pytest.fixture(scope="module")
def reference(model):
    return pbj.sample(model, **KW)


def assert_same_draws(a, b):
    for group in ("posterior", "sample_stats"):
        for name in a[group].data_vars:
            np.testing.assert_array_equal(
                a[group][name].values, b[group][name].values, err_msg=f"{group}/{name}"
            )


def open_store(path):
    return xr.open_datatree(str(path), engine="zarr")


def test_store_holds_the_run_and_opens_as_datatree(tmp_path, model, reference):
    path = tmp_path / "run.zarr"
    tree = pbj.sample(model, store=str(path), **KW)
    assert_same_draws(tree, reference)
    stored = open_store(path)
    assert_same_draws(stored, reference)
    assert stored["posterior"]["x"].dims == ("chain", "draw", "x_dim_0")
    assert stored.attrs["status"] == "complete" and stored.attrs["num_draws_completed"] == 300
    x = stored["posterior"]["x"].values
    mcse = x.std(axis=(0, 1)) / np.sqrt(arviz_stats.ess(x, method="mean"))
    assert np.all(np.abs(x.mean(axis=(0, 1)) - 1.0) < 5 * mcse)


def crashed_store(path, monkeypatch, model, crash_at, **settings):
    """A stored run stopped by a crash when it commits ``crash_at`` draws (those made since the commit
    before are on disk, the commit is not)."""
    commit = StoreSink._commit_state

    def crash(self, carry, *, num_draws, **kw):
        if num_draws == crash_at:
            raise Crash
        return commit(self, carry, num_draws=num_draws, **kw)

    monkeypatch.setattr(StoreSink, "_commit_state", crash)
    with pytest.raises(Crash):
        pbj.sample(model, store=str(path), **{**KW, **settings})
    monkeypatch.undo()
    return path


def test_crash_before_a_commit_resumes_to_the_same_draws(tmp_path, monkeypatch, model, reference):
    path = crashed_store(tmp_path / "run.zarr", monkeypatch, model, 150)
    partial = open_store(path)
    assert partial.attrs["status"] == "sampling" and partial.attrs["num_draws_completed"] == 100
    assert_same_draws(pbj.resume(str(path), progressbar=False), reference)
    assert open_store(path).attrs["status"] == "complete"


def test_crash_during_warmup_repeats_warmup(tmp_path, monkeypatch, model, reference):
    path = tmp_path / "run.zarr"

    def crash(self, runner):
        raise Crash

    monkeypatch.setattr(StoreSink, "warmup_done", crash)
    with pytest.raises(Crash):
        pbj.sample(model, store=str(path), **KW)
    monkeypatch.undo()
    assert open_store(path).attrs["status"] == "warmup"
    assert_same_draws(pbj.resume(str(path), model=model, progressbar=False), reference)


def test_disk_full_mid_run_fails_loudly_and_stays_resumable(tmp_path, monkeypatch, model, reference):
    path = tmp_path / "run.zarr"
    import pytensor_blackjax.store._sink as sink_module

    write = sink_module.write_atomic

    def full_disk(target, blob):
        if target.name == "state-000000150.npz":
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(target, blob)

    monkeypatch.setattr(sink_module, "write_atomic", full_disk)
    with pytest.raises(OSError, match=r"No space left.*100 committed draws.*pbj.resume") as info:
        pbj.sample(model, store=str(path), **KW)
    assert info.value.errno == errno.ENOSPC and str(path) in str(info.value)
    monkeypatch.undo()
    assert_same_draws(pbj.resume(str(path), progressbar=False), reference)


def test_store_path_taken_is_refused(tmp_path, model):
    path = tmp_path / "run.zarr"
    path.mkdir()
    (path / "something").write_text("x")
    with pytest.raises(FileExistsError, match=r"already exists.*pbj.resume"):
        pbj.sample(model, store=str(path), **KW)


def test_unwritable_store_fails_before_sampling(tmp_path, model):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError, match=r"cannot write to store .*a_file.*writable location"):
        pbj.sample(model, store=str(blocker / "run.zarr"), **KW)


def test_read_only_store_fails_before_sampling(tmp_path, monkeypatch, model):
    import pytensor_blackjax.store._files as files

    def read_only(target, blob):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(files, "write_atomic", read_only)
    with pytest.raises(OSError, match=r"cannot write to store .*Read-only"):
        pbj.sample(model, store=str(tmp_path / "run.zarr"), **KW)


def test_too_little_disk_space_fails_before_sampling(tmp_path, monkeypatch, model):
    import pytensor_blackjax.store._files as files

    nearly_full = shutil._ntuple_diskusage(10**9, 10**9 - 100, 100)
    monkeypatch.setattr(files.shutil, "disk_usage", lambda p: nearly_full)
    with pytest.raises(OSError, match=r"needs up to .* MB but its disk has"):
        pbj.sample(model, store=str(tmp_path / "run.zarr"), **KW)


def test_resume_missing_store_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.zarr.*does not exist"):
        pbj.resume(str(tmp_path / "nowhere.zarr"))


def test_resume_complete_store_returns_its_draws_with_a_warning(tmp_path, model, reference):
    path = tmp_path / "run.zarr"
    pbj.sample(model, store=str(path), **KW)
    with pytest.warns(RuntimeWarning, match=r"run\.zarr' is already complete: nothing was left to sample"):
        tree = pbj.resume(str(path))
    assert_same_draws(tree, reference)


@pytest.fixture
def interrupted_store(tmp_path, monkeypatch, model):
    return crashed_store(tmp_path / "run.zarr", monkeypatch, model, 100)


def test_resume_with_a_different_model_is_refused(interrupted_store):
    with pytest.raises(StoreError, match=r"run\.zarr.*different model than the model given"):
        pbj.resume(str(interrupted_store), model=make_model(center=2.0))


DAMAGE = ["zarr.json", "_pbj/run.json", "_pbj/data.npz", "_pbj/params.npz", "_pbj/model.pkl", "state file"]


@pytest.mark.parametrize("damage", DAMAGE)
def test_resume_corrupt_store_names_the_path(interrupted_store, damage):
    if damage == "state file":
        states = list((interrupted_store / "_pbj").glob("state-*.npz"))
        assert states
        for f in states:
            f.write_bytes(b"\x80garbage")
    else:
        (interrupted_store / damage).write_bytes(b"{ not json")
    with pytest.raises(StoreError, match=r"run\.zarr.* is corrupt"):
        pbj.resume(str(interrupted_store))


def test_fingerprint_follows_graphs_and_data():
    assert fingerprint(make_model()) == fingerprint(make_model())
    assert fingerprint(make_model()) != fingerprint(make_model(center=1.5))

    def with_data(y):
        m = pbj.ModelBuilder()
        mu = m.param("mu")
        data = m.data("y", y)
        m.add_logp(-0.5 * pt.sum((data - mu) ** 2))
        return m.build()

    assert fingerprint(with_data(np.ones(4))) == fingerprint(with_data(np.ones(4)))
    assert fingerprint(with_data(np.ones(4))) != fingerprint(with_data(np.arange(4.0)))


def unsorted_model():
    """Names out of alphabetical order, so sorting anywhere on the way would show."""
    m = pbj.ModelBuilder()
    z = m.param("z")
    a = m.param("a", transform="positive")
    v = m.param("m", shape=(2,))
    m.deterministic("b", z + a)
    m.add_logp(-0.5 * (z**2 + pt.sum(v**2)) - a)
    return m.build()


@pytest.mark.filterwarnings("ignore::pytensor_blackjax.results.SamplingWarning")
def test_variables_keep_the_model_order_through_store_resume_and_extend(tmp_path, monkeypatch):
    model, order = unsorted_model(), ["z", "a", "m", "b"]
    assert list(pbj.sample(model, **KW).posterior.data_vars) == order
    path = crashed_store(tmp_path / "run.zarr", monkeypatch, model, 150)
    assert list(pbj.resume(str(path), progressbar=False).posterior.data_vars) == order
    assert list(pbj.extend(str(path), draws=50, progressbar=False).posterior.data_vars) == order


# -- the resume matrix: a crash at the second commit of draws, then resume, across what a run can be ------
def data_model():
    m = pbj.ModelBuilder()
    center = m.data("center", np.ones(3))
    x = m.param("x", shape=(3,))
    s = m.param("s", transform="positive")
    m.add_logp(-0.5 * pt.sum((x - center) ** 2) - 0.5 * pt.log(s) ** 2)
    return m.build()


# a representative set, not the product: every sampler family's state (tree, single-step, tuned
# integrator, ensemble), thinning, 32 bits, swapped data and both one-device layouts each appear once
MATRIX = {
    "nuts-vectorized-swapped-data": dict(
        chain_method="vectorized", data={"center": np.array([0.5, -1.0, 2.0])}
    ),
    "mala-thin3-float32": dict(sampler="mala", thin=3, precision="float32"),
    "mclmc-vectorized-thin2": dict(sampler="mclmc", chain_method="vectorized", thin=2),
    "chees-float32-swapped-data": dict(
        sampler="chees", chains=16, precision="float32", data={"center": np.zeros(3)}
    ),
}


# bitwise equality is the point here; these short runs may miss the R-hat and ESS lines
@pytest.mark.filterwarnings("ignore::pytensor_blackjax.SamplingWarning")
@pytest.mark.parametrize("case", list(MATRIX))
def test_resume_matrix(tmp_path, monkeypatch, case):
    settings = {**KW, **MATRIX[case]}
    model = data_model()
    reference = pbj.sample(model, **settings)
    commit, commits = StoreSink._commit_state, []

    def crash_at_the_second_commit(self, carry, *, num_draws, **kw):
        if num_draws > 0:  # the commit at 0 is the end of warmup
            commits.append(num_draws)
            if len(commits) == 2:
                raise Crash
        return commit(self, carry, num_draws=num_draws, **kw)

    monkeypatch.setattr(StoreSink, "_commit_state", crash_at_the_second_commit)
    path = tmp_path / "run.zarr"
    with pytest.raises(Crash):
        pbj.sample(model, store=str(path), **settings)
    monkeypatch.undo()
    assert open_store(path).attrs["num_draws_completed"] == commits[0] > 0
    assert_same_draws(pbj.resume(str(path), progressbar=False), reference)
