"""Opening a store: a new one for ``sample(store=...)``, or an interrupted one for ``resume``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from pytensor_blackjax._checkpoint import ResumePoint
from pytensor_blackjax.compile import CompiledModel, compile
from pytensor_blackjax.model import Model
from pytensor_blackjax.results import make_datatree
from pytensor_blackjax.store._files import (
    FORMAT,
    SIDE_DIR,
    VARIABLE_ORDER_ATTR,
    RootRecord,
    check_free_space,
    check_writable,
    consolidate,
    draw_arrays,
    open_root,
    remove_partial_files,
    write_atomic,
)
from pytensor_blackjax.store._formats import StoreError, config_fields, corrupt, rebuild, sampler_from_json
from pytensor_blackjax.store._legacy import LEGACY_FORMAT, read_legacy
from pytensor_blackjax.store._model_io import dump_model, fingerprint
from pytensor_blackjax.store._side import read_resume_point, read_run, run_document, upgrade_legacy, write_run
from pytensor_blackjax.store._sink import DRAW_GROUPS, StoreSink, draw_groups, writer_record

__all__ = ["StoreError", "StoredRun", "open_new", "open_stored", "reopen_for_more"]

STATS_BYTES_PER_DRAW = 16 * 8  # a generous bound on one draw's sample stats


def _estimate_bytes(compiled: CompiledModel, settings, log_likelihood: bool, draws: int) -> int:
    per_draw = STATS_BYTES_PER_DRAW
    for name, shape in compiled.output_shapes.items():
        itemsize = np.dtype(compiled.output_dtypes.get(name, "f8")).itemsize
        per_draw += int(np.prod(shape, dtype=np.int64)) * itemsize
    if log_likelihood:
        per_draw += 8 * sum(int(np.prod(s, dtype=np.int64)) for s in compiled.loglik_shapes.values())
    if getattr(settings, "include_unconstrained", False):
        per_draw += 8 * compiled.num_dims
    return per_draw * settings.chains * draws


def _first_allocation(settings, until) -> int:
    """Draws the store is made for at first: all of a fixed-length run's, ten chunks of an until-run's
    (whose arrays grow; its cap is not a size)."""
    return settings.draws if until is None else min(settings.draws, 10 * settings.chunk)


def open_new(
    store: str | Path,
    compiled: CompiledModel,
    sampler,
    settings,
    new_data: dict,
    *,
    log_likelihood: bool = False,
    log_prior: bool = False,
    until: Any = None,
) -> StoreSink:
    """Create the store, write the model and settings, and return the sink for the driver.

    ``until``: an until-run's targets (an object with ``to_json``), kept in ``run.json`` so that
    ``resume`` keeps checking them.

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
    first = _first_allocation(settings, until)
    check_free_space(path, _estimate_bytes(compiled, settings, log_likelihood, first))
    model = compiled.model
    model_attrs: dict[str, Any] = {}
    try:
        blob = dump_model(model)
        write_atomic(path / SIDE_DIR / "model.pkl", blob)
        model_attrs = {"model_copy": "stored", "model_copy_sha256": hashlib.sha256(blob).hexdigest()}
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        model_attrs = {"model_copy": f"not stored ({type(e).__name__}: {e}); pass model= to pbj.resume"}
    until_json = None if until is None else until.to_json()
    write_run(
        path, run_document(sampler, settings, log_likelihood, until_json, log_prior=log_prior), new_data
    )
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
            **model_attrs,
            VARIABLE_ORDER_ATTR: list(compiled.output_shapes),
            "sampler": sampler.name,
            "sampler_config": repr(sampler),
            **writer_record(),
            **config_fields(settings, "settings"),
        }
    )
    consolidate(path)
    groups = draw_groups(log_likelihood, bool(getattr(settings, "include_unconstrained", False)))
    return StoreSink(path, model=model, settings=settings, groups=groups, grow=until is not None)


@dataclass
class StoredRun:
    """An interrupted run read back from its store, ready for the driver.

    ``settings`` is the stored run settings rebuilt as the ``settings_type`` given to `open_stored`;
    ``resume_point`` is None for a complete store.
    """

    path: Path
    compiled: CompiledModel
    sampler: Any
    settings: Any
    new_data: dict
    log_likelihood: bool
    resume_point: ResumePoint | None
    complete: bool = False  # every draw is in: nothing to sample, only to read back
    chain_method_used: str = ""
    until: dict | None = None  # an until-run's targets (`Until` fields), None for a fixed length
    num_draws: int = 0  # draws per chain committed
    log_prior: bool = False  # results read back get a log_prior group (computed, never stored)

    def sink(self) -> StoreSink:
        groups = draw_groups(
            self.log_likelihood, bool(getattr(self.settings, "include_unconstrained", False))
        )
        # an until-run's arrays start small (an extended run's exist; both grow when a chunk needs it)
        model, grow = self.compiled.model, self.until is not None
        return StoreSink(self.path, model=model, settings=self.settings, groups=groups, grow=grow)

    def read_draws(self, num_draws: int) -> dict[str, dict[str, np.ndarray]]:
        """Every committed draw, ``(chain, draw, ...)`` by group."""
        out = {}
        for group in DRAW_GROUPS:
            if (self.path / group / "zarr.json").exists():
                arrays = zarr.open_group(str(self.path), path=group, mode="r", use_consolidated=False)
                out[group] = {
                    name: np.asarray(array[:, :num_draws]) for name, array in draw_arrays(arrays).items()
                }
        return out


# -- the root record and the model ---------------------------------------------------------------------
def _root_attrs(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(
            f"store {str(path)!r} does not exist; check the path (pbj.resume continues a run started with "
            "pbj.sample(..., store=path))."
        )
    meta = path / "zarr.json"
    if path.is_dir() and not meta.exists() and (path / ".zgroup").exists():
        raise _not_a_run_store(path, "Zarr v2 data")
    if not path.is_dir() or not meta.exists():
        raise corrupt(path, "no zarr.json at its root")
    try:
        attrs = json.loads(meta.read_text()).get("attributes", {})
    except PermissionError as e:
        raise PermissionError(
            e.errno, f"store {str(path)!r} cannot be read: {e.strerror}; check its permissions."
        ) from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise corrupt(path, f"zarr.json is not valid JSON ({e})") from None
    version = attrs.get("pbj_store_format")
    if isinstance(version, int) and version > FORMAT:
        raise StoreError(
            f"store {str(path)!r} has format {version}, newer than this release reads (formats "
            f"{LEGACY_FORMAT}-{FORMAT}); resume it with the release that wrote it (or a newer one)."
        )
    if (
        version is None
        and not (path / SIDE_DIR).exists()  # a run store that lost its attributes is corrupt
        and any((path / group / "zarr.json").exists() for group in DRAW_GROUPS)
    ):
        raise _not_a_run_store(
            path, "results written by `pytensor-blackjax run --out` or DataTree.to_zarr", results=True
        )
    if version not in (LEGACY_FORMAT, FORMAT):
        raise corrupt(path, f"pbj_store_format is {version!r}, expected {FORMAT}")
    return attrs


def _not_a_run_store(path: Path, kind: str, *, results: bool = False) -> StoreError:
    """A Zarr folder of another kind: nothing is wrong with it, it is just not a run's store."""
    read = (
        " it can be read (xarray.open_datatree, pytensor-blackjax summary or report) but not resumed or "
        "extended."
        if results
        else " it cannot be resumed or extended."
    )
    return StoreError(
        f"'{path}' holds {kind}, not the store of a run (pbj.sample(..., store=path), or --store on the "
        f"command line):{read} To continue a run later, sample it with store=PATH (--store PATH) and "
        "resume or extend that store."
    )


def _stored_model(path: Path, attrs: dict) -> Model:
    """The model copy: a pickle (see `_model_io`), checked against the hash recorded when it was written
    (stores of format 1 recorded none); the caller then compares its fingerprint."""
    file = path / SIDE_DIR / "model.pkl"
    if not file.exists():
        raise StoreError(
            f"store {str(path)!r} holds no copy of its model ({attrs.get('model_copy')}); pass it: "
            f"pbj.resume({str(path)!r}, model=...)."
        )
    blob = file.read_bytes()
    expected = attrs.get("model_copy_sha256")
    if expected is not None and hashlib.sha256(blob).hexdigest() != expected:
        raise corrupt(path, f"{SIDE_DIR}/model.pkl does not match the hash recorded when it was written")
    try:
        model = pickle.loads(blob)
    except Exception as e:  # noqa: BLE001 - unpickling damaged bytes can raise almost anything
        raise corrupt(path, f"{SIDE_DIR}/model.pkl cannot be read ({type(e).__name__}: {e})") from None
    if not isinstance(model, Model):
        raise corrupt(path, "model.pkl does not hold a pbj.Model")
    return model


def _model_for(path: Path, attrs: dict, model: Model | CompiledModel | None) -> CompiledModel:
    origin = "the model given"
    if model is None:
        model, origin = _stored_model(path, attrs), "the model stored in it"
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


def open_stored(
    store: str | Path, model: Model | CompiledModel | None = None, *, settings_type: type
) -> StoredRun:
    """Validate an interrupted store, drop anything past its last commit, and load its chain state.

    A store of format 1 (settings and chain state pickled) is read by `_legacy` and, unless complete,
    rewritten in the current format before anything else is written to it.

    Args:
        store: the store's path.
        model: the model that started the run; by default the copy kept in the store.
        settings_type: the frozen dataclass the stored run settings are rebuilt as (the driver's
            ``RunSettings``; the store does not import the driver).

    Raises:
        FileNotFoundError: nothing at ``store``.
        StoreError: corrupt, written by a different model, or holding a sampler config or settings this
            release cannot rebuild (the message names the fields).
    """
    path = Path(store).expanduser()
    attrs = _root_attrs(path)
    legacy = attrs["pbj_store_format"] == LEGACY_FORMAT
    if legacy:
        document, new_data, resume_point = read_legacy(path, attrs)
    else:
        document, new_data = read_run(path)
        resume_point = read_resume_point(path, attrs)
    sampler = sampler_from_json(document.get("sampler"), path)
    # a settings field added since the store was written takes its default, which must mean "as before"
    settings = rebuild(settings_type, document.get("settings", {}), path, "run settings", allow_defaults=True)
    log_likelihood = bool(document.get("log_likelihood", False))
    log_prior = bool(document.get("log_prior", False))
    until = document.get("until")
    num_draws = int(attrs.get("num_draws_completed", 0))
    compiled = _model_for(path, attrs, model)
    run = StoredRun(
        path, compiled, sampler, settings, new_data, log_likelihood, None, until=until, num_draws=num_draws,
        log_prior=log_prior,
    )  # fmt: skip
    if resume_point is None:
        # e.g. killed after the last commit but before sample() returned: the draws are all there
        return dataclasses.replace(
            run, complete=True, chain_method_used=str(attrs.get("chain_method_used", ""))
        )
    check_writable(path)
    if legacy:
        upgrade_legacy(path, document, new_data, resume_point)
    _truncate(path, resume_point.num_draws, settings.chunk)
    RootRecord(path).update(writer_record())  # this process continues the run (for watchers)
    return dataclasses.replace(run, resume_point=resume_point)


def reopen_for_more(store: str | Path, *, settings_type: type, more, until: dict | None) -> None:
    """Turn a complete store into one that `open_stored` continues: new settings (``more(settings,
    draws done)``) and targets in ``run.json``, then - last, so that a crash in between leaves the
    complete store as it was - status "sampling" in the root record.

    Raises:
        FileNotFoundError: nothing at ``store``.
        StoreError: a store of format 1, or one that is corrupt.
        ValueError: the store is not complete (continue it with ``pbj.resume`` first).
    """
    path = Path(store).expanduser()
    attrs = _root_attrs(path)
    if attrs["pbj_store_format"] == LEGACY_FORMAT:
        raise StoreError(
            f"store {str(path)!r} was written by an older release (format 1) and cannot be "
            f"extended; read it with pbj.resume({str(path)!r}) and sample a new run."
        )
    if attrs.get("status") != "complete":
        raise ValueError(
            f"store {str(path)!r} is not complete (status {attrs.get('status')!r}): finish it "
            f"with pbj.resume({str(path)!r}) first, then extend it."
        )
    if not attrs.get("state_file"):
        raise corrupt(path, "it is complete but records no chain state to continue from")
    check_writable(path)
    document, new_data = read_run(path)
    settings = rebuild(settings_type, document.get("settings", {}), path, "run settings", allow_defaults=True)
    longer = more(settings, int(attrs["num_draws_completed"]))
    document = {**document, "settings": config_fields(longer, "settings"), "until": until}
    document.pop("format_version", None)
    document.pop("new_data", None)
    write_run(path, document, new_data)
    RootRecord(path).update({"status": "sampling", "extended": True, **writer_record()})
