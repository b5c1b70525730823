"""What a store keeps besides its draws, as formats that cannot run code: arrays in ``.npz`` files (read
with ``allow_pickle=False``) and frozen dataclasses (settings, sampler configs) as JSON field maps.

A config read back is rebuilt field by field, so a field renamed or removed since the store was written
is reported by name (`StoreError`) instead of surfacing as a corrupt store or a crash.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pytensor_blackjax.samplers import SAMPLERS

__all__ = [
    "StoreError",
    "arrays_blob",
    "config_fields",
    "corrupt",
    "read_arrays",
    "rebuild",
    "sampler_from_json",
    "sampler_to_json",
]


class StoreError(ValueError):
    """A store that cannot be resumed: corrupt, written by another model, or by an incompatible release."""


def corrupt(path: Path, why: str) -> StoreError:
    return StoreError(
        f"store {str(path)!r} is corrupt or not a pytensor-blackjax store: {why}. It cannot be resumed; "
        "start again with pbj.sample(..., store=a new path)."
    )


# -- arrays -------------------------------------------------------------------------------------------
def arrays_blob(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` archive of ``arrays`` as bytes (for one atomic write); object arrays are refused
    rather than pickled.

    Raises:
        ValueError: an array holds Python objects.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
    return buffer.getvalue()


def read_arrays(path: Path, file: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` written by `arrays_blob`, never unpickling.

    Raises:
        StoreError: the file is missing or damaged.
    """
    where = file.relative_to(path)
    try:
        with np.load(file, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise corrupt(path, f"{where} is missing") from None
    except Exception as e:  # noqa: BLE001 - a damaged zip or header raises many kinds of error
        raise corrupt(path, f"{where} cannot be read ({type(e).__name__}: {e})") from None


def numbered(prefix: str, leaves: Sequence[Any]) -> dict[str, np.ndarray]:
    """Leaves as ``{prefix_00000: leaf, ...}``, in order (``jax.tree.leaves`` order)."""
    return {f"{prefix}_{i:05d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}


def in_order(arrays: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, ...]:
    """The leaves `numbered` wrote, in their order."""
    return tuple(arrays[k] for k in sorted(k for k in arrays if k.startswith(prefix + "_")))


# -- configs ------------------------------------------------------------------------------------------
def _plain(value: Any, what: str) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [_plain(v, what) for v in value]
    raise TypeError(f"{what} is a {type(value).__name__}, which a store keeps only as numbers and strings")


def config_fields(config: Any, what: str) -> dict[str, Any]:
    """The fields of a frozen dataclass as JSON values (tuples become lists).

    Raises:
        TypeError: ``config`` is not a dataclass, or a field holds something other than numbers,
            strings, booleans, None or tuples of them.
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"{what} {config!r} is not a dataclass instance")
    return {f.name: _plain(getattr(config, f.name), f"{what}.{f.name}") for f in dataclasses.fields(config)}


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def rebuild(cls: type, fields: dict[str, Any], path: Path, what: str, *, allow_defaults: bool) -> Any:
    """``cls(**fields)`` after checking that the stored names match the class's fields.

    ``allow_defaults``: a field added to ``cls`` since the store was written takes its default (the
    default must then mean "as before"); otherwise every field must be stored.

    Raises:
        StoreError: unknown names, missing names, or values the class rejects; the message names them.
    """
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(fields) - set(known))
    missing = sorted(
        name
        for name, f in known.items()
        if name not in fields
        and (
            not allow_defaults
            or (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        )
    )
    if unknown or missing:
        parts = [f"fields {unknown} that {cls.__name__} no longer has"] if unknown else []
        parts += [f"no value for {cls.__name__}'s fields {missing}"] if missing else []
        raise StoreError(
            f"store {str(path)!r} holds a {what} this release cannot rebuild: {' and '.join(parts)} "
            "(the class changed since the store was written). Resume it with the release that wrote it, "
            "or start again with pbj.sample(..., store=a new path)."
        )
    try:
        return cls(**{k: _tuples(v) for k, v in fields.items()})
    except (TypeError, ValueError) as e:
        raise StoreError(
            f"store {str(path)!r} holds a {what} that {cls.__name__} rejects now: {e}. Resume it with the "
            "release that wrote it, or start again with pbj.sample(..., store=a new path)."
        ) from None


def sampler_to_json(sampler: Any) -> dict[str, Any]:
    """``{"name": ..., "fields": {...}}`` for a sampler of the registry.

    Raises:
        TypeError: the sampler is not the registry's class of its name (a custom sampler), or a field
            does not fit in JSON; the store then keeps no copy of it.
    """
    name = getattr(sampler, "name", None)
    if not isinstance(name, str) or SAMPLERS.get(name) is not type(sampler):
        raise TypeError(
            f"{type(sampler).__name__} (name {name!r}) is not in pytensor_blackjax.samplers.SAMPLERS"
        )
    return {"name": name, "fields": config_fields(sampler, type(sampler).__name__)}


def sampler_from_json(document: Any, path: Path) -> Any:
    """The sampler config `sampler_to_json` wrote.

    Raises:
        StoreError: no sampler is stored, its name is unknown, or its fields do not match.
    """
    if not isinstance(document, dict) or not isinstance(document.get("fields"), dict):
        raise StoreError(
            f"store {str(path)!r} holds no copy of its sampler ({document}): only the samplers of "
            "pytensor_blackjax.samplers.SAMPLERS can be resumed; start again with pbj.sample(..., store=...)."
        )
    name = document.get("name")
    cls = SAMPLERS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise StoreError(
            f"store {str(path)!r} was sampled with {document.get('name')!r}, which this release does not "
            f"know (samplers: {sorted(SAMPLERS)}); resume it with the release that wrote it."
        )
    # a field added to a sampler config later takes its default, which by rule reproduces the behaviour
    # from before the field existed
    return rebuild(cls, document["fields"], path, f"{cls.__name__} sampler config", allow_defaults=True)


def json_blob(document: dict) -> bytes:
    return json.dumps(document, indent=2, allow_nan=True).encode()
