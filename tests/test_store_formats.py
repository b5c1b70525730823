"""What a store keeps besides its draws: arrays and JSON with a format version, never pickles (but the
model copy), and configs that no longer match their class are refused by name."""

import json
import os
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytensor.tensor as pt
import pytest

import pytensor_blackjax as pbj
from pytensor_blackjax.run import RunSettings
from pytensor_blackjax.samplers import NUTS
from pytensor_blackjax.store import StoreError, open_stored
from pytensor_blackjax.store._sink import StoreSink

KW = dict(draws=150, tune=100, chains=2, seed=4, chunk_size=50, progressbar=False)
DATA = {"y": np.array([0.5, 1.5, 1.0, 2.0])}
PICKLE_STARTS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")  # PROTO opcode of protocols 2-5


def make_model():
    m = pbj.ModelBuilder()
    mu = m.param("mu", shape=(2,))
    y = m.data("y", np.zeros(4))
    m.add_logp(-0.5 * pt.sum((y[:, None] - mu[None, :]) ** 2) - 0.5 * pt.sum(mu**2))
    return m.build()


class Crash(Exception):
    """Stands in for the process dying before a commit."""


@pytest.fixture(scope="module")
def model():
    return make_model()


def interrupt_at(monkeypatch, num_draws):
    commit = StoreSink._commit_state

    def crash(self, state, *, num_draws=None, **kw):
        if num_draws == at:
            raise Crash
        return commit(self, state, num_draws=num_draws, **kw)

    at = num_draws
    monkeypatch.setattr(StoreSink, "_commit_state", crash)


@pytest.fixture
def interrupted(tmp_path, monkeypatch, model):
    path = tmp_path / "run.zarr"
    interrupt_at(monkeypatch, 100)
    with pytest.raises(Crash):
        pbj.sample(model, data=DATA, store=str(path), **KW)
    monkeypatch.undo()
    return path


def edit_run_file(path, change):
    file = path / "_pbj" / "run.json"
    document = json.loads(file.read_text())
    change(document)
    file.write_text(json.dumps(document))


def test_side_files_are_arrays_and_json_and_the_run_resumes(interrupted, model):
    side = interrupted / "_pbj"
    names = sorted(f.name for f in side.iterdir())
    expected = ["data.npz", "model.pkl", "params.npz", "progress.json", "run.json", "state-000000050.npz"]
    assert names == expected
    for file in interrupted.rglob("*"):
        if file.is_file() and file != side / "model.pkl":
            assert not file.read_bytes().startswith(PICKLE_STARTS), file
            assert file.suffix in (".json", ".npz") or file.parent.name.isdigit() or file.name.isdigit(), file
    for name in ("data.npz", "params.npz", "state-000000050.npz"):
        with zipfile.ZipFile(side / name) as archive:
            for member in archive.namelist():
                assert member.endswith(".npy") and archive.read(member).startswith(b"\x93NUMPY"), member
        with np.load(side / name, allow_pickle=False) as arrays:
            assert all(arrays[k].dtype != object for k in arrays.files)
    document = json.loads((side / "run.json").read_text())
    assert document["format_version"] == 2 and document["new_data"] == ["y"]
    assert document["sampler"] == {
        "name": "nuts",
        "fields": {
            "target_accept": 0.8,
            "max_tree_depth": 10,
            "adaptation": "auto",
            "init": "random",
            "max_rank": 10,
            "init_radius": 2.0,
            "step_jitter": 0.0,
            "avoid_resonance": "auto",
        },
    }
    assert document["settings"]["draws"] == 150 and document["log_likelihood"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pbj.SamplingWarning)  # a short run; its diagnostics are not the point
        resumed = pbj.resume(str(interrupted), progressbar=False)
        reference = pbj.sample(model, data=DATA, **KW)
    for group in ("posterior", "sample_stats"):
        for name in reference[group].data_vars:
            np.testing.assert_array_equal(resumed[group][name].values, reference[group][name].values)


def test_a_renamed_sampler_field_is_named_in_a_store_error(interrupted):
    def rename(document):
        fields = document["sampler"]["fields"]
        fields["accept_target"] = fields.pop("target_accept")

    edit_run_file(interrupted, rename)
    with pytest.raises(pbj.StoreError, match=r"run\.zarr.*\['accept_target'\] that NUTS no longer has"):
        pbj.resume(str(interrupted), progressbar=False)
    assert pbj.StoreError is StoreError and issubclass(StoreError, ValueError)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["sampler"]["fields"].update(step_rule=2), r"\['step_rule'\] that NUTS no longer has"),
        (lambda d: d["sampler"]["fields"].update(max_tree_depth=99), r"NUTS rejects now: .*max_tree_depth"),
        (
            lambda d: d["sampler"].update(name="nutz"),
            r"sampled with 'nutz', which this release does not know",
        ),
        (lambda d: d["settings"].update(warp=1), r"\['warp'\] that RunSettings no longer has"),
        (lambda d: d["settings"].pop("draws"), r"no value for RunSettings's fields \['draws'\]"),
        (lambda d: d.update(format_version=7), r"is corrupt.*format_version 7, expected 2"),
    ],
)
def test_stored_configs_that_do_not_fit_are_refused_by_name(interrupted, change, message):
    edit_run_file(interrupted, change)
    with pytest.raises(StoreError, match=message):
        open_stored(interrupted, settings_type=RunSettings)


def test_a_sampler_field_added_later_takes_its_default(interrupted):
    edit_run_file(interrupted, lambda d: d["sampler"]["fields"].pop("max_rank"))
    stored = open_stored(interrupted, settings_type=RunSettings)
    assert stored.sampler.max_rank == pbj.samplers.NUTS().max_rank


def test_a_settings_field_added_later_takes_its_default(interrupted):
    edit_run_file(interrupted, lambda d: d["settings"].pop("precision"))
    stored = open_stored(interrupted, settings_type=RunSettings)
    assert stored.settings.precision == "float64" and stored.resume_point.num_draws == 50
    assert len(stored.resume_point.state_leaves) > 0 and stored.resume_point.layout


def test_a_store_of_a_newer_format_is_refused(interrupted):
    record = interrupted / "zarr.json"
    document = json.loads(record.read_text())
    document["attributes"]["pbj_store_format"] = 3
    record.write_text(json.dumps(document))
    with pytest.raises(StoreError, match=r"has format 3, newer than this release reads"):
        pbj.resume(str(interrupted))


def test_a_sampler_outside_the_registry_runs_but_cannot_be_resumed(tmp_path, model):
    class LocalNUTS(NUTS):
        pass

    path = tmp_path / "run.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pbj.SamplingWarning)
        pbj.sample(model, sampler=LocalNUTS(), data=DATA, store=str(path), **KW)
    document = json.loads((path / "_pbj" / "run.json").read_text())
    assert "not in pytensor_blackjax.samplers.SAMPLERS" in document["sampler"]
    with pytest.raises(StoreError, match=r"holds no copy of its sampler .*LocalNUTS"):
        pbj.resume(str(path))


LAYOUTS = {
    "vectorized": dict(sampler="nuts", chain_method="vectorized"),
    "float32": dict(sampler="nuts", precision="float32"),
    "mclmc": dict(sampler="mclmc"),
    "ensemble": dict(sampler="smc"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_resume_rebuilds_the_chain_state_of_every_layout(tmp_path, monkeypatch, model, layout):
    kw = {**KW, **LAYOUTS[layout]}
    path = tmp_path / "run.zarr"
    interrupt_at(monkeypatch, 100)
    with pytest.raises(Crash):
        pbj.sample(model, data=DATA, store=str(path), **kw)
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pbj.SamplingWarning)
        resumed = pbj.resume(str(path), progressbar=False)
        reference = pbj.sample(model, data=DATA, **kw)
    assert resumed.attrs["num_draws_completed"] == 150
    for group in ("posterior", "sample_stats"):
        for name in reference[group].data_vars:
            np.testing.assert_array_equal(resumed[group][name].values, reference[group][name].values)


SHARDED = """
import warnings, numpy as np, pytensor.tensor as pt, pytensor_blackjax as pbj
from pytensor_blackjax.store._sink import StoreSink
m = pbj.ModelBuilder()
x = m.param("x", shape=(2,))
m.add_logp(-0.5 * pt.sum((x - 1.0) ** 2))
model = m.build()
kw = dict(draws=150, tune=100, chains=3, seed=4, chunk_size=50, progressbar=False)
commit = StoreSink._commit_state
def crash(self, state, *, num_draws=None, **k):
    if num_draws == 100:
        raise KeyError("crash")
    return commit(self, state, num_draws=num_draws, **k)
StoreSink._commit_state = crash
try:
    pbj.sample(model, store=STORE, **kw)
except KeyError:
    pass
StoreSink._commit_state = commit
warnings.simplefilter("ignore", pbj.SamplingWarning)
resumed = pbj.resume(STORE, progressbar=False)
reference = pbj.sample(model, **kw)
assert resumed.attrs["chain_method"] == "sharded", resumed.attrs["chain_method"]
np.testing.assert_array_equal(resumed["posterior"]["x"].values, reference["posterior"]["x"].values)
print("SAME")
"""


@pytest.mark.slow  # a child process with two forced host devices: about 40 s
def test_resume_of_a_sharded_run_equals_the_uninterrupted_run(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    code = f"STORE = {str(tmp_path / 'run.zarr')!r}\n" + SHARDED
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "SAME" in done.stdout, done.stderr[-3000:]
