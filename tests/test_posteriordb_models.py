"""The posteriordb models: transcription checked against the reference draws, names, PyMC versions.

The score check: under the posterior, the gradient of the log-density (in unconstrained space,
Jacobians included) has mean zero. Averaged over the ~independent reference draws, each component
must be within a few standard errors of zero; a wrong prior, likelihood term or Jacobian shows up
as a large mean gradient.
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytensor.tensor as pt
import pytest
from conftest import POSTERIORDB

import pytensor_blackjax as pbj
from pytensor_blackjax.compile._jaxify import jaxify
from pytensor_blackjax.examples import posteriordb
from pytensor_blackjax.examples.posteriordb._timeseries import TriangleGarch
from pytensor_blackjax.validate import load_reference, parse_name

ROOT = POSTERIORDB
needs_data = pytest.mark.usefixtures("posteriordb_root")  # fails, never skips, without the database
SCORE_Z = 5.0
SCORE_DRAWS = 4000


def constrained_reference(folder: Path) -> dict[str, np.ndarray]:
    """Reference draws as arrays ``(draws, *shape)`` keyed by base name (``theta[1]`` -> ``theta[:, 0]``)."""
    flat = {k: v.reshape(-1)[:SCORE_DRAWS] for k, v in load_reference(folder).items()}
    grouped: dict[str, dict[tuple[int, ...], np.ndarray]] = {}
    for key, values in flat.items():
        base, index = parse_name(key)
        grouped.setdefault(base, {})[index] = values
    out = {}
    for base, parts in grouped.items():
        if list(parts) == [()]:
            out[base] = parts[()]
        else:
            size = max(i[0] for i in parts) + 1
            out[base] = np.stack([parts[(i,)] for i in range(size)], axis=1)
    return out


def logit(p):
    return np.log(p) - np.log1p(-p)


def unconstrained(name: str, ref: dict[str, np.ndarray], data: dict) -> dict[str, np.ndarray]:
    """Invert each transform of the model's values, from the reference's constrained draws."""
    compiled = pbj.compile(posteriordb.model(name, data))
    out = {}
    for value in compiled.value_names:
        if value in ref:
            out[value] = ref[value]
        elif value.endswith("_log__"):
            out[value] = np.log(ref[value.removesuffix("_log__")])
        elif value.endswith("_logodds__"):
            out[value] = logit(ref[value.removesuffix("_logodds__")])
        elif value.endswith("_ordered__"):
            y = ref[value.removesuffix("_ordered__")]
            out[value] = np.concatenate([y[:, :1], np.log(np.diff(y, axis=1))], axis=1)
        elif value == "alpha1_beta1_triangle__":
            a1, b1 = ref["alpha1"], ref["beta1"]
            out[value] = np.stack([logit(a1), logit(b1 / (1 - a1))], axis=1)
        elif value == "theta_trans":
            out[value] = (ref["theta"] - ref["mu"][:, None]) / ref["tau"][:, None]
        elif value == "f_tilde":
            x = np.asarray(data["x"], dtype=float)
            cov = ref["alpha"][:, None, None] ** 2 * np.exp(
                -((x[:, None] - x[None, :]) ** 2) / (2 * ref["rho"][:, None, None] ** 2)
            ) + 1e-10 * np.eye(x.size)
            out[value] = np.linalg.solve(np.linalg.cholesky(cov), ref["f"][..., None])[..., 0]
        else:
            raise AssertionError(f"{name}: no inverse for value {value!r}")
    return out


@needs_data
@pytest.mark.parametrize("name", posteriordb.names())
def test_mean_score_is_zero_at_reference_draws(name):
    folder = ROOT / name
    data = posteriordb.load_data(folder)
    compiled = pbj.compile(posteriordb.model(name, data))
    position = unconstrained(name, constrained_reference(folder), data)
    flat = jnp.concatenate(
        [jnp.reshape(jnp.asarray(position[b.name]), (SCORE_DRAWS, -1)) for b in compiled.blocks], axis=1
    )
    grads = np.asarray(
        jax.jit(jax.vmap(jax.grad(lambda x: compiled.flat_logdensity(x, compiled.data_tuple()))))(flat)
    )
    assert np.all(np.isfinite(grads))
    z = grads.mean(0) / (grads.std(0, ddof=1) / np.sqrt(SCORE_DRAWS))
    assert np.max(np.abs(z)) < SCORE_Z, f"mean score z-values {np.round(z, 1)}"


@needs_data
@pytest.mark.parametrize("name", posteriordb.names())
def test_every_reference_name_is_reported(name):
    folder = ROOT / name
    compiled = pbj.compile(posteriordb.load(folder))
    for key in load_reference(folder):
        base, index = parse_name(key)
        assert base in compiled.output_shapes, key
        assert all(i < n for i, n in zip(index, compiled.output_shapes[base], strict=True)), key


def test_parse_name():
    assert parse_name("theta[1]") == ("theta", (0,))
    assert parse_name("L[2,1]") == ("L", (1, 0))
    assert parse_name("sigma") == ("sigma", ())
    with pytest.raises(ValueError, match="1-based"):
        parse_name("theta[0]")
    with pytest.raises(ValueError, match="not of the form"):
        parse_name("theta[a]")


def test_unknown_posterior_and_missing_field():
    with pytest.raises(KeyError, match="not shipped"):
        posteriordb.model("nope-nope", {})
    with pytest.raises(KeyError, match="no field 'sigma'"):
        posteriordb.model("eight_schools-eight_schools_centered", {"y": [1.0, 2.0]})


def test_garch_triangle_transform_jacobian():
    x = pt.vector("x", shape=(2,))
    t = TriangleGarch()
    forward, log_jac = jaxify([x], [t.forward(x)]), jaxify([x], [t.log_jacobian(x)])
    point = jnp.array([0.3, -1.2])
    (expected,) = log_jac(point)
    jac = jax.jacfwd(lambda v: forward(v)[0])(point)
    assert np.isclose(np.log(abs(np.linalg.det(jac))), expected)
    (back,) = jaxify([x], [t.backward(t.forward(x))])(point)
    np.testing.assert_allclose(back, point)


@needs_data
@pytest.mark.parametrize("name", sorted(posteriordb.PYMC_MODELS))
def test_pymc_version_matches_builder(name):
    pytest.importorskip("pymc")
    data = posteriordb.load_data(ROOT / name)
    ours, theirs = pbj.compile(posteriordb.model(name, data)), pbj.compile(posteriordb.pymc_model(name, data))
    assert ours.value_names == theirs.value_names  # same transforms, so the same unconstrained names
    diffs = []
    for key in jax.random.split(jax.random.key(0), 3):
        position = ours.initial_position(key)
        diffs.append(float(ours.logdensity_fn(position)) - float(theirs.logdensity_fn(position)))
        mine, pymc_outputs = ours.constrain(position), theirs.constrain(position)
        for output in mine:
            np.testing.assert_allclose(mine[output], pymc_outputs[output], rtol=1e-10)
    # the builder drops normalising constants, so the log-densities differ by one constant
    np.testing.assert_allclose(diffs, diffs[0], rtol=0, atol=1e-8 * max(1.0, abs(diffs[0])))


def test_a_narrow_start_is_a_nuts_option():
    sampler = posteriordb.spec("arma-arma11").sampler()
    assert isinstance(sampler, pbj.samplers.NUTS) and sampler.init_radius == 0.2


def test_a_narrow_start_is_the_posteriors_for_every_sampler():
    from pytensor_blackjax.validate._run import _sampler_for

    arma = posteriordb.spec("arma-arma11")
    for name in ("hmc", "mala", "mclmc", "adjusted_mclmc", "chees", "pathfinder"):
        assert _sampler_for("arma-arma11", name).init_radius == 0.2, name
    assert _sampler_for("arK-arK", "mala").init_radius == pbj.samplers.MALA().init_radius
    smc = pbj.samplers.SMC()  # no init_radius field to set: unchanged
    assert arma.started(smc) is smc
    # a config object passed as such is the caller's: not changed
    assert _sampler_for("arma-arma11", pbj.samplers.HMC()).init_radius == pbj.samplers.HMC().init_radius
