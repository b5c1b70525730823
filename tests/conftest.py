"""Shared pieces: the rat-tumor reference posterior, the seed-style graph, the suite's statistical check
(`mcse_z`, `moment_z`), a temporary program cache, posteriordb, and the tools that CI must have
(`require_tool`)."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
import pytest
from pytensor.tensor.special import gammaln

from pytensor_blackjax.examples._rats import rat_tumor_data

# Rat tumors posterior (mean, sd), from 2 x 25,000 NUTS draws of an independent sampler.
RATS_REF = {"alpha": (2.452, 0.917), "beta": (14.54, 5.41)}

# The convergence a statistical check asks for before it trusts an MCSE (Vehtari, Gelman, Simpson,
# Carpenter & Buerkner 2021): rank-normalised split R-hat below 1.01, and a bulk ESS of 100 per chain
# (the package's own SamplingWarning line) up to 400 in all. Below that the ESS estimate, and with it the
# MCSE that scales the z-score, is itself too uncertain; and a chain stuck far from the others (whose
# bad mixing shrinks the ESS and so widens the tolerance until a wrong mean passes) shows in R-hat.
RHAT_MAX = 1.01
ESS_PER_CHAIN = 100
ESS_TOTAL_CAP = 400


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


def moment_z(values, truth, *, what="draws"):
    """Largest |mean - truth| / MCSE over the components of ``values`` (chain, draw, ...).

    Before trusting the MCSE it asserts convergence: R-hat < `RHAT_MAX` and bulk ESS >= `ESS_PER_CHAIN`
    per chain (at most `ESS_TOTAL_CAP` in all) for every component; an AssertionError names the worst.
    Pass a function of the draws to check other moments: ``(x - mu) ** 2`` against the variance.
    """
    import arviz_stats

    x = np.asarray(values, dtype=float)
    chains = x.shape[0]
    rhat = np.atleast_1d(np.asarray(arviz_stats.rhat(x)))
    bulk = np.atleast_1d(np.asarray(arviz_stats.ess(x, method="bulk")))
    worst = int(np.argmax(np.nan_to_num(rhat, nan=np.inf)))
    assert np.all(rhat < RHAT_MAX), f"{what}: R-hat {rhat.flat[worst]:.3f} >= {RHAT_MAX} (component {worst})"
    floor = min(ESS_PER_CHAIN * chains, ESS_TOTAL_CAP)
    low = int(np.argmin(bulk))
    assert np.all(bulk >= floor), f"{what}: bulk ESS {bulk.flat[low]:.0f} < {floor} (component {low})"
    mean, mcse = mean_and_mcse(x)
    return float(np.max(np.abs(mean - np.asarray(truth)) / np.maximum(mcse, 1e-12)))


def mean_and_mcse(values):
    """The mean of ``values`` (chain, draw, ...) over chains and draws, and its MCSE from the mean-ESS."""
    import arviz_stats

    x = np.asarray(values, dtype=float)
    ess = np.asarray(arviz_stats.ess(x, method="mean"))
    flat = x.reshape(-1, *x.shape[2:])
    return flat.mean(0), flat.std(0) / np.sqrt(np.maximum(ess, 1.0))


def mcse_z(tree, name, truth):
    """`moment_z` of one posterior variable's draws: its largest |mean - truth| / MCSE, after asserting
    R-hat and bulk ESS."""
    return moment_z(tree["posterior"][name].values, truth, what=name)


@pytest.fixture(scope="session", autouse=True)
def program_cache(tmp_path_factory):
    """Every test (and every process a test starts: they inherit the variable) compiles into a cache of
    its own, so a warm cache on the machine never stands in for compiling. `run._cache.cache_dir` reads
    the variable at each call; nothing reads it at import."""
    from pytensor_blackjax.run import _cache

    directory = tmp_path_factory.mktemp("programs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(_cache.ENV, str(directory))
        yield directory


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_tool(path: Path | str, why: str, install: str) -> None:
    """Skip without the tool on a developer's machine; fail in CI (CI=true), where it must be there."""
    found = Path(path).exists() or shutil.which(str(path)) is not None
    if found:
        return
    message = f"{why} needs {path}, which is missing; install it with: {install}"
    if in_ci():
        pytest.fail(f"CI=true: {message} (.ci/run installs it)", pytrace=False)
    pytest.skip(message)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skip for want of posteriordb (../shared/posteriordb) is a failure: the validation evidence must
    never go missing quietly. The test files say why they skip; this turns any such skip, from a
    ``skipif`` mark or a ``pytest.skip`` call, into a failure that says what to do."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if "posteriordb" in reason.lower():
            report.outcome = "failed"
            report.longrepr = (
                f"{reason}\nThe posteriordb tests must run: put the posteriordb checkout at "
                "../shared/posteriordb beside this repository (CI gets a copy of shared/)."
            )


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
