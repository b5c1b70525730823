"""Building the ArviZ 1.x result: an ``xarray.DataTree`` with posterior, sample_stats and data groups."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.indexes import PandasIndex

__all__ = ["library_versions", "make_datatree"]

# dtype kinds xarray converts on its own path (object, datetime, timedelta): values of these kinds are
# handed to it as given; others are built directly, without its duck-array checks
_XARRAY_CONVERTS = "OMm"

_LIBRARIES = ("pytensor-blackjax", "pytensor", "jax", "blackjax", "arviz-base", "xarray", "numpy")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a result depends on (a fresh dict each call)."""
    return dict(_versions())


@cache
def _versions() -> dict[str, str]:
    # read once per process: each lookup parses a package's metadata file (about 1 ms apiece, 21 per
    # result - a third of the fixed cost of sampling a tiny model)
    out = {}
    for lib in _LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "not installed"
    return out


def _dims_for(name: str, ndim: int, dims: Mapping[str, Sequence[str]]) -> list[str]:
    given = list(dims.get(name, ()))
    if len(given) == ndim:
        return given
    return [f"{name}_dim_{i}" for i in range(ndim)]


def _variable(dims: Sequence[str], values: Any) -> xr.Variable | tuple:
    """An ``xarray.Variable`` of a NumPy array, built without xarray's duck-array checks where they
    cannot change anything: for arrays that are plain NumPy here, they import ``dask.array`` when dask
    is installed (0.1 s of CPU after a run's own imports, 0.3 s alone). Object, datetime and timedelta
    arrays take xarray's usual path, which converts them."""
    array = np.asarray(values)
    if array.dtype.kind in _XARRAY_CONVERTS:
        return (tuple(dims), values)
    return xr.Variable(tuple(dims), array, fastpath=True)


def _coordinates(values: Mapping[str, Any]) -> xr.Coordinates:
    """Dimension coordinates (dimension -> values) with the pandas indexes xarray would make of them,
    made directly: xarray's own path checks every value array for dask, which imports ``dask`` when it
    is installed (0.2 s of a warm run, after the draws). Object, datetime and timedelta values take
    xarray's usual path, which converts them."""
    variables: dict[Hashable, xr.Variable] = {}
    indexes: dict[Hashable, xr.Index] = {}
    for dim, given in values.items():
        array = np.asarray(given)
        if array.dtype.kind in _XARRAY_CONVERTS:
            made = xr.Coordinates({dim: ((dim,), given)})
            variables.update(made.variables)
            indexes.update(made.xindexes)
        else:
            index = PandasIndex(pd.Index(array), dim, coord_dtype=array.dtype)
            variables.update(index.create_variables())
            indexes[dim] = index
    return xr.Coordinates(variables, indexes)


def _dataset(
    values: Mapping[str, np.ndarray],
    dims: Mapping[str, Sequence[str]],
    coords: Mapping[str, Sequence[Any]],
    sample_dims: Sequence[str],
    attrs: dict,
) -> xr.Dataset:
    data_vars: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    used: dict[str, list[Any]] = {}
    for name, array in values.items():
        array = np.asarray(array)
        var_dims = [*sample_dims, *_dims_for(name, array.ndim - len(sample_dims), dims)]
        data_vars[name] = _variable(var_dims, array)
        for d, n in zip(var_dims, array.shape, strict=True):
            sizes.setdefault(d, n)
            if d in coords and len(coords[d]) == n:
                used[d] = list(coords[d])
    indexes: dict[str, Any] = {d: np.arange(sizes[d]) for d in sample_dims if d in sizes}
    indexes.update(used)
    return xr.Dataset(data_vars, coords=_coordinates(indexes), attrs=attrs)


def make_datatree(
    groups: Mapping[str, Mapping[str, np.ndarray]],
    *,
    dims: Mapping[str, Sequence[str]] | None = None,
    coords: Mapping[str, Sequence[Any]] | None = None,
    observed: Mapping[str, np.ndarray] | None = None,
    constant: Mapping[str, np.ndarray] | None = None,
    attrs: dict | None = None,
) -> xr.DataTree:
    """``(chain, draw, ...)`` arrays by group name -> DataTree following ArviZ's conventions."""
    dims, coords = dims or {}, coords or {}
    created = datetime.now(UTC).isoformat(timespec="seconds")
    base_attrs = {
        "created_at": created,
        "inference_library": "blackjax",
        "inference_library_version": library_versions()["blackjax"],
        "creation_library": "pytensor-blackjax",
        "creation_library_version": library_versions()["pytensor-blackjax"],
    }
    children = {}
    for group, values in groups.items():
        if values:
            children[group] = _dataset(values, dims, coords, ("chain", "draw"), dict(base_attrs))
    for group, data in (("observed_data", observed), ("constant_data", constant)):
        if data:
            children[group] = _dataset(data, dims, coords, (), dict(base_attrs))
    tree = xr.DataTree.from_dict({f"/{k}": v for k, v in children.items()})
    tree.attrs.update(attrs or {})
    return tree
