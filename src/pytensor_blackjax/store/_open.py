"""Opening a store: a new one for ``sample(store=...)``, or an interrupted one for ``resume``."""

from __future__ import annotations

import dataclasses
import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
import zarr

from pytensor_blackjax._checkpoint import ResumePoint
from pytensor_blackjax.compile import CompiledModel, compile
from pytensor_blackjax.model import Model
from pytensor_blackjax.results import make_datatree
from pytensor_blackjax.store._files import (
    FORMAT,
    SIDE_DIR,
    RootRecord,
    check_free_space,
    check_writable,
    consolidate,
    open_root,
    remove_partial_files,
    write_atomic,
)
from pytensor_blackjax.store._model_io import dump_model, fingerprint
from pytensor_blackjax.store._sink import DRAW_GROUPS, StoreSink, writer_record

__all__ = ["StoreError", "StoredRun", "open_new", "open_stored"]

STATS_BYTES_PER_DRAW = 16 * 8  # a generous bound on one draw's sample stats


def _estimate_bytes(compiled: CompiledModel, settings, log_likelihood: bool) -> int:
    per_draw = STATS_BYTES_PER_DRAW
    for name, shape in compiled.output_shapes.items():
        itemsize = np.dtype(compiled.output_dtypes.get(name, "f8")).itemsize
        per_draw += int(np.prod(shape, dtype=np.int64)) * itemsize
    if log_likelihood:
        per_draw += 8 * sum(int(np.prod(s, dtype=np.int64)) for s in compiled.loglik_shapes.values())
    return per_draw * settings.chains * settings.draws


def open_new(
    store: str | Path,
    compiled: CompiledModel,
    sampler,
    settings,
    new_data: dict,
    *,
    log_likelihood: bool = False,
) -> StoreSink:
    """Create the store, write the model and settings, and return the sink for the driver.

    Raises:
        FileExistsError: something is already at ``store``.
        OSError: the location is not writable or its disk is too small for the run.
    """
    path = Path(store).expanduser()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(
            f"store {str(path)!r} already exists; continue an interrupted run with "
            f"pbj.resume({str(path)!r}), or delete it / pass a new path to start again."
        )
    check_writable(path)
    check_free_space(path, _estimate_bytes(compiled, settings, log_likelihood))
    model = compiled.model
    try:
        write_atomic(path / SIDE_DIR / "model.pkl", dump_model(model))
        model_note = "stored"
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        model_note = f"not stored ({type(e).__name__}: {e}); pass model= to pbj.resume"
    run = {"sampler": sampler, "settings": settings, "new_data": new_data, "log_likelihood": log_likelihood}
    write_atomic(path / SIDE_DIR / "run.pkl", pickle.dumps(run, protocol=pickle.HIGHEST_PROTOCOL))
    root = open_root(path, mode="a")
    data_now = {**compiled.default_data, **new_data}
    for kind, group in (("observed", "observed_data"), ("constant", "constant_data")):
        values = {k: data_now[k] for k, d in model.data.items() if d.kind == kind}
        if values:
            tree = make_datatree({}, dims=model.dims, coords=model.coords, **{kind: values})
            tree[group].to_dataset().to_zarr(
                str(path), group=group, mode="w", zarr_format=3, consolidated=False
            )
    del root  # its zarr.json exists now; the attributes go in with one write
    RootRecord(path).update(
        {
            "pbj_store_format": FORMAT,
            "status": "warmup",
            "num_draws_completed": 0,
            "state_file": None,
            "model": model.name,
            "model_fingerprint": fingerprint(model),
            "model_copy": model_note,
            "sampler": sampler.name,
            "sampler_config": repr(sampler),
            **writer_record(),
            **{k: v for k, v in dataclasses.asdict(settings).items()},
        }
    )
    consolidate(path)
    groups = DRAW_GROUPS if log_likelihood else DRAW_GROUPS[:2]
    return StoreSink(path, model=model, settings=settings, groups=groups)


class StoreError(ValueError):
    """A store that cannot be resumed: corrupt, or written by another model."""


@dataclass
class StoredRun:
    """An interrupted run read back from its store, ready for the driver."""

    path: Path
    compiled: CompiledModel
    sampler: Any
    settings: Any
    new_data: dict
    log_likelihood: bool
    resume_point: ResumePoint | None  # None: warmup starts again from the beginning
    complete: bool = False  # every draw is in: nothing to sample, only to read back
    chain_method_used: str = ""

    def sink(self) -> StoreSink:
        groups = DRAW_GROUPS if self.log_likelihood else DRAW_GROUPS[:2]
        return StoreSink(self.path, model=self.compiled.model, settings=self.settings, groups=groups)

    def read_draws(self, num_draws: int) -> dict[str, dict[str, np.ndarray]]:
        """Every committed draw, ``(chain, draw, ...)`` by group."""
        out = {}
        for group in DRAW_GROUPS:
            if (self.path / group / "zarr.json").exists():
                arrays = zarr.open_group(str(self.path), path=group, mode="r", use_consolidated=False)
                out[group] = {
                    name: np.asarray(arrays[name][:, :num_draws])
                    for name in arrays.array_keys()
                    if tuple(arrays[name].metadata.dimension_names or ())[:2] == ("chain", "draw")
                }
        return out


def _corrupt(path: Path, why: str) -> StoreError:
    return StoreError(
        f"store {str(path)!r} is corrupt or not a pytensor-blackjax store: {why}. It cannot be resumed; "
        "start again with pbj.sample(..., store=a new path)."
    )


def _read_side(path: Path, name: str) -> Any:
    try:
        return pickle.loads((path / SIDE_DIR / name).read_bytes())
    except FileNotFoundError:
        raise _corrupt(path, f"{SIDE_DIR}/{name} is missing") from None
    except Exception as e:  # noqa: BLE001 - unpickling damaged bytes can raise almost anything
        raise _corrupt(path, f"{SIDE_DIR}/{name} cannot be read ({type(e).__name__}: {e})") from None


def _root_attrs(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(
            f"store {str(path)!r} does not exist; check the path (pbj.resume continues a run started with "
            "pbj.sample(..., store=path))."
        )
    meta = path / "zarr.json"
    if not path.is_dir() or not meta.exists():
        raise _corrupt(path, "no zarr.json at its root")
    try:
        attrs = json.loads(meta.read_text()).get("attributes", {})
    except PermissionError as e:
        raise PermissionError(
            e.errno, f"store {str(path)!r} cannot be read: {e.strerror}; check its permissions."
        ) from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _corrupt(path, f"zarr.json is not valid JSON ({e})") from None
    if attrs.get("pbj_store_format") != FORMAT:
        raise _corrupt(path, f"pbj_store_format is {attrs.get('pbj_store_format')!r}, expected {FORMAT}")
    return attrs


def _model_for(path: Path, attrs: dict, model: Model | CompiledModel | None) -> CompiledModel:
    if model is None:
        if not (path / SIDE_DIR / "model.pkl").exists():
            raise StoreError(
                f"store {str(path)!r} holds no copy of its model ({attrs.get('model_copy')}); pass it: "
                f"pbj.resume({str(path)!r}, model=...)."
            )
        model = _read_side(path, "model.pkl")
        if not isinstance(model, Model):
            raise _corrupt(path, "model.pkl does not hold a pbj.Model")
        origin = "the model stored in it"
    else:
        origin = "the model given"
    compiled = model if isinstance(model, CompiledModel) else compile(model)
    if fingerprint(compiled.model) != attrs.get("model_fingerprint"):
        raise StoreError(
            f"store {str(path)!r} was written by a different model than {origin} (the graphs or data "
            "differ); resume with the model that started the run, or start a new run with "
            "pbj.sample(..., store=...)."
        )
    return compiled


def _truncate(path: Path, num_draws: int, chunk: int) -> None:
    """Delete Zarr chunks past the last commit; the draws in them are made again, identically."""
    remove_partial_files(path)
    first_stale = -(-num_draws // chunk)
    changed = False
    for group in DRAW_GROUPS:
        gdir = path / group
        if not gdir.is_dir():
            continue
        if num_draws == 0:
            shutil.rmtree(gdir)
            changed = True
            continue
        for var in gdir.iterdir():
            # chunk keys are c/<chain block>/<draw block>/...: one chain block holds every chain
            draw_blocks = var / "c" / "0"
            if draw_blocks.is_dir():
                for block in draw_blocks.iterdir():
                    if block.name.isdigit() and int(block.name) >= first_stale:
                        shutil.rmtree(block) if block.is_dir() else block.unlink()
    if changed or not num_draws:  # also when a crash came before the first consolidation
        consolidate(path)


def open_stored(store: str | Path, model: Model | CompiledModel | None = None) -> StoredRun:
    """Validate an interrupted store, drop anything past its last commit, and load its chain state.

    Raises:
        FileNotFoundError: nothing at ``store``.
        StoreError: corrupt, or written by a different model.
    """
    path = Path(store).expanduser()
    attrs = _root_attrs(path)
    run = _read_side(path, "run.pkl")
    compiled = _model_for(path, attrs, model)
    settings = run["settings"]
    if attrs.get("status") == "complete":
        # e.g. killed after the last commit but before sample() returned: the draws are all there
        return StoredRun(
            path,
            compiled,
            run["sampler"],
            settings,
            run["new_data"],
            run["log_likelihood"],
            None,
            complete=True,
            chain_method_used=str(attrs.get("chain_method_used", "")),
        )
    num_draws = int(attrs.get("num_draws_completed", 0))
    resume_point = None
    if attrs.get("status") == "sampling":
        if not attrs.get("state_file"):
            raise _corrupt(path, "status is 'sampling' but no state_file is recorded")
        carry = _read_side(path, attrs["state_file"])
        params = _read_side(path, "params.pkl")
        resume_point = ResumePoint(
            phase="sampling",
            num_draws=num_draws,
            layout=params["method"],
            state_leaves=tuple(jax.tree.leaves(carry)),
            params_leaves=tuple(jax.tree.leaves(params["params"])),
        )
        # the same chain method as before, whatever the core count now: the carry's layout depends on it
        method = {"threaded": "parallel", "vectorized": "vectorized"}.get(
            params["method"], settings.chain_method
        )
        settings = dataclasses.replace(settings, chain_method=method)
    elif attrs.get("status") != "warmup":
        raise _corrupt(path, f"unknown status {attrs.get('status')!r}")
    else:
        num_draws = 0
    check_writable(path)
    _truncate(path, num_draws, settings.chunk)
    RootRecord(path).update(writer_record())  # this process continues the run (for watchers)
    return StoredRun(
        path, compiled, run["sampler"], settings, run["new_data"], run["log_likelihood"], resume_point
    )
