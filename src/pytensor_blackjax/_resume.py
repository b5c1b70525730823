"""``resume``: continue a run that ``sample(..., store=...)`` did not finish."""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path

import xarray as xr

from pytensor_blackjax._sample import build_result, with_log_prior
from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.model import Model
from pytensor_blackjax.run import RunOutput, RunSettings, run
from pytensor_blackjax.run._interrupt import interrupted_before_draws
from pytensor_blackjax.run._until import Until
from pytensor_blackjax.store import StoredRun, open_stored
from pytensor_blackjax.store._formats import rebuild

__all__ = ["continue_run", "resume", "stored_until"]


def resume(
    store: str | Path,
    *,
    model: Model | CompiledModel | None = None,
    progressbar: bool = True,
) -> xr.DataTree:
    """Continue an interrupted ``sample(..., store=...)`` run and return the complete DataTree.

    The run continues from its last committed chunk with the stored chain state, adapted parameters,
    seed and settings, so the draws equal those of an uninterrupted run with the same seed. A run
    stopped during warmup repeats its warmup from the start (warmup is deterministic too).

    A store that is already complete (e.g. the process died after the last commit) is read back with a
    ``RuntimeWarning`` saying that nothing was left to sample.

    Args:
        store: the path given as ``store=`` to ``sample``.
        model: the model that started the run; by default the copy kept in the store. Either way its
            fingerprint must match the one recorded in the store.
        progressbar: show a live progress bar.

    Returns:
        ``xarray.DataTree`` with every draw (those made before the interruption and after), as ``sample``
        returns it.

    Raises:
        FileNotFoundError: nothing at ``store``.
        pytensor_blackjax.StoreError: the store is corrupt, was written by a different model, or holds
            a sampler config or settings this release cannot rebuild.
        OSError: the store is no longer writable.
        KeyboardInterrupt: Ctrl-C while the repeated warmup ran (the store stays resumable).

    Example:
        >>> import pytensor_blackjax as pbj
        >>> model = pbj.examples.rat_tumors()
        >>> idata = pbj.sample(model, seed=1, store="rats.zarr", progressbar=False)  # doctest: +SKIP
        >>> # ... killed? then:
        >>> idata = pbj.resume("rats.zarr")  # doctest: +SKIP
    """
    stored = open_stored(store, model, settings_type=RunSettings)
    if stored.complete:
        return _complete_result(stored)
    return continue_run(stored, progressbar=progressbar)


def continue_run(stored: StoredRun, *, progressbar: bool) -> xr.DataTree:
    """Sample the rest of an opened store (resume and extend alike) and return the whole DataTree."""
    sink = stored.sink()
    compiled = stored.compiled
    settings = _same_layout(stored)
    until = stored_until(stored)
    point = stored.resume_point
    assert point is not None  # only a complete store has none, and it is not continued
    previous = None
    if until is not None and point.num_draws:
        # the checks look at every draw, those made before this call included
        previous = stored.read_draws(point.num_draws).get("posterior")
    t0 = time.perf_counter()
    output = run(
        compiled,
        stored.sampler,
        settings,
        compiled.data_tuple(stored.new_data),
        progressbar=progressbar,
        sink=sink,
        resume=point,
        log_likelihood=stored.log_likelihood,
        until=until,
        previous=previous,
    )
    sink.close(output)
    if output.interrupted and not output.num_draws:
        raise interrupted_before_draws(stored.path)
    output = dataclasses.replace(output, groups=stored.read_draws(output.num_draws))
    if stored.log_prior:
        output = with_log_prior(compiled, output, stored.new_data)
    tree = build_result(
        compiled,
        stored.sampler,
        settings,
        output,
        stored.new_data,
        log_likelihood=stored.log_likelihood,
        elapsed=time.perf_counter() - t0,
    )
    tree.attrs["store"] = str(stored.path)
    return tree


def stored_until(stored: StoredRun) -> Until | None:
    """The until-run targets kept in the store (None: a fixed-length run)."""
    if stored.until is None:
        return None
    return rebuild(Until, stored.until, stored.path, "until targets", allow_defaults=True)


def _same_layout(stored: StoredRun) -> RunSettings:
    """The settings with the chain method that wrote the stored state, whatever the core count now."""
    point = stored.resume_point
    layout = None if point is None else point.layout
    same = {"threaded": "parallel", "vectorized": "vectorized"}
    method = same.get(layout or "", stored.settings.chain_method)
    return dataclasses.replace(stored.settings, chain_method=method)


def _complete_result(stored: StoredRun) -> xr.DataTree:
    draws = stored.num_draws
    warnings.warn(
        f"store {str(stored.path)!r} is already complete: nothing was left to sample; returning its {draws} "
        "draws per chain.",
        RuntimeWarning,
        stacklevel=3,
    )
    output = RunOutput(stored.read_draws(draws), draws, False, {}, stored.chain_method_used)
    if stored.log_prior:
        output = with_log_prior(stored.compiled, output, stored.new_data)
    tree = build_result(
        stored.compiled,
        stored.sampler,
        stored.settings,
        output,
        stored.new_data,
        log_likelihood=stored.log_likelihood,
        elapsed=0.0,
    )
    tree.attrs["store"] = str(stored.path)
    return tree
