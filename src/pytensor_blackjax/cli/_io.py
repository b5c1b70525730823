"""Files in and out of the command line: model files, stored results and the output folder."""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: a command pays for xarray only when it needs it
    import xarray as xr

__all__ = ["UserError", "find_model", "load_model_file", "read_results", "split_model_spec", "write_results"]

DEFAULT_MODEL_NAME = "model"


class UserError(Exception):
    """A mistake the user can fix; the command line prints its message as one line, without traceback."""


def split_model_spec(spec: str) -> tuple[Path, str | None]:
    """``"path/to/file.py:name"`` -> (path, name); the name is optional."""
    path, sep, name = spec.rpartition(":")
    if sep and name.isidentifier() and path:
        return Path(path), name
    return Path(spec), None


def _is_pymc_model(obj: Any) -> bool:
    # Checked by name so that files without PyMC never import it.
    return type(obj).__name__ == "Model" and type(obj).__module__.split(".")[0] == "pymc"


def _is_model(obj: Any) -> bool:
    import pytensor_blackjax as pbj

    return isinstance(obj, pbj.Model | pbj.CompiledModel) or _is_pymc_model(obj)


def _execute(path: Path) -> dict[str, Any]:
    """Run a model file as a fresh module and return its namespace."""
    module_name = f"_pbj_model_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"model file '{path}' cannot be imported: give a Python file such as my_model.py.")
    module = importlib.util.module_from_spec(spec)
    # Let the file import helper modules that sit next to it, as `python my_model.py` would.
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path.resolve()]
        where = f" (line {frames[-1].lineno})" if frames else ""
        raise UserError(f"running model file '{path}' failed{where}: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(str(path.parent.resolve()))
    return vars(module)


def find_model(namespace: dict[str, Any], name: str | None, path: Path) -> Any:
    """The model object named ``name`` (default ``model``) in a model file's namespace."""
    wanted = name or DEFAULT_MODEL_NAME
    candidates = sorted(k for k, v in namespace.items() if not k.startswith("_") and _is_model(v))
    if wanted not in namespace:
        hint = (
            f"; it defines models named {candidates}: use '{path}:{candidates[0]}'"
            if candidates
            else "; create one with pbj.ModelBuilder(...).build() (or a PyMC model) and assign it to "
            f"'{wanted}'"
        )
        raise UserError(f"model file '{path}' defines no variable named '{wanted}'{hint}.")
    obj = namespace[wanted]
    if not _is_model(obj):
        raise UserError(
            f"'{wanted}' in '{path}' is a {type(obj).__name__}, not a model: assign a pbj.Model "
            "(from pbj.ModelBuilder(...).build() or pbj.Model.from_logp) or a PyMC model."
        )
    return obj


def load_model_file(spec: str):
    """``MODEL.py[:NAME]`` -> a `pbj.Model` (PyMC models are translated with ``Model.from_pymc``)."""
    import pytensor_blackjax as pbj

    path, name = split_model_spec(spec)
    if not path.exists():
        raise UserError(
            f"model file '{path}' does not exist; give the path of a Python file that "
            "defines `model`, e.g. pytensor-blackjax run my_model.py"
        )
    if path.is_dir() or path.suffix != ".py":
        raise UserError(f"model file '{path}' is not a Python file; give a .py file that defines `model`.")
    obj = find_model(_execute(path), name, path)
    if _is_pymc_model(obj):
        try:
            return pbj.Model.from_pymc(obj)
        except (ImportError, NotImplementedError) as exc:
            raise UserError(
                f"PyMC models are not supported in this installation ({exc}); "
                "write the model with pbj.ModelBuilder instead."
            ) from exc
    return obj


def read_results(path: str) -> xr.DataTree:
    """Read a ``results.zarr`` written by ``run``/``demo --out`` (or ``DataTree.to_zarr``) into memory."""
    from pytensor_blackjax.store._files import VARIABLE_ORDER_ATTR

    p = Path(path)
    if not p.exists():
        raise UserError(
            f"results '{path}' do not exist; give a results.zarr folder written by "
            "`pytensor-blackjax run ... --out DIR` (DIR/results.zarr)."
        )
    try:
        with warnings.catch_warnings():
            # Stores written elsewhere may lack consolidated metadata; reading them is still fine.
            warnings.simplefilter("ignore", RuntimeWarning)
            # A sample(store=...) folder keeps its run state in _pbj/, which Zarr does not know: not an error.
            warnings.filterwarnings("ignore", message="Object at _pbj is not recognized")
            import xarray as xr

            tree = xr.open_datatree(p, engine="zarr", consolidated=False)
            tree = tree.load()
    except Exception as exc:
        raise UserError(f"'{path}' is not a readable results store ({type(exc).__name__}: {exc}).") from exc
    if "posterior" not in tree.children:
        raise UserError(f"'{path}' holds no posterior group; is it a sampling result?")
    # A store lists its arrays in the file system's order: tables and figures follow the model's order
    # (recorded by pbj.sample(store=...) and by `run --out`), the rest by name.
    names = sorted(str(v) for v in tree["posterior"].data_vars)
    order = [v for v in tree.attrs.get(VARIABLE_ORDER_ATTR, ()) if v in names]
    tree["posterior"] = tree["posterior"].to_dataset()[order + [v for v in names if v not in order]]
    return tree


def write_results(tree: xr.DataTree, out: str, *, console=None) -> list[Path]:
    """Write results.zarr, summary.csv, trace.png and report.html into ``out``; return their paths."""
    from pytensor_blackjax.cli._plots import draw
    from pytensor_blackjax.cli._report import build_report, summary_table
    from pytensor_blackjax.store._files import VARIABLE_ORDER_ATTR

    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out '{out}' is a file; give a folder name (it is created if missing).")
    folder.mkdir(parents=True, exist_ok=True)
    # Consolidated metadata is outside the Zarr v3 format; leaving it out keeps the store portable.
    stored = tree.copy()
    stored.attrs[VARIABLE_ORDER_ATTR] = list(tree["posterior"].data_vars)
    stored.to_zarr(folder / "results.zarr", mode="w", consolidated=False)
    summary_table(tree).to_csv(folder / "summary.csv")
    trace = draw(tree, "trace")
    trace.save(str(folder / "trace.png"))
    (folder / "report.html").write_text(build_report(tree, trace=trace), encoding="utf-8")
    if console is not None and trace.note:
        console.print(f"trace.png: {trace.note}")
    return [folder / n for n in ("results.zarr", "summary.csv", "trace.png", "report.html")]


def display_path(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
