"""Reading a posteriordb folder: reference draws, and reference names -> our posterior arrays."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["load_reference", "parse_name", "posterior_folders", "select"]

_INDEXED = re.compile(r"^(?P<base>[A-Za-z_][A-Za-z0-9_.]*)\[(?P<index>[0-9, ]+)\]$")


def parse_name(name: str) -> tuple[str, tuple[int, ...]]:
    """``"theta[1]"`` -> ``("theta", (0,))``; ``"L[2,1]"`` -> ``("L", (1, 0))``; ``"mu"`` -> ``("mu", ())``.

    Raises:
        ValueError: a name that is neither bare nor 1-based indexed.
    """
    match = _INDEXED.match(name)
    if match is None:
        if "[" in name or "]" in name:
            raise ValueError(f"reference name {name!r} is not of the form base[i] or base[i,j] (1-based).")
        return name, ()
    index = tuple(int(i) - 1 for i in match["index"].split(","))
    if min(index) < 0:
        raise ValueError(f"reference name {name!r}: indices are 1-based, so 0 is not allowed.")
    return match["base"], index


def load_reference(folder: Path) -> dict[str, np.ndarray]:
    """Reference draws of one posterior folder: name -> array ``(chain, draw)``.

    Raises:
        FileNotFoundError: no reference_draws.json in ``folder``.
        ValueError: chains of different lengths or keys.
    """
    path = Path(folder) / "reference_draws.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; each posterior folder needs reference_draws.json.")
    with path.open() as f:
        chains = json.load(f)
    keys = list(chains[0])
    if any(list(chain) != keys for chain in chains):
        raise ValueError(f"{path}: every chain must hold the same parameters in the same order.")
    try:
        return {k: np.asarray([chain[k] for chain in chains], dtype=np.float64) for k in keys}
    except ValueError as err:
        raise ValueError(f"{path}: chains of different lengths ({err}).") from None


def select(posterior: xr.DataTree | xr.Dataset, name: str) -> np.ndarray | None:
    """Our draws ``(chain, draw)`` of reference parameter ``name``, or None when we do not report it."""
    base, index = parse_name(name)
    if base not in posterior.data_vars:
        return None
    values = np.asarray(posterior[base].values)
    if values.ndim != 2 + len(index) or any(i >= n for i, n in zip(index, values.shape[2:], strict=True)):
        return None
    key: tuple[slice | int, ...] = (slice(None), slice(None), *index)
    return values[key]


def posterior_folders(path: Path) -> list[Path]:
    """The posterior folders under ``path`` (or ``path`` itself when it is one), sorted by name.

    Raises:
        FileNotFoundError: ``path`` does not exist or holds no posterior folder.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; give a posteriordb folder such as ../shared/posteriordb."
        )
    if (path / "reference_draws.json").is_file():
        return [path]
    folders = sorted(p for p in path.iterdir() if p.is_dir() and (p / "reference_draws.json").is_file())
    if not folders:
        raise FileNotFoundError(
            f"{path} holds no posterior folder (a folder with data.json and reference_draws.json); "
            "give the posteriordb folder itself."
        )
    return folders
