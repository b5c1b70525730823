"""``run_validation``: sample every posterior of a posteriordb folder and compare with its reference."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pytensor_blackjax.examples import posteriordb
from pytensor_blackjax.results import SamplingWarning
from pytensor_blackjax.samplers import Sampler, resolve
from pytensor_blackjax.validate._compare import compare, effective_sizes
from pytensor_blackjax.validate._reference import load_reference, posterior_folders, select
from pytensor_blackjax.validate._report import Row, ValidationReport

__all__ = ["run_validation"]

SOURCES = ("builder", "pymc")


def run_validation(
    path: str | Path,
    *,
    sampler: str | Sampler = "nuts",
    only: Sequence[str] | None = None,
    draws: int = 1000,
    chains: int = 4,
    seed: int = 0,
    progress: bool = True,
    tune: int = 1000,
    source: str = "builder",
) -> ValidationReport:
    """Sample each posterior under ``path`` and compare every reference parameter with our draws.

    For every posterior folder (``data.json``, ``reference_draws.json``) the shipped model
    (`pytensor_blackjax.examples.posteriordb`) is sampled and each reference parameter is checked:
    mean within 5 combined MCSE, sd within 15%, and a two-sample Kolmogorov-Smirnov check of the
    marginal whose limit uses effective sample sizes (see `pytensor_blackjax.validate._compare`).

    Args:
        path: a posteriordb folder holding one folder per posterior, or one posterior folder.
        sampler: "nuts" uses each posterior's recommended NUTS settings; any other name or a sampler
            config object is used as given for every posterior.
        only: posterior names to run (default: all found under ``path``).
        draws: draws per chain kept after warmup.
        chains: independent chains.
        seed: the seed of every run.
        progress: print one line per posterior to stderr as it finishes.
        tune: warmup steps per chain.
        source: "builder" (the ModelBuilder versions) or "pymc" (the PyMC versions, for the
            posteriors that have one).

    Returns:
        A `ValidationReport`; ``.passed`` is True when no posterior FAILs, ``.table()`` prints it.

    Raises:
        FileNotFoundError: ``path`` holds no posterior folder.
        ValueError: a name in ``only`` that is not under ``path``, or an unknown ``source``.

    Example:
        >>> from pytensor_blackjax.validate import run_validation
        >>> report = run_validation("../shared/posteriordb", only=["arK-arK"])  # doctest: +SKIP
        >>> print(report.table())  # doctest: +SKIP
    """
    if source not in SOURCES:
        raise ValueError(f"source={source!r} is not known; use one of {list(SOURCES)}.")
    folders = _chosen(posterior_folders(Path(path)), only, source)
    label = sampler if isinstance(sampler, str) else getattr(sampler, "name", type(sampler).__name__)
    if isinstance(sampler, str) and sampler.lower() == "nuts":
        label = "nuts (per-posterior recommended settings)"
    rows = []
    for i, folder in enumerate(folders, start=1):
        row = _validate_one(folder, sampler, draws=draws, chains=chains, tune=tune, seed=seed, source=source)
        rows.append(row)
        if progress:
            print(
                f"[{i}/{len(folders)}] {row.name}: {row.status} ({row.seconds:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    if source != "builder":
        label += f", {source} models"
    return ValidationReport(tuple(rows), sampler=label, draws=draws, chains=chains, seed=seed)


def _chosen(folders: list[Path], only: Sequence[str] | None, source: str) -> list[Path]:
    if isinstance(only, str):
        only = [only]
    if only:
        by_name = {f.name: f for f in folders}
        unknown = [n for n in only if n not in by_name]
        if unknown:
            raise ValueError(
                f"only={list(only)}: {unknown} not found under the given path; available: {sorted(by_name)}."
            )
        folders = [by_name[n] for n in only]
    if source == "pymc":
        folders = [f for f in folders if f.name in posteriordb.PYMC_MODELS]
        if not folders:
            raise ValueError(
                f"source='pymc': none of the chosen posteriors has a PyMC version; "
                f"those with one: {sorted(posteriordb.PYMC_MODELS)}."
            )
    return folders


def _sampler_for(name: str, sampler: str | Sampler) -> Sampler:
    if isinstance(sampler, str) and sampler.lower() == "nuts" and name in posteriordb.POSTERIORS:
        return posteriordb.spec(name).sampler()
    return resolve(sampler)


def _validate_one(folder: Path, sampler, *, draws, chains, tune, seed, source) -> Row:
    import pytensor_blackjax as pbj

    name = folder.name
    known = posteriordb.POSTERIORS.get(name)
    expect_warn = bool(known and known.expect_warn)
    notes = [known.note] if known and known.note else []
    if known is None:
        return Row(name, error="no model for this posterior is shipped with pytensor_blackjax")
    start = time.perf_counter()
    try:
        data = posteriordb.load_data(folder)
        model = posteriordb.model(name, data) if source == "builder" else posteriordb.pymc_model(name, data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SamplingWarning)
            tree = pbj.sample(
                model,
                draws=draws,
                tune=tune,
                chains=chains,
                seed=seed,
                sampler=_sampler_for(name, sampler),
                progressbar=False,
            )
    except Exception as exc:  # one broken posterior must not stop the suite
        return Row(
            name,
            seconds=time.perf_counter() - start,
            expect_warn=expect_warn,
            error=f"{type(exc).__name__}: {exc}",
        )
    seconds = time.perf_counter() - start
    for w in caught:
        if issubclass(w.category, SamplingWarning):
            notes.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    reference = load_reference(folder)
    posterior = tree["posterior"].to_dataset()
    checks, missing = [], []
    for key, ref_draws in reference.items():
        ours = select(posterior, key)
        if ours is None:
            missing.append(key)
            continue
        checks.append(compare(key, ours, ref_draws, effective_sizes(ref_draws)))
    stats = tree["sample_stats"].to_dataset()
    divergences = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else 0
    grad_evals = int(np.asarray(stats["n_steps"]).sum()) if "n_steps" in stats else None
    return Row(
        name,
        tuple(checks),
        divergences=divergences,
        grad_evals=grad_evals,
        seconds=seconds,
        expect_warn=expect_warn,
        notes=tuple(notes),
        missing=tuple(missing),
    )
