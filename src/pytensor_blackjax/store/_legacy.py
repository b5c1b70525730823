"""Stores written before format 2 (``pbj_store_format: 1``), whose run settings, sampler and chain state
were pickles. The only place that unpickles anything but the model copy, and only for stores whose root
record says they are that old; everything read is turned into the current form at once: configs into
JSON field maps, chain state and parameters into their leaves."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import jax

from pytensor_blackjax._checkpoint import ResumePoint
from pytensor_blackjax.store._files import SIDE_DIR
from pytensor_blackjax.store._formats import corrupt
from pytensor_blackjax.store._side import run_document

__all__ = ["LEGACY_FORMAT", "read_legacy"]

LEGACY_FORMAT = 1


def _unpickle(path: Path, name: str) -> Any:
    try:
        return pickle.loads((path / SIDE_DIR / name).read_bytes())
    except FileNotFoundError:
        raise corrupt(path, f"{SIDE_DIR}/{name} is missing") from None
    except Exception as e:  # noqa: BLE001 - unpickling damaged bytes can raise almost anything
        raise corrupt(path, f"{SIDE_DIR}/{name} cannot be read ({type(e).__name__}: {e})") from None


def read_legacy(path: Path, attrs: dict) -> tuple[dict, dict, ResumePoint | None]:
    """The run document (as format 2 writes it in ``_pbj/run.json``), the data overrides and the resume
    point of a format-1 store; the resume point is None for a complete store.

    Raises:
        StoreError: a side file is missing or damaged, or holds a config that is not a dataclass.
    """
    run = _unpickle(path, "run.pkl")
    try:
        document = run_document(run["sampler"], run["settings"], run["log_likelihood"])
        new_data = dict(run["new_data"])
    except (KeyError, TypeError, AttributeError) as e:
        raise corrupt(path, f"{SIDE_DIR}/run.pkl does not hold a run ({type(e).__name__}: {e})") from None
    status = attrs.get("status")
    if status == "complete":
        return document, new_data, None
    if status == "warmup":
        return document, new_data, ResumePoint(phase="warmup")
    if status != "sampling":
        raise corrupt(path, f"unknown status {status!r}")
    if not attrs.get("state_file"):
        raise corrupt(path, "status is 'sampling' but no state_file is recorded")
    carry = _unpickle(path, attrs["state_file"])
    params = _unpickle(path, "params.pkl")
    if not isinstance(params, dict) or "params" not in params:
        raise corrupt(path, f"{SIDE_DIR}/params.pkl does not hold adapted parameters")
    return (
        document,
        new_data,
        ResumePoint(
            phase="sampling",
            num_draws=int(attrs.get("num_draws_completed", 0)),
            layout=params.get("method"),
            state_leaves=tuple(jax.tree.leaves(carry)),
            params_leaves=tuple(jax.tree.leaves(params["params"])),
        ),
    )
