"""pbj.extend: more draws for a complete stored run, equal to one longer run; CLI `extend`; errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
import pytest

import pytensor_blackjax as pbj

# short runs may miss the R-hat/ESS thresholds; those warnings are not what these tests are about
pytestmark = pytest.mark.filterwarnings("ignore::pytensor_blackjax.results.SamplingWarning")

KW = dict(tune=300, chains=2, seed=6, chunk_size=100, progressbar=False)


def gaussian():
    m = pbj.ModelBuilder()
    x = m.param("x", shape=(3,))
    m.add_logp(-0.5 * pt.sum((x / np.array([0.5, 1.0, 2.0])) ** 2))
    return m.build()


@pytest.mark.parametrize("chain_method", ["parallel", "vectorized"])
def test_extend_equals_one_longer_run(tmp_path, chain_method):
    path = str(tmp_path / "run.zarr")
    model = gaussian()
    first = pbj.sample(model, draws=250, store=path, chain_method=chain_method, **KW)
    longer = pbj.extend(first, draws=330, progressbar=False)  # a result made with store= finds its store
    again = pbj.extend(path, draws=20, progressbar=False)
    reference = pbj.sample(model, draws=600, chain_method=chain_method, **KW)
    ref = reference["posterior"]["x"].values
    np.testing.assert_array_equal(longer["posterior"]["x"].values, ref[:, :580])
    np.testing.assert_array_equal(again["posterior"]["x"].values, ref)
    record = json.loads((Path(path) / "zarr.json").read_text())["attributes"]
    assert record["status"] == "complete" and record["num_draws_completed"] == 600
    assert again.attrs["num_draws_completed"] == 600


def test_extend_until_stops_where_an_until_run_would(tmp_path):
    path = str(tmp_path / "run.zarr")
    model = gaussian()
    pbj.sample(model, draws=200, store=path, **KW)
    until = pbj.Until(ess_bulk=1500)
    extended = pbj.extend(path, until=until, progressbar=False)
    reference = pbj.sample(model, until=until, **KW)
    assert extended.attrs["stop_reason"] == reference.attrs["stop_reason"] == "targets_met"
    np.testing.assert_array_equal(extended["posterior"]["x"].values, reference["posterior"]["x"].values)


def test_extend_errors(tmp_path):
    model = gaussian()
    in_memory = pbj.sample(model, draws=200, **KW)
    with pytest.raises(ValueError, match=r"not made with a store.*store='run.zarr'"):
        pbj.extend(in_memory, draws=10)
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        pbj.extend(tmp_path / "missing.zarr", draws=10)
    path = str(tmp_path / "run.zarr")
    pbj.sample(model, draws=200, store=path, **KW)
    with pytest.raises(ValueError, match=r"one of draws= .* or until="):
        pbj.extend(path)
    with pytest.raises(ValueError, match=r"one of draws="):
        pbj.extend(path, draws=10, until=pbj.Until(ess_bulk=10))
    with pytest.raises(ValueError, match=r"draws=0 is not valid"):
        pbj.extend(path, draws=0)
    with pytest.raises(ValueError, match=r"max_draws=150\) counts every draw.*holds 200"):
        pbj.extend(path, until=pbj.Until(ess_bulk=10, max_draws=150))
    record = json.loads((Path(path) / "zarr.json").read_text())["attributes"]
    assert record["status"] == "complete"  # a refused extension leaves the store as it was


def test_extend_refuses_an_unfinished_store(tmp_path):
    path = tmp_path / "run.zarr"
    pbj.sample(gaussian(), draws=200, store=str(path), **KW)
    root = path / "zarr.json"
    document = json.loads(root.read_text())
    document["attributes"]["status"] = "sampling"
    root.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"is not complete.*pbj.resume"):
        pbj.extend(str(path), draws=10)


def test_cli_extend(tmp_path):
    path = str(tmp_path / "run.zarr")
    pbj.sample(gaussian(), draws=200, store=path, **KW)
    cli = [
        str(Path(sys.executable).parent / "pytensor-blackjax"),
        "extend",
        path,
        "--draws",
        "100",
        "--no-progress",
    ]
    out = subprocess.run(cli, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    record = json.loads((Path(path) / "zarr.json").read_text())["attributes"]
    assert record["num_draws_completed"] == 300
    bad = subprocess.run(cli[:3] + ["--no-progress"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "give one of --draws N" in bad.stderr
