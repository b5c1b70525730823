"""The store as the driver's sink: every chunk's draws land in Zarr arrays, then the chain state, then -
last - the commit record in the root ``zarr.json``.

A fixed-length run's arrays are made for all its draws at once. Those of a run whose length is not
known beforehand (``until=``, or one ``extend`` continues) grow when a chunk would not fit, doubling
up to the run's cap, and are cut to the committed draws when the run completes. A crash between a
growth and the next commit leaves arrays longer than the commit, which is what a crash mid-chunk
leaves anyway: draws past ``num_draws_completed`` are not part of the run.

Commit protocol (each file write is atomic: a temporary file renamed into place):

1. the chunk's draws go into their own Zarr chunks of every ``(chain, draw, ...)`` array;
2. the chain state after the chunk goes to a new side file ``_pbj/state-<draws>.npz`` (its leaves in
   ``jax.tree.leaves`` order; the adapted parameters went to ``_pbj/params.npz`` once, after warmup);
3. the root attributes ``num_draws_completed`` and ``state_file`` are rewritten in one write.

A crash before step 3 leaves the previous commit in force: draws past ``num_draws_completed`` are
not part of the run, and ``resume`` deletes them before sampling them again.

During warmup, which commits nothing, each chunk rewrites ``_pbj/progress.json`` (steps done, step
size, divergences, the writer's pid and host, the time) so that a watcher can follow it; every commit
also records the writer's pid and host, so a reader can tell a live run from an interrupted one.

The sink sees only `Checkpoint` values (host arrays), never the driver's objects.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import xarray as xr
import zarr

from pytensor_blackjax._checkpoint import Checkpoint
from pytensor_blackjax.results import make_datatree
from pytensor_blackjax.store._files import (
    SIDE_DIR,
    RootRecord,
    consolidate,
    draw_arrays,
    json_safe,
    write_atomic,
)
from pytensor_blackjax.store._formats import arrays_blob, numbered
from pytensor_blackjax.store._side import PARAMS_FILE, START_FILE, state_file

__all__ = ["DRAW_GROUPS", "PROGRESS_FILE", "StoreSink", "draw_groups", "writer_record"]

DRAW_GROUPS = ("posterior", "sample_stats", "log_likelihood", "unconstrained_posterior")


def draw_groups(log_likelihood: bool, unconstrained: bool) -> tuple[str, ...]:
    """The ``(chain, draw, ...)`` groups a run writes."""
    return tuple(
        g
        for g in DRAW_GROUPS
        if (g != "log_likelihood" or log_likelihood) and (g != "unconstrained_posterior" or unconstrained)
    )


PROGRESS_FILE = "progress.json"  # in SIDE_DIR: warmup progress, for watchers only


def writer_record() -> dict:
    """Who is writing the store: lets a reader tell a live run from one whose process is gone."""
    return {"writer_pid": os.getpid(), "writer_host": socket.gethostname()}


def _fill_value(dtype: np.dtype) -> Any:
    if dtype.kind == "f" or dtype.kind == "c":
        return np.nan
    if dtype.kind == "b":
        return False
    return 0


class StoreSink:
    """Writes a run to ``path`` chunk by chunk; see the module docstring for the commit protocol."""

    def __init__(self, path: Path, *, model, settings, groups: tuple[str, ...], grow: bool = False):
        self.path = path
        self.grow = grow  # the run's length is open: allocate a little and grow
        self.model = model
        self.settings = settings
        self.groups = groups
        self.record = RootRecord(path)
        self._arrays: dict[str, dict[str, Any]] | None = None
        self._state_file: str | None = self.record.attrs.get("state_file")

    # -- driver hooks ------------------------------------------------------------------------
    def warmup_done(self, checkpoint: Checkpoint) -> None:
        """Keep the adapted parameters (they do not change while sampling) and the state after warmup."""
        leaves = [] if checkpoint.params is None else jax.tree.leaves(checkpoint.params)
        self._write_side(PARAMS_FILE, arrays_blob(numbered("params", leaves)))
        self._commit_state(
            checkpoint.state,
            num_draws=checkpoint.num_draws,
            status="sampling",
            extra={"chain_method_used": checkpoint.layout},
        )

    def warmup_progress(self, steps_done: int, tune: int, step_size: float | None, divergences: int) -> None:
        """Record where warmup is; read only by watchers (resume repeats warmup from its start)."""
        note = {
            "phase": "warmup",
            "steps_done": steps_done,
            "tune": tune,
            "step_size": step_size,
            "divergences": divergences,
            "time": time.time(),
            **writer_record(),
        }
        self._write_side(PROGRESS_FILE, json.dumps(note).encode())

    def start_points(self, positions: np.ndarray) -> None:
        """Keep given starting points (``initvals``): a resume that repeats the warmup starts there."""
        self._write_side(START_FILE, arrays_blob({"start": np.asarray(positions)}))
        self._update_root({"start_points": START_FILE})

    def chunk(self, start: int, arrays: dict[str, dict[str, np.ndarray]], checkpoint: Checkpoint) -> None:
        """Commit one chunk of draws, ``(chain, draw, ...)`` by group, and the state after it."""
        n_valid = next(iter(arrays["posterior"].values())).shape[1] if arrays["posterior"] else 0
        try:
            if self._arrays is None:
                self._arrays = self._open_or_create(arrays)
            self._fit(start + n_valid)
            for group, values in self._arrays.items():
                for name, array in values.items():
                    array[:, start : start + n_valid] = arrays[group][name]
        except OSError as e:
            raise OSError(e.errno, self._failure(f"writing draws {start}-{start + n_valid}", e)) from e
        self._commit_state(checkpoint.state, num_draws=start + n_valid, status="sampling")

    def close(self, output) -> None:
        """Mark the store complete once every draw is in; an interrupted run stays resumable."""
        attrs = {
            "sampling_time": json_safe(output.timings.get("sampling")),
            "warmup_time": json_safe(output.timings.get("warmup")),
        }
        # an until-run that stopped on its targets or a cap is complete too
        complete = output.num_draws >= self.settings.draws or (
            output.extra.get("stop_reason") not in (None, "interrupted")
        )
        if complete:
            attrs["status"] = "complete"
            self._cut(output.num_draws)
        self._update_root(attrs)
        if not complete:  # stopped early (Ctrl-C) in a process that may live on: not running any more
            note = {"phase": "stopped", "time": time.time(), **writer_record()}
            self._write_side(PROGRESS_FILE, json.dumps(note).encode())

    # -- growing ------------------------------------------------------------------------------
    def _length(self) -> int:
        assert self._arrays is not None  # called only once the arrays are open
        first = next(a for values in self._arrays.values() for a in values.values())
        return first.shape[1]

    def _fit(self, needed: int) -> None:
        """Grow every draw array (doubling, up to the run's cap) so that ``needed`` draws fit."""
        length = self._length()
        if needed <= length:
            return
        chunk = self.settings.chunk
        new = min(self.settings.draws, max(needed, 2 * length))
        self._resize(-(-new // chunk) * chunk if new < self.settings.draws else new)

    def _cut(self, num_draws: int) -> None:
        """Arrays of exactly the committed draws (an open-length run allocated more)."""
        if self._arrays is None:
            try:
                self._arrays = self._open_existing()
            except (FileNotFoundError, KeyError):
                return
        if self._arrays and self._length() != num_draws:
            self._resize(num_draws)

    def _resize(self, length: int) -> None:
        assert self._arrays is not None  # called only once the arrays are open
        for group, values in self._arrays.items():
            for array in values.values():
                array.resize((array.shape[0], length, *array.shape[2:]))
            draw = zarr.open_array(str(self.path), path=f"{group}/draw", mode="r+")
            old = draw.shape[0]
            draw.resize((length,))
            if length > old:
                draw[old:] = np.arange(old, length, dtype=draw.dtype)
        consolidate(self.path)
        self.record.reload()

    def _open_existing(self) -> dict[str, dict[str, Any]]:
        out = {}
        for group in self.groups:
            if not (self.path / group / "zarr.json").exists():
                continue
            zgroup = zarr.open_group(str(self.path), path=group, mode="r+", use_consolidated=False)
            out[group] = draw_arrays(zgroup)
        return out

    # -- helpers -----------------------------------------------------------------------------
    def _failure(self, what: str, error: OSError) -> str:
        done = self.record.attrs.get("num_draws_completed", 0)
        return (
            f"{what} to store {str(self.path)!r} failed: {error.strerror or error}. The store keeps its "
            f"{done} committed draws per chain; free space (or fix the cause) and continue with "
            f"pbj.resume({str(self.path)!r})."
        )

    def _write_side(self, name: str, blob: bytes) -> None:
        try:
            write_atomic(self.path / SIDE_DIR / name, blob)
        except OSError as e:
            raise OSError(e.errno, self._failure(f"writing {name}", e)) from e

    def _commit_state(self, state: Any, *, num_draws: int, status: str, extra: dict | None = None) -> None:
        name = state_file(num_draws)
        self._write_side(name, arrays_blob(numbered("state", jax.tree.leaves(state))))
        self._update_root(
            {
                "num_draws_completed": num_draws,
                "state_file": name,
                "status": status,
                **writer_record(),
                **(extra or {}),
            }
        )
        previous, self._state_file = self._state_file, name
        if previous and previous != name:
            (self.path / SIDE_DIR / previous).unlink(missing_ok=True)

    def _update_root(self, attrs: dict) -> None:
        try:
            self.record.update(attrs)
        except OSError as e:
            raise OSError(e.errno, self._failure("committing", e)) from e

    def _open_or_create(self, first: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
        """The ``(chain, draw, ...)`` arrays of every stored group, created from the first chunk's layout."""
        wanted = [g for g in self.groups if first.get(g)]
        if all((self.path / g / "zarr.json").exists() for g in wanted):  # a resumed run: arrays exist
            return {
                g: {k: zarr.open_array(str(self.path), path=f"{g}/{k}", mode="r+") for k in first[g]}
                for g in wanted
            }
        s = self.settings
        # an open-length run starts with ten chunks (or its cap) and grows
        length = min(s.draws, 10 * s.chunk) if self.grow else s.draws
        template = make_datatree(
            {g: first[g] for g in self.groups if first.get(g)}, dims=self.model.dims, coords=self.model.coords
        )
        out: dict[str, dict[str, Any]] = {}
        for group in self.groups:
            if group not in template.children:
                continue
            ds = template[group].to_dataset()
            coords = {c: (ds[c].dims, np.arange(length) if c == "draw" else ds[c].values) for c in ds.coords}
            xr.Dataset(coords=coords, attrs=ds.attrs).to_zarr(
                str(self.path), group=group, mode="w", zarr_format=3, consolidated=False
            )
            zgroup = zarr.open_group(str(self.path), path=group, mode="r+", use_consolidated=False)
            out[group] = {}
            for key, var in ds.data_vars.items():
                name = str(key)  # xarray types names as Hashable; a store's are strings
                shape = (s.chains, length, *var.shape[2:])
                out[group][name] = zgroup.create_array(
                    name,
                    shape=shape,
                    chunks=(s.chains, s.chunk, *var.shape[2:]),
                    dtype=var.dtype,
                    fill_value=_fill_value(var.dtype),
                    dimension_names=[str(d) for d in var.dims],
                )
        consolidate(self.path)
        # reload so that later commits keep the new consolidated metadata
        self.record.reload()
        return out
