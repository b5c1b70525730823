"""Reading a store while another process writes it, for ``pytensor-blackjax watch``.

Only committed draws are read: the root attribute ``num_draws_completed`` is the commit record (see
``_sink``), and arrays are sliced up to it, so a chunk being written is never seen. Nothing here writes
to the store or takes a lock; the writer never waits for a reader.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zarr

from pytensor_blackjax.store._files import FORMAT, SIDE_DIR
from pytensor_blackjax.store._legacy import LEGACY_FORMAT
from pytensor_blackjax.store._open import StoreError
from pytensor_blackjax.store._sink import PROGRESS_FILE

__all__ = ["STALE_AFTER", "CommittedDraws", "StoreStatus", "check_store", "read_status"]

# A run on another host (no pid to check) is called interrupted after this long without a write: long
# enough for a slow model's chunk, short enough that a dead cluster job is noticed the same hour.
STALE_AFTER = 600.0
WATCHED_GROUPS = ("posterior", "sample_stats")


def check_store(path: Path) -> dict:
    """The root attributes of a store written by ``pbj.sample(..., store=path)``.

    Raises:
        FileNotFoundError: nothing at ``path``.
        StoreError: a folder that is not a Zarr store, or a Zarr store of another kind or format.
    """
    if not path.exists():
        raise FileNotFoundError(
            f"store '{path}' does not exist; give the path passed as store= to pbj.sample "
            "(or --store to pytensor-blackjax run)."
        )
    meta = path / "zarr.json"
    if not path.is_dir() or not meta.exists():
        kind = "Zarr v2 data" if (path / ".zgroup").exists() else "no zarr.json at its root"
        raise StoreError(
            f"'{path}' is not a pytensor-blackjax store ({kind}); give the folder passed as store= to "
            "pbj.sample(..., store=...) or --store to pytensor-blackjax run."
        )
    try:
        attrs = json.loads(meta.read_text()).get("attributes", {})
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(f"store '{path}' has a damaged zarr.json ({e}); it cannot be watched.") from None
    version = attrs.get("pbj_store_format")
    if version is None:
        raise StoreError(
            f"'{path}' is a Zarr store but not a run store of pbj.sample(..., store=...) (it has no "
            "pbj_store_format attribute; finished results written with --out are read with "
            f"pytensor-blackjax summary/report '{path}')."
        )
    if version not in (LEGACY_FORMAT, FORMAT):  # format 1 differs only in _pbj/, which is not read here
        raise StoreError(
            f"store '{path}' has format {version!r}; this version of pytensor-blackjax reads formats "
            f"{LEGACY_FORMAT}-{FORMAT}. Watch it with the version that wrote it."
        )
    return attrs


def _alive(pid: object, host: object) -> bool | None:
    """Whether the writing process runs; None when that cannot be known here (another host)."""
    if not isinstance(pid, int) or host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _read_progress(path: Path) -> tuple[dict | None, float]:
    file = path / SIDE_DIR / PROGRESS_FILE
    try:
        return json.loads(file.read_text()), file.stat().st_mtime
    except (OSError, ValueError):  # absent (no warmup yet) or replaced while read: next time
        return None, 0.0


@dataclass(frozen=True)
class StoreStatus:
    """Where a run stands, from its commit record and its warmup note."""

    path: Path
    phase: str  # "warmup", "sampling", "complete" or "interrupted"
    num_draws: int  # committed draws per chain
    draws: int
    tune: int
    chains: int
    model: str
    sampler: str
    warmup: dict | None  # the last warmup note: steps_done, tune, step_size, divergences, time
    updated: float  # time of the last write seen (seconds since the epoch)
    writer_alive: bool | None
    attrs: dict = field(repr=False)

    @property
    def resume_hint(self) -> str:
        return f"pytensor-blackjax resume {self.path}"


def read_status(path: Path, *, now: float | None = None) -> StoreStatus:
    """Read the commit record and warmup note of a store (two small files; no arrays)."""
    attrs = check_store(path)
    root_time = (path / "zarr.json").stat().st_mtime
    note, note_time = _read_progress(path)
    newest_note = note if note is not None and note_time >= root_time else None
    writer = newest_note if newest_note is not None else attrs
    alive = _alive(writer.get("writer_pid"), writer.get("writer_host"))
    updated = max(root_time, note_time)
    stale = ((now or time.time()) - updated) > STALE_AFTER
    status = str(attrs.get("status", "warmup"))
    if status == "complete":
        phase = "complete"
    elif alive is False or stale or (newest_note is not None and newest_note.get("phase") == "stopped"):
        phase = "interrupted"
    else:
        phase = status
    return StoreStatus(
        path=path,
        phase=phase,
        num_draws=int(attrs.get("num_draws_completed", 0)),
        draws=int(attrs.get("draws", 0)),
        tune=int(attrs.get("tune", 0)),
        chains=int(attrs.get("chains", 0)),
        model=str(attrs.get("model", "")),
        sampler=str(attrs.get("sampler", "")),
        warmup=note if note is not None and note.get("phase") == "warmup" else None,
        updated=updated,
        writer_alive=alive,
        attrs=attrs,
    )


def _open_group(path: Path, group: str):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=zarr.errors.ZarrUserWarning)
        return zarr.open_group(str(path), path=group, mode="r", use_consolidated=False)


class CommittedDraws:
    """The committed ``(chain, draw, ...)`` arrays of a store, read incrementally as commits arrive.

    ``advance(n)`` reads draws ``[self.num_draws, n)`` only; a smaller ``n`` (a resumed run that
    restarted) reads everything again.
    """

    def __init__(self, path: Path):
        self.path = path
        self._reset()

    def _reset(self) -> None:
        self.num_draws = 0
        self.arrays: dict[str, dict[str, np.ndarray]] = {}
        self.dims: dict[str, tuple[str, ...]] = {}
        self.coords: dict[str, np.ndarray] = {}

    def advance(self, num_draws: int) -> bool:
        """Read up to ``num_draws`` committed draws per chain; True when anything new was read."""
        if num_draws < self.num_draws:
            self._reset()
        if num_draws == self.num_draws:
            return False
        start = self.num_draws
        for group in WATCHED_GROUPS:
            if not (self.path / group / "zarr.json").exists():
                continue
            arrays = _open_group(self.path, group)
            kept = self.arrays.setdefault(group, {})
            for name in sorted(arrays.array_keys()):  # a directory's listing order is the file system's
                array = arrays[name]
                dims = tuple(array.metadata.dimension_names or ())
                if dims[:2] != ("chain", "draw"):
                    if len(dims) == 1 and group == "posterior":
                        self.coords[name] = np.asarray(array[:])
                    continue
                new = np.asarray(array[:, start:num_draws])
                kept[name] = new if name not in kept else np.concatenate([kept[name], new], axis=1)
                self.dims[f"{group}/{name}"] = dims
        self.num_draws = num_draws
        return True
