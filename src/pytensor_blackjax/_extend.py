"""``extend``: more draws for a finished run, from its last chain state, without warming up again."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import xarray as xr

from pytensor_blackjax._resume import continue_run
from pytensor_blackjax._validate import check_count
from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.model import Model
from pytensor_blackjax.run import RunSettings
from pytensor_blackjax.run._until import Until, check_until
from pytensor_blackjax.store import open_stored, reopen_for_more

__all__ = ["extend"]


def extend(
    store: str | Path | xr.DataTree,
    *,
    draws: int | None = None,
    until: Until | None = None,
    model: Model | CompiledModel | None = None,
    progressbar: bool = True,
) -> xr.DataTree:
    """Continue a complete ``sample(..., store=...)`` run and return the whole DataTree.

    Sampling goes on from the stored chain state with the stored adapted parameters, seed and
    settings, so the draws equal those of one run that asked for the total from the start (same seed):
    no warmup is repeated. The store holds the longer run afterwards (and can be extended again).

    Args:
        store: the store's path, or a result of ``sample(..., store=...)`` (its ``attrs["store"]``).
        draws: draws more per chain.
        until: instead of ``draws``: sample until these targets are met; ``max_draws`` counts the
            draws already made too.
        model: the model that started the run; by default the copy kept in the store.
        progressbar: show a live progress bar.

    Returns:
        ``xarray.DataTree`` with every draw, the earlier ones first.

    Raises:
        FileNotFoundError: nothing at ``store``.
        ValueError: neither or both of ``draws`` and ``until``, a result made without a store, or a
            store that is not complete (``pbj.resume`` it first).
        pytensor_blackjax.StoreError: see ``resume``.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> idata = pbj.sample(pbj.examples.rat_tumors(), seed=1, store="rats.zarr")  # doctest: +SKIP
        >>> idata = pbj.extend("rats.zarr", draws=1000)  # doctest: +SKIP
    """
    path = _store_path(store)
    if (draws is None) == (until is None):
        raise ValueError(
            f"extend needs one of draws= (that many more draws per chain, e.g. draws=1000) or until= "
            f"(pbj.Until(ess_bulk=...)); got draws={draws!r} and until={until!r}."
        )
    if draws is not None:
        draws = check_count("draws", draws)
    elif not isinstance(until, Until):
        raise TypeError(f"until={until!r} is not valid: give pbj.Until(ess_bulk=..., ...).")

    def more(settings: RunSettings, done: int) -> RunSettings:
        if draws is not None:
            total = done + draws
        else:
            assert until is not None  # exactly one of draws and until, checked above
            total = until.max_draws
            if total <= done:
                raise ValueError(
                    f"Until(max_draws={until.max_draws}) counts every draw of the run, and the store "
                    f"holds {done} per chain already; give a larger max_draws."
                )
        # keep the stored chunk: the store's arrays are chunked by it
        return dataclasses.replace(settings, draws=total, chunk_size=settings.chunk)

    # checked before the store changes
    before = open_stored(path, model, settings_type=RunSettings)
    check_until(
        until or Until(max_seconds=1.0),
        sampler=before.sampler,
        chunk=before.settings.chunk,
        chains=before.settings.chains,
        names=before.compiled.output_shapes,
    )
    model = before.compiled
    reopen_for_more(
        path, settings_type=RunSettings, more=more, until=None if until is None else until.to_json()
    )
    stored = open_stored(path, model, settings_type=RunSettings)
    return continue_run(stored, progressbar=progressbar)


def _store_path(store: Any) -> Path:
    if isinstance(store, xr.DataTree):
        where = store.attrs.get("store")
        if not where:
            raise ValueError(
                "this result was not made with a store, so there is no chain state to continue from: "
                "sample with pbj.sample(..., store='run.zarr') and extend that (pbj.extend('run.zarr', "
                "draws=...)), or sample again with more draws."
            )
        return Path(where)
    if not isinstance(store, str | Path):
        raise TypeError(
            f"store={store!r} is not valid: give a store's path or a result of pbj.sample(..., store=...)."
        )
    return Path(store).expanduser()
