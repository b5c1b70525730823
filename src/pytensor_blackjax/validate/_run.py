"""``run_validation``: sample posteriordb posteriors with several samplers and seeds, compare each run."""

from __future__ import annotations

import dataclasses
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pytensor_blackjax.examples import posteriordb
from pytensor_blackjax.results import ApproximationWarning, SamplingWarning
from pytensor_blackjax.samplers import Sampler, resolve
from pytensor_blackjax.validate._compare import (
    DEFAULT_ALPHA,
    Comparison,
    Moments,
    Tolerance,
    check_scalars,
    moments,
)
from pytensor_blackjax.validate._plan import PLANS, SamplerPlan, plan
from pytensor_blackjax.validate._reference import load_reference, posterior_folders, select
from pytensor_blackjax.validate._report import Run, Skipped, ValidationReport

__all__ = ["run_validation"]

SOURCES = ("builder", "pymc")


def run_validation(
    path: str | Path,
    *,
    sampler: str | Sampler | Sequence[str] = "nuts",
    seeds: int | Sequence[int] = 3,
    only: Sequence[str] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int | None = None,
    alpha: float = DEFAULT_ALPHA,
    progress: bool = True,
    source: str = "builder",
) -> ValidationReport:
    """Sample posteriordb posteriors and compare every scalar of every reference parameter.

    For every posterior folder (``data.json``, ``reference_draws.json``) the shipped model
    (`pytensor_blackjax.examples.posteriordb`) is sampled by each sampler it is meant for
    (`pytensor_blackjax.validate.PLANS`), once per seed, and compared with `compare`'s criterion:
    z-scores of the mean, sd and 5%/95% quantiles against a Bonferroni threshold at family-wise
    ``alpha`` (approximations: their `Tolerance`). Divergences also fail a run.

    Args:
        path: a posteriordb folder holding one folder per posterior, or one posterior folder.
        sampler: a name, a list of names, "all" (every sampler in ``PLANS``), or a config object.
            "nuts" uses each posterior's recommended NUTS settings.
        seeds: how many seeds (0, 1, ...) or the seeds themselves.
        only: posterior names to run (default: all found under ``path``).
        draws: draws per chain kept after warmup.
        tune: warmup steps per chain.
        chains: chains per run (default: the sampler's plan, 4; 32 for ChEES and MEADS).
        alpha: family-wise false-alarm rate per posterior and run.
        progress: print one line per run to stderr as it finishes.
        source: "builder" (the ModelBuilder versions) or "pymc" (the PyMC versions, for the
            posteriors that have one).

    Returns:
        A `ValidationReport`; ``.passed`` is True when no counted posterior FAILs, ``.table()`` prints it.

    Raises:
        FileNotFoundError: ``path`` holds no posterior folder.
        ValueError: a name in ``only`` that is not under ``path``, an unknown ``source`` or sampler, or
            no seeds.

    Example:
        >>> from pytensor_blackjax.validate import run_validation
        >>> report = run_validation("../shared/posteriordb", only=["arK-arK"], seeds=1)  # doctest: +SKIP
        >>> print(report.table())  # doctest: +SKIP
    """
    if source not in SOURCES:
        raise ValueError(f"source={source!r} is not known; use one of {list(SOURCES)}.")
    seed_list = tuple(range(seeds)) if isinstance(seeds, int) else tuple(int(s) for s in seeds)
    if not seed_list:
        raise ValueError(f"seeds={seeds!r}: give at least one seed, e.g. seeds=3 for 0, 1, 2.")
    configs = _samplers(sampler)
    folders = _chosen(posterior_folders(Path(path)), only, source)
    references: dict[str, dict[str, tuple[np.ndarray, Moments]]] = {}
    runs, skipped = [], []
    total = sum(len(folders) for _ in configs) * len(seed_list)
    done = 0
    for config in configs:
        label, spec = _label(config)
        for folder in folders:
            reason = spec.not_meant_for.get(folder.name)
            if reason:
                skipped.append(Skipped(folder.name, label, reason))
                done += len(seed_list)
                continue
            for seed in seed_list:
                run = _validate_one(
                    folder,
                    config,
                    spec,
                    label=label,
                    seed=seed,
                    draws=draws,
                    tune=tune,
                    chains=chains or spec.chains,
                    alpha=alpha,
                    source=source,
                    references=references,
                )
                runs.append(run)
                done += 1
                if progress:
                    print(
                        f"[{done}/{total}] {label} {run.posterior} seed {seed}: {run.status} "
                        f"({run.seconds:.1f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
    return ValidationReport(tuple(runs), tuple(skipped), draws=draws, tune=tune, seeds=seed_list, alpha=alpha)


def _samplers(sampler: str | Sampler | Sequence[str]) -> list[str | Sampler]:
    if isinstance(sampler, str | Sampler):
        chosen: list[str | Sampler] = [sampler]
    else:
        chosen = list(sampler)
    if any(isinstance(s, str) and s.lower() == "all" for s in chosen):
        return list(PLANS)
    if not chosen:
        raise ValueError("sampler=[]: give at least one sampler name, e.g. 'nuts', or 'all'.")
    for s in chosen:
        if isinstance(s, str):
            plan(s)  # unknown names fail here, before anything is sampled
    return chosen


def _label(config: str | Sampler) -> tuple[str, SamplerPlan]:
    if isinstance(config, str):
        return config.lower(), plan(config)
    name = config.name
    approximate = Tolerance() if config.approximate else None
    return name, PLANS.get(name, SamplerPlan(name, tolerance=approximate))


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


def _sampler_for(name: str, sampler: str | Sampler, spec: SamplerPlan | None = None) -> Sampler:
    """The config a named sampler runs ``name`` with: the posterior's start, then the plan's settings.

    A config object is the caller's and runs as given.
    """
    known = posteriordb.POSTERIORS.get(name)
    if not isinstance(sampler, str) or not known:
        return resolve(sampler)
    if sampler.lower() == "nuts":
        return known.sampler()
    config = known.started(resolve(sampler))
    settings = spec.settings.get(name, {}) if spec else {}
    return dataclasses.replace(config, **settings) if settings else config  # type: ignore[type-var]


def _reference(folder: Path, cache: dict) -> dict[str, tuple[np.ndarray, Moments]]:
    if folder.name not in cache:
        cache[folder.name] = {k: (v, moments(v)) for k, v in load_reference(folder).items()}
    return cache[folder.name]


def _validate_one(
    folder: Path, config, spec: SamplerPlan, *, label, seed, draws, tune, chains, alpha, source, references
) -> Run:
    import pytensor_blackjax as pbj

    name = folder.name
    known = posteriordb.POSTERIORS.get(name)
    base = Run(name, label, seed, not_counted=known.not_counted if known else "")
    if known is None:
        return _replace(base, error="no model for this posterior is shipped with pytensor_blackjax")
    notes = [known.note] if known.note and label == "nuts" else []
    start = time.perf_counter()
    try:
        data = posteriordb.load_data(folder)
        model = posteriordb.model(name, data) if source == "builder" else posteriordb.pymc_model(name, data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SamplingWarning)
            warnings.simplefilter("ignore", ApproximationWarning)  # the plan's tolerance says it already
            tree = pbj.sample(
                model,
                draws=draws,
                tune=tune,
                chains=chains,
                seed=seed,
                sampler=_sampler_for(name, config, spec),
                progressbar=False,
            )
    except Exception as exc:  # one broken posterior must not stop the suite
        return _replace(base, seconds=time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - start
    for w in caught:
        if issubclass(w.category, SamplingWarning):
            notes.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    posterior = tree["posterior"].to_dataset()
    checks, missing = [], []
    for key, (_, ref_moments) in _reference(folder, references).items():
        ours = select(posterior, key)
        if ours is None:
            missing.append(key)
            continue
        checks.append(check_scalars(key, moments(ours), ref_moments))
    stats = tree["sample_stats"].to_dataset()
    divergences = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else 0
    grad_evals = int(np.asarray(stats["n_steps"]).sum()) if "n_steps" in stats else None
    return _replace(
        base,
        comparison=Comparison(tuple(checks), alpha=alpha, tolerance=spec.tolerance),
        divergences=divergences,
        grad_evals=grad_evals,
        seconds=seconds,
        notes=tuple(notes),
        missing=tuple(missing),
    )


def _replace(run: Run, **changes) -> Run:
    return dataclasses.replace(run, **changes)
