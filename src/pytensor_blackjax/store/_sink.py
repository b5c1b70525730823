"""The store as the driver's sink: every chunk's draws land in preallocated Zarr arrays, then the chain
state, then - last - the commit record in the root ``zarr.json``.

Commit protocol (each file write is atomic: a temporary file renamed into place):

1. the chunk's draws go into their own Zarr chunks of every ``(chain, draw, ...)`` array;
2. the chain state after the chunk goes to a new side file ``_pbj/state-<draws>.pkl``;
3. the root attributes ``num_draws_completed`` and ``state_file`` are rewritten in one write.

A crash before step 3 leaves the previous commit in force: draws past ``num_draws_completed`` are
not part of the run, and ``resume`` deletes them before sampling them again.

During warmup, which commits nothing, each chunk rewrites ``_pbj/progress.json`` (steps done, step
size, divergences, the writer's pid and host, the time) so that a watcher can follow it; every commit
also records the writer's pid and host, so a reader can tell a live run from an interrupted one.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from pytensor_blackjax.results import make_datatree
from pytensor_blackjax.store._files import SIDE_DIR, RootRecord, consolidate, json_safe, write_atomic

__all__ = ["DRAW_GROUPS", "PROGRESS_FILE", "StoreSink", "writer_record"]

DRAW_GROUPS = ("posterior", "sample_stats", "log_likelihood")
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

    def __init__(self, path: Path, *, model, settings, groups: tuple[str, ...]):
        self.path = path
        self.model = model
        self.settings = settings
        self.groups = groups
        self.record = RootRecord(path)
        self._arrays: dict[str, dict[str, Any]] | None = None
        self._state_file: str | None = self.record.attrs.get("state_file")

    # -- driver hooks ------------------------------------------------------------------------
    def warmup_done(self, checkpoint) -> None:
        carry, params = checkpoint.state, checkpoint.params
        self._write_side("params.pkl", pickle.dumps({"params": params, "method": checkpoint.layout}))
        extra = {"chain_method_used": checkpoint.layout}
        self._commit_state(carry, num_draws=0, status="sampling", extra=extra)

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

    def chunk(self, start: int, arrays: dict[str, dict[str, np.ndarray]], checkpoint) -> None:
        n_valid = next(iter(arrays["posterior"].values())).shape[1] if arrays["posterior"] else 0
        try:
            if self._arrays is None:
                self._arrays = self._open_or_create(arrays)
            for group, values in self._arrays.items():
                for name, array in values.items():
                    array[:, start : start + n_valid] = arrays[group][name]
        except OSError as e:
            raise OSError(e.errno, self._failure(f"writing draws {start}-{start + n_valid}", e)) from e
        carry = checkpoint.state
        self._commit_state(carry, num_draws=start + n_valid, status="sampling")

    def close(self, output) -> None:
        """Mark the store complete once every draw is in; an interrupted run stays resumable."""
        attrs = {
            "sampling_time": json_safe(output.timings.get("sampling")),
            "warmup_time": json_safe(output.timings.get("warmup")),
        }
        complete = output.num_draws >= self.settings.draws
        if complete:
            attrs["status"] = "complete"
        self._update_root(attrs)
        if not complete:  # stopped early (Ctrl-C) in a process that may live on: not running any more
            note = {"phase": "stopped", "time": time.time(), **writer_record()}
            self._write_side(PROGRESS_FILE, json.dumps(note).encode())

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

    def _commit_state(self, carry, *, num_draws: int, status: str, extra: dict | None = None) -> None:
        name = f"state-{num_draws:09d}.pkl"
        self._write_side(name, pickle.dumps(carry, protocol=pickle.HIGHEST_PROTOCOL))
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
        template = make_datatree(
            {g: first[g] for g in self.groups if first.get(g)}, dims=self.model.dims, coords=self.model.coords
        )
        out: dict[str, dict[str, Any]] = {}
        for group in self.groups:
            if group not in template.children:
                continue
            ds = template[group].to_dataset()
            coords = {c: (ds[c].dims, np.arange(s.draws) if c == "draw" else ds[c].values) for c in ds.coords}
            xr.Dataset(coords=coords, attrs=ds.attrs).to_zarr(
                str(self.path), group=group, mode="w", zarr_format=3, consolidated=False
            )
            zgroup = zarr.open_group(str(self.path), path=group, mode="r+", use_consolidated=False)
            out[group] = {}
            for name, var in ds.data_vars.items():
                shape = (s.chains, s.draws, *var.shape[2:])
                out[group][name] = zgroup.create_array(
                    name,
                    shape=shape,
                    chunks=(s.chains, s.chunk, *var.shape[2:]),
                    dtype=var.dtype,
                    fill_value=_fill_value(var.dtype),
                    dimension_names=var.dims,
                )
        consolidate(self.path)
        # reload so that later commits keep the new consolidated metadata
        self.record.reload()
        return out
