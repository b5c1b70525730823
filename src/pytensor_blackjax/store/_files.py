"""Low-level file work for a store: atomic side files, write and space checks, the root commit record."""

from __future__ import annotations

import errno
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Literal

import zarr

__all__ = [
    "FORMAT",
    "SIDE_DIR",
    "VARIABLE_ORDER_ATTR",
    "RootRecord",
    "check_free_space",
    "check_writable",
    "consolidate",
    "draw_arrays",
    "open_root",
    "remove_partial_files",
    "write_atomic",
]

# bump when the layout changes; resume reads this version and, through `_legacy`, version 1
FORMAT = 2
SIDE_DIR = "_pbj"  # model, run settings and chain states: files xarray does not read
# root attribute: the posterior's variables in the model's order (a directory lists them in any order)
VARIABLE_ORDER_ATTR = "posterior_variables"


def write_atomic(path: Path, blob: bytes) -> None:
    """Write ``blob`` to ``path`` so that a killed process leaves either the old file or the whole new one.

    No fsync: like Zarr's own writes, this guards against the process dying (kill -9, out of memory,
    Ctrl-C), not against the machine losing power before the OS flushes its cache.
    """
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(blob)
    os.replace(tmp, path)


class RootRecord:
    """The root ``zarr.json``, whose attributes are the store's commit record.

    Written whole in one atomic replace (Zarr's attribute API rewrites the file once per key), keeping
    the consolidated metadata that `consolidate` put there.
    """

    def __init__(self, path: Path):
        self.file = path / "zarr.json"
        self.reload()

    def reload(self) -> None:
        self.document = json.loads(self.file.read_text())

    @property
    def attrs(self) -> dict:
        return self.document.setdefault("attributes", {})

    def update(self, attrs: dict) -> None:
        self.attrs.update(attrs)
        write_atomic(self.file, json.dumps(self.document, indent=2).encode())


def check_writable(path: Path) -> None:
    """Create ``path`` and prove a file can be written there, or fail now rather than hours later.

    Raises:
        OSError: the location cannot be created or written (read-only, permissions, not a directory).
    """
    try:
        (path / SIDE_DIR).mkdir(parents=True, exist_ok=True)
        write_atomic(path / SIDE_DIR / "probe", b"pytensor-blackjax write check")
        (path / SIDE_DIR / "probe").unlink()
    except OSError as e:
        raise OSError(
            e.errno,
            f"cannot write to store {str(path)!r}: {e.strerror or e}. Choose a writable location "
            "for store= (a local directory you own with free space).",
        ) from e


def check_free_space(path: Path, needed: int) -> None:
    """Raise ENOSPC when the uncompressed size of the run does not fit (an upper bound: the data are
    compressed, but draws of continuous parameters barely shrink)."""
    free = shutil.disk_usage(path).free
    if needed > free:
        raise OSError(
            errno.ENOSPC,
            f"store {str(path)!r} needs up to {needed / 1e6:,.1f} MB but its disk has {free / 1e6:,.1f} MB "
            "free; free some space, pick another location, or ask for fewer draws (or thin=).",
        )


def consolidate(path: Path) -> None:
    """Gather the arrays' metadata into the root, so ``xarray.open_datatree`` opens the store quickly and
    without looking at the side directory."""
    with warnings.catch_warnings():
        # consolidated metadata is not in the v3 spec yet, and the side directory is not a zarr node
        warnings.filterwarnings("ignore", category=zarr.errors.ZarrUserWarning)
        zarr.consolidate_metadata(str(path))


def draw_arrays(group: zarr.Group) -> dict[str, zarr.Array]:
    """The group's arrays whose dimensions start ``(chain, draw)``, sorted by name (a directory lists them
    in the file system's order)."""
    arrays = sorted(group.arrays(), key=lambda item: item[0])
    return {name: array for name, array in arrays if _dimension_names(array)[:2] == ("chain", "draw")}


def _dimension_names(array: zarr.Array) -> tuple[str | None, ...]:
    # only zarr v3 metadata names dimensions (v2 has no such field); every store is written as v3
    return tuple(getattr(array.metadata, "dimension_names", None) or ())


def open_root(path: Path, mode: Literal["r", "r+", "a", "w", "w-"] = "r+") -> zarr.Group:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=zarr.errors.ZarrUserWarning)
        return zarr.open_group(str(path), mode=mode, zarr_format=3)


def remove_partial_files(path: Path) -> None:
    """Delete temporary files left by writes a crash cut short."""
    for root, _, files in os.walk(path):
        for name in files:
            if name.endswith(".partial"):
                Path(root, name).unlink(missing_ok=True)


def json_safe(value: Any) -> Any:
    """Numbers and strings as plain JSON values for zarr attributes."""
    if hasattr(value, "item"):
        return value.item()
    return value
