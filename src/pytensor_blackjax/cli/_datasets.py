"""Data sets for ``run-many``: a folder of ``.npz`` files (one per fit) or a table with a ``fit`` column."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from pytensor_blackjax.cli._io import UserError

__all__ = ["read_datasets"]

TABLE_SUFFIXES = (".csv", ".parquet")


def read_datasets(source: str, declared: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """label -> data dict, in a stable order (file names / first appearance of each ``fit``).

    Args:
        source: a folder of ``NAME.npz`` files (their arrays named as the model's data; the file stem is
            the fit's label), or a ``.csv``/``.parquet`` table whose ``fit`` column says which fit each
            row belongs to and whose other columns are 1-d data of the model.
        declared: the model's data (name -> default value), to check the names up front.
    """
    path = Path(source)
    if not path.exists():
        raise UserError(
            f"data sets '{source}' do not exist; give a folder of .npz files or a .csv/.parquet table."
        )
    sets = _from_folder(path) if path.is_dir() else _from_table(path)
    if not sets:
        raise UserError(f"'{source}' holds no data sets; put one NAME.npz per fit in the folder.")
    for label, data in sets.items():
        unknown = sorted(set(data) - set(declared))
        if unknown:
            raise UserError(
                f"data set {label!r} has {unknown}, which the model does not declare; its data are "
                f"{sorted(declared) or 'none'} (declare data with ModelBuilder.data or pm.Data)."
            )
    return sets


def _from_folder(path: Path) -> dict[str, dict[str, np.ndarray]]:
    sets = {}
    for file in sorted(path.glob("*.npz")):
        with np.load(file, allow_pickle=False) as arrays:
            sets[file.stem] = {name: arrays[name] for name in arrays.files}
    return sets


def _from_table(path: Path) -> dict[str, dict[str, np.ndarray]]:
    import pandas as pd

    if path.suffix == ".csv":
        table = pd.read_csv(path)
    elif path.suffix == ".parquet":
        try:
            table = pd.read_parquet(path)
        except ImportError as exc:
            raise UserError(f"reading '{path}' needs a Parquet engine: pip install pyarrow ({exc}).") from exc
    else:
        raise UserError(
            f"'{path}' is neither a folder of .npz files nor a table ({', '.join(TABLE_SUFFIXES)})."
        )
    if "fit" not in table.columns:
        raise UserError(
            f"table '{path}' has no 'fit' column (columns: {list(table.columns)}); add one naming the fit "
            "each row belongs to."
        )
    columns = [c for c in table.columns if c != "fit"]
    return {
        str(label): {c: rows[c].to_numpy() for c in columns}
        for label, rows in table.groupby("fit", sort=False)
    }
