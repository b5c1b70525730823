"""Low-level file work for a store: atomic side files, write and space checks, the root commit record."""

from __future__ import annotations

import errno
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import zarr

__all__ = [
    "FORMAT",
    "SIDE_DIR",
    "check_free_space",
    "check_writable",
    "consolidate",
    "open_root",
    "remove_partial_files",
    "write_atomic",
]

FORMAT = 1  # bump when the layout changes; resume refuses other versions
SIDE_DIR = "_pbj"  # model, run settings and chain states: files xarray does not read


def write_atomic(path: Path, blob: bytes) -> None:
    """Write ``blob`` to ``path`` so that a crash leaves either the old file or the whole new one."""
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
            e.errno, f"cannot write to store {str(path)!r}: {e.strerror or e}. Choose a writable location "
            "for store= (a local directory you own with free space)."
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


def open_root(path: Path, mode: str = "r+") -> zarr.Group:
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
