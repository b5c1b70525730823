"""The side files of a current (format 2) store, in ``_pbj/``: nothing in them is a pickle.

* ``run.json``: ``format_version``, the run settings and the sampler config (name and fields), flags,
  and the names of the data overrides;
* ``data.npz``: the data overrides, in that order;
* ``params.npz``: the adapted parameters, written once after warmup;
* ``start.npz``: the chains' starting points, when they were given (``initvals``);
* ``state-<draws>.npz``: the chain state of the last commit (the root record names it).

Arrays are the leaves of their pytree in ``jax.tree.leaves`` order (``.npy`` members record dtype and
shape); the driver rebuilds the pytrees with its own programs' structure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytensor_blackjax._checkpoint import ResumePoint
from pytensor_blackjax.store._files import FORMAT, SIDE_DIR, RootRecord, write_atomic
from pytensor_blackjax.store._formats import (
    arrays_blob,
    config_fields,
    corrupt,
    in_order,
    json_blob,
    numbered,
    read_arrays,
    sampler_to_json,
)

__all__ = [
    "DATA_FILE",
    "PARAMS_FILE",
    "START_FILE",
    "RUN_FILE",
    "read_resume_point",
    "read_run",
    "run_document",
    "state_file",
    "upgrade_legacy",
    "write_run",
]

RUN_FILE = "run.json"
DATA_FILE = "data.npz"
PARAMS_FILE = "params.npz"
START_FILE = "start.npz"


def state_file(num_draws: int) -> str:
    return f"state-{num_draws:09d}.npz"


def run_document(
    sampler: Any, settings: Any, log_likelihood: bool, until: dict | None = None, *, log_prior: bool = False
) -> dict:
    """What ``_pbj/run.json`` holds (`write_run` adds the format version and
    the names of the data overrides). ``until``: the fields of an until-run's targets (None for a
    fixed-length run; stores written before the field existed read as None). ``log_prior``: whether
    results read back get a ``log_prior`` group (computed from the draws, not stored; stores written
    before the field existed read as False)."""
    try:
        sampler_json: Any = sampler_to_json(sampler)
    except TypeError as e:  # a custom sampler: the run goes ahead, resuming it will say why it cannot
        sampler_json = f"not stored ({e})"
    return {
        "settings": config_fields(settings, "settings"),
        "sampler": sampler_json,
        "log_likelihood": bool(log_likelihood),
        "log_prior": bool(log_prior),
        "until": until,
    }


def write_run(path: Path, document: dict, new_data: dict) -> None:
    """Write ``data.npz``, then ``run.json`` (each atomically) before the root record mentions them."""
    names = list(new_data)
    write_atomic(path / SIDE_DIR / DATA_FILE, arrays_blob(numbered("data", [new_data[k] for k in names])))
    document = {"format_version": FORMAT, **document, "new_data": names}
    write_atomic(path / SIDE_DIR / RUN_FILE, json_blob(document))


def read_run(path: Path) -> tuple[dict, dict]:
    """The run document and the data overrides of a current store."""
    file = path / SIDE_DIR / RUN_FILE
    try:
        document = json.loads(file.read_text())
    except FileNotFoundError:
        raise corrupt(path, f"{SIDE_DIR}/{RUN_FILE} is missing") from None
    except (OSError, ValueError) as e:
        raise corrupt(path, f"{SIDE_DIR}/{RUN_FILE} cannot be read ({type(e).__name__}: {e})") from None
    if not isinstance(document, dict) or document.get("format_version") != FORMAT:
        version = document.get("format_version") if isinstance(document, dict) else None
        raise corrupt(path, f"{SIDE_DIR}/{RUN_FILE} has format_version {version!r}, expected {FORMAT}")
    arrays = read_arrays(path, path / SIDE_DIR / DATA_FILE)
    names = document.get("new_data", [])
    values = in_order(arrays, "data")
    if len(values) != len(names):
        raise corrupt(path, f"{SIDE_DIR}/{DATA_FILE} holds {len(values)} arrays for the data {names}")
    return document, dict(zip(names, values, strict=True))


def read_resume_point(path: Path, attrs: dict) -> ResumePoint | None:
    """Where the run continues, from the root record's status and the side files it names; None when
    the store is complete.

    Raises:
        StoreError: an unknown status, or a missing or damaged state or parameter file.
    """
    status = attrs.get("status")
    if status == "complete":
        return None
    if status == "warmup":
        given = attrs.get("start_points") == START_FILE
        start = read_arrays(path, path / SIDE_DIR / START_FILE)["start"] if given else None
        return ResumePoint(phase="warmup", start_points=start)
    if status != "sampling":
        raise corrupt(path, f"unknown status {status!r}")
    if not attrs.get("state_file"):
        raise corrupt(path, "status is 'sampling' but no state_file is recorded")
    state = read_arrays(path, path / SIDE_DIR / attrs["state_file"])
    params = read_arrays(path, path / SIDE_DIR / PARAMS_FILE)
    return ResumePoint(
        phase="sampling",
        num_draws=int(attrs.get("num_draws_completed", 0)),
        layout=attrs.get("chain_method_used"),
        state_leaves=in_order(state, "state"),
        params_leaves=in_order(params, "params"),
    )


def upgrade_legacy(path: Path, document: dict, new_data: dict, resume: ResumePoint) -> None:
    """Rewrite a format-1 store's side files in the current format before the store is written to
    again. Crash-safe: the root record, switched last, points to the old files until then."""
    write_run(path, document, new_data)
    state_attrs = {}
    if resume.phase == "sampling":
        write_atomic(path / SIDE_DIR / PARAMS_FILE, arrays_blob(numbered("params", resume.params_leaves)))
        name = state_file(resume.num_draws)
        write_atomic(path / SIDE_DIR / name, arrays_blob(numbered("state", resume.state_leaves)))
        state_attrs = {"state_file": name, "chain_method_used": resume.layout}
    RootRecord(path).update({"pbj_store_format": FORMAT, **state_attrs})
    for old in (path / SIDE_DIR).glob("*.pkl"):
        if old.name != "model.pkl":
            old.unlink(missing_ok=True)
