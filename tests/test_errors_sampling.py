"""Bad arguments to ``sample`` and ``resume``: each error names the argument, the value and the fix."""

import numpy as np
import pytensor.tensor as pt
import pytest

import pytensor_blackjax as pbj
from pytensor_blackjax.store import StoreError

QUICK = dict(draws=10, tune=10, chains=1, progressbar=False)


@pytest.fixture(scope="module")
def model():
    m = pbj.ModelBuilder()
    mu = m.param("mu")
    y = m.data("y", np.ones(5))
    k = m.data("k", np.arange(3, dtype="int64"))
    m.add_logp(-0.5 * pt.sum((y - mu) ** 2) - 0.01 * pt.sum(k) * mu**2)
    return m.build()


@pytest.mark.parametrize("name", ["draws", "chains", "thin", "chunk_size"])
@pytest.mark.parametrize("value", [0, -3, 1.5, "10", True])
def test_counts_must_be_positive_integers(model, name, value):
    with pytest.raises(ValueError, match=rf"{name}={value!r} is not valid: {name} must be an integer >= 1"):
        pbj.sample(model, **{**QUICK, name: value})


@pytest.mark.parametrize(("name", "example"), [("chains", 4), ("chunk_size", 100), ("draws", 1000)])
def test_a_bad_count_suggests_a_typical_value(model, name, example):
    with pytest.raises(ValueError, match=rf"{name}=0 is not valid: .*, e\.g\. {name}={example}\.$"):
        pbj.sample(model, **{**QUICK, name: 0})


def test_tune_may_be_zero_but_not_negative(model):
    with pytest.raises(ValueError, match=r"tune=-1 is not valid: tune must be an integer >= 0"):
        pbj.sample(model, **{**QUICK, "tune": -1})


def test_unknown_sampler_lists_the_known_ones(model):
    with pytest.raises(ValueError, match=r"sampler='nutz' is not known; use one of \[.*'nuts'.*\]"):
        pbj.sample(model, sampler="nutz", **QUICK)
    with pytest.raises(TypeError, match=r"sampler=3 must be a name such as 'nuts' or a config object"):
        pbj.sample(model, sampler=3, **QUICK)


@pytest.mark.parametrize("seed", ["abc", 1.5, -1, True])
def test_seed_of_the_wrong_type(model, seed):
    with pytest.raises(TypeError, match=rf"seed={seed!r} is not valid: give a non-negative integer"):
        pbj.sample(model, seed=seed, **QUICK)


def test_unknown_chain_method(model):
    with pytest.raises(ValueError, match=r"chain_method='gpu' is not known; use one of"):
        pbj.sample(model, chain_method="gpu", **QUICK)


def test_data_name_that_does_not_exist(model):
    with pytest.raises(ValueError, match=r"data\['zz'\]: the model declares no data named 'zz'"):
        pbj.sample(model, data={"zz": np.ones(3)}, **QUICK)


def test_data_of_the_wrong_shape(model):
    with pytest.raises(ValueError, match=r"data\['y'\] has shape \(7,\) but the model was built with shape"):
        pbj.sample(model, data={"y": np.ones(7)}, **QUICK)


def test_data_of_the_wrong_dtype(model):
    with pytest.raises(TypeError, match=r"data\['y'\] must be numeric, got dtype <U1"):
        pbj.sample(model, data={"y": np.array(list("abcde"))}, **QUICK)
    with pytest.raises(TypeError, match=r"data\['k'\] holds non-integer values but .* as int64"):
        pbj.sample(model, data={"k": np.array([0.5, 1.0, 2.0])}, **QUICK)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_data_with_nan_or_inf(model, bad):
    with pytest.raises(ValueError, match=r"data\['y'\] contains NaN or inf values; remove or impute them"):
        pbj.sample(model, data={"y": np.array([1.0, bad, 1.0, 1.0, 1.0])}, **QUICK)


@pytest.mark.parametrize("term", ["-inf", "nan"])
def test_log_density_not_finite_at_any_start(term):
    m = pbj.ModelBuilder()
    a = m.param("a")
    m.add_logp(-np.inf * (a**2 + 1) if term == "-inf" else pt.log(-(a**2) - 1))
    with pytest.raises(ValueError, match=r"not finite at any of 100 random starting points.*Check the model"):
        pbj.sample(m.build(), **QUICK)


def test_log_likelihood_requested_but_not_declared(model):
    with pytest.raises(ValueError, match=r"log_likelihood=True but the model declares no pointwise"):
        pbj.sample(model, log_likelihood=True, **QUICK)


def test_resume_a_missing_store(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"store '.*missing\.zarr' does not exist; check the path"):
        pbj.resume(str(tmp_path / "missing.zarr"))


def test_resume_something_that_is_not_a_store(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreError, match=r"'.*plain' is corrupt or not a pytensor-blackjax store: no zarr"):
        pbj.resume(str(tmp_path / "plain"))
    (tmp_path / "file.zarr").write_text("hello")
    with pytest.raises(StoreError, match=r"file\.zarr' is corrupt or not a pytensor-blackjax store"):
        pbj.resume(str(tmp_path / "file.zarr"))


def test_results_written_with_out_are_not_a_run_store(model, tmp_path):
    # what `run --out` writes (DataTree.to_zarr) is read, never resumed: the error says so, not "corrupt"
    results = tmp_path / "results.zarr"
    pbj.sample(model, **QUICK).to_zarr(results, consolidated=False)
    expected = r"'.*results\.zarr' holds results written by .*--out.* not the store of a run.*store=PATH"
    with pytest.raises(StoreError, match=expected):
        pbj.resume(str(results))
    with pytest.raises(StoreError, match=expected):
        pbj.extend(str(results), draws=10)
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / ".zgroup").write_text('{"zarr_format": 2}')
    with pytest.raises(StoreError, match=r"'.*v2' holds Zarr v2 data, not the store of a run"):
        pbj.resume(str(tmp_path / "v2"))


def test_resume_an_unreadable_store(tmp_path, monkeypatch):
    from pathlib import Path

    store = tmp_path / "run.zarr"
    store.mkdir()
    (store / "zarr.json").write_text("{}")

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", denied)  # file modes do not stop root, who runs the CI
    with pytest.raises(PermissionError, match=r"store '.*run\.zarr' cannot be read: Permission denied"):
        pbj.resume(str(store))


def test_minus_infinity_everywhere_names_the_term():
    # an observation outside the likelihood's support (an exponential's y >= 0): the likelihood term is -inf
    m = pbj.ModelBuilder()
    rate = m.param("rate", transform="positive")
    y = m.data("y", np.array([0.5, -1.0, 2.0]), observed=True)
    m.add_logp(-rate)
    m.add_logp(pt.sum(pt.switch(y >= 0, pt.log(rate) - rate * y, -np.inf)))
    with pytest.raises(
        ValueError, match=r"Term by term at that point: add_logp term 2: -inf, .*not finite: "
    ):
        pbj.sample(m.build(), **QUICK)


def test_minus_infinity_everywhere_names_the_pymc_variable():
    pm = pytest.importorskip("pymc")
    with pm.Model() as pm_model:
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.HalfNormal("y", sigma, observed=[0.5, -1.0, 2.0])
    with pytest.raises(
        ValueError, match=r"Term by term at that point: y: -inf, sigma: .*not finite: \['y'\]"
    ):
        pbj.sample(pm_model, **QUICK)
