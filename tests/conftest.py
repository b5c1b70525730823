"""Shared pieces: the rat-tumor reference posterior, the seed-style graph, an MCSE z-score, posteriordb."""

from pathlib import Path

import numpy as np
import pytensor.tensor as pt
import pytest
from pytensor.tensor.special import gammaln

from pytensor_blackjax.examples._rats import rat_tumor_data

# Rat tumors posterior (mean, sd), from 2 x 25,000 NUTS draws of an independent sampler.
RATS_REF = {"alpha": (2.452, 0.917), "beta": (14.54, 5.41)}


def rats_seed_graph(*, static_length: bool = False):
    """The rat model written by hand over unconstrained inputs, Jacobians included."""
    y, n = rat_tumor_data()
    log_a, log_b = pt.scalar("log_a"), pt.scalar("log_b")
    logit_theta = pt.vector("logit_theta", shape=(len(y),) if static_length else (None,))
    a, b, theta = pt.exp(log_a), pt.exp(log_b), pt.sigmoid(logit_theta)
    logp = (
        -2.5 * pt.log(a + b)
        + log_a
        + log_b
        + pt.sum(pt.log(theta) + pt.log(1 - theta))
        + pt.sum(
            gammaln(a + b) - gammaln(a) - gammaln(b) + (a - 1) * pt.log(theta) + (b - 1) * pt.log(1 - theta)
        )
        + pt.sum(y * pt.log(theta) + (n - y) * pt.log(1 - theta))
    )
    return logp, [log_a, log_b, logit_theta], {"alpha": a, "beta": b, "theta": theta}


def mcse_z(tree, name, truth):
    """Largest |mean - truth| / MCSE over the components of one posterior variable."""
    import arviz_stats

    da = tree["posterior"][name]
    ess = np.asarray(arviz_stats.ess(da.to_dataset(), method="mean")[name].values)
    x = np.asarray(da.values)
    x = x.reshape(-1, *x.shape[2:])
    mcse = x.std(0) / np.sqrt(np.maximum(ess, 1.0))
    return float(np.max(np.abs(x.mean(0) - np.asarray(truth)) / np.maximum(mcse, 1e-12)))


@pytest.fixture(scope="session")
def rats_seed_model():
    import pytensor_blackjax as pbj

    logp, inputs, dets = rats_seed_graph()
    return pbj.Model.from_logp(logp, inputs=inputs, deterministics=dets)


# The posterior database: ../shared/posteriordb next to the repository. Its tests FAIL without it, never
# skip: a missing database must not look like a passing suite.
POSTERIORDB = Path(__file__).resolve().parents[2] / "shared" / "posteriordb"


def require_posteriordb(path: Path = POSTERIORDB) -> Path:
    """``path`` when it is a folder, else fail the calling test with how to provide it."""
    if not path.is_dir():
        pytest.fail(
            f"the posterior database is missing: {path} is not a folder. The posteriordb tests need it "
            "(one folder per posterior with data.json and reference_draws.json); put it there, e.g. "
            "copy or link ../shared/posteriordb next to the repository.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def posteriordb_root() -> Path:
    return require_posteriordb()
