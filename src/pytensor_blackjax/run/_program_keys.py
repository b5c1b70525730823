"""What a stored program is keyed on (see `run._stored`): the sampler config's fields, the model as
JAX traces it, the argument types, and this package's code, the libraries' versions, JAX's
configuration and the machine."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import os
import platform
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "code_digest",
    "config_digest",
    "config_identity",
    "machine_digest",
    "model_digest",
    "signature",
]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
# configuration that cannot change what a program computes (logging, caches, dumps, diagnostics)
_NEUTRAL_CONFIG = re.compile(
    r"log|cache|dump|explain|pprint|traceback|transfer_guard|timeout|mtls|distributed"
)
_PACKAGE = Path(__file__).resolve().parent.parent


def config_identity(config: Any) -> str | None:
    """Every field of a sampler config, nested configs included, or None when the config cannot be
    keyed: a class from outside this package (its code is not part of the key) or a value other than
    None, bool, int, float, str or tuples of them (an array's ``repr`` elides its values)."""

    def plain(value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, (tuple, list)):
            return tuple(plain(v) for v in value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            cls = type(value)
            if not cls.__module__.startswith(_PACKAGE.name + "."):
                raise TypeError(cls)
            return cls.__qualname__, tuple(
                (f.name, plain(getattr(value, f.name))) for f in dataclasses.fields(value)
            )
        raise TypeError(type(value))

    try:
        return repr(plain(config))
    except TypeError:
        return None


@cache
def code_digest() -> bytes:
    """This package's source and the versions of the libraries its programs are built from."""
    h = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")):
        h.update(str(path.relative_to(_PACKAGE)).encode())
        h.update(path.read_bytes())
    for dist in ("jax", "jaxlib", "blackjax", "pytensor"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            h.update(f"{dist}={importlib.metadata.version(dist)};".encode())
    return h.digest()


@cache
def machine_digest() -> bytes:
    h = hashlib.sha256()
    h.update(f"{platform.machine()};{platform.system()};{os.environ.get('XLA_FLAGS', '')};".encode())
    device = jax.devices()[0]
    h.update(f"{device.platform};{device.device_kind};{device.client.platform_version};".encode())
    h.update(f"{jax.device_count()};{jax.process_count()};".encode())
    with contextlib.suppress(OSError):  # XLA compiles for the host CPU's instruction set
        flags = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")]
        h.update(flags[0].encode() if flags else b"")
    return h.digest()


def config_digest() -> bytes:
    """JAX's configuration as the current thread sees it (x64 may be switched per thread)."""
    items = sorted(
        (k, repr(getattr(jax.config, k, v)))
        for k, v in jax.config.values.items()
        if not _NEUTRAL_CONFIG.search(k)
    )
    items.append(("float", str(jnp.result_type(float))))
    return hashlib.sha256(repr(items).encode()).digest()


@cache
def _dtype_name(dtype: Any) -> str:
    return str(dtype)


def _leaf_type(x: Any) -> tuple:
    # read directly where the type is at hand (``jax.typeof`` and ``str(dtype)`` were ~15 us a leaf,
    # ~0.05 s of a small model's run; a program is looked up by its signature at every call): a
    # concrete JAX array's own abstract type, a host array's shape and the dtype a program receives
    # (float64 -> float32 without x64); Python and NumPy scalars (weak types) go through ``jax.typeof``
    if isinstance(x, jax.ShapeDtypeStruct):
        return tuple(x.shape), _dtype_name(x.dtype), bool(x.weak_type)
    if isinstance(x, np.ndarray):
        return x.shape, _dtype_name(jax.dtypes.canonicalize_dtype(x.dtype)), False
    aval = x.aval if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer) else jax.typeof(x)
    return tuple(aval.shape), _dtype_name(aval.dtype), bool(getattr(aval, "weak_type", False))


def signature(args: tuple) -> tuple:
    """The argument types a program is compiled for."""
    leaves, tree = jax.tree.flatten(args)
    return str(tree), tuple(_leaf_type(x) for x in leaves)


def _jaxpr_digest(h, fn: Callable, *args) -> None:
    closed = jax.make_jaxpr(fn)(*args)
    h.update(_ADDRESS.sub("", str(closed.jaxpr)).encode())
    for const in closed.consts:
        value = np.asarray(const)
        h.update(f"{value.shape}{value.dtype}".encode())
        h.update(np.ascontiguousarray(value).tobytes())


def model_digest(compiled: Any, data: tuple) -> bytes:
    """What a compiled model computes at these data shapes (log-density and gradient, constrain and
    pointwise log-likelihood), as JAX traces it. Kept in the model's program cache per data types and
    precision."""
    types = (signature(data), str(jnp.result_type(float)))
    return compiled.programs.get(("digest", types), lambda: _model_digest(compiled, data))


def _model_digest(compiled: Any, data: tuple) -> bytes:
    avals = jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), data)
    x = jax.ShapeDtypeStruct((compiled.num_dims,), jnp.result_type(float))
    h = hashlib.sha256()
    # a jaxpr returns a dict's values in key order without the keys: the names are part of the model
    h.update(repr((tuple(compiled.output_shapes), tuple(compiled.loglik_shapes))).encode())
    _jaxpr_digest(h, jax.value_and_grad(compiled.flat_logdensity), x, avals)
    _jaxpr_digest(h, compiled.flat_constrain, x, avals)
    _jaxpr_digest(h, compiled.flat_log_likelihood, x, avals)
    return h.digest()
