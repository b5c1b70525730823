"""JAX's persistent compilation cache, so a second process sampling the same model skips XLA compilation.

It is switched on by the first ``sample`` call (never at import) unless the user has already chosen a
cache directory for JAX, or set ``PBJ_COMPILATION_CACHE=off``. ``PBJ_COMPILATION_CACHE=/some/dir`` picks
the directory; the default is ``$XDG_CACHE_HOME/pytensor-blackjax/jax`` (``~/.cache/...``).

JAX keeps only programs that took at least a second to compile; a sampler's programs for a small model
compile in 0.1-0.8 s each and together cost seconds, so when this module picks the directory it also
lowers that threshold to `MIN_COMPILE_SECONDS` (unless the user changed it from JAX's default).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

__all__ = ["ENV", "MIN_COMPILE_SECONDS", "cache_dir", "enable_compilation_cache"]

ENV = "PBJ_COMPILATION_CACHE"
MIN_COMPILE_SECONDS = 0.05
_JAX_DEFAULT_MIN_COMPILE_SECONDS = 1.0
_OFF = {"0", "off", "false", "no", "none"}


def cache_dir() -> Path | None:
    """Where compiled programs are kept, or None when the cache is off."""
    choice = os.environ.get(ENV, "").strip()
    if choice.lower() in _OFF:
        return None
    if choice:
        return Path(choice).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytensor-blackjax" / "jax"


def enable_compilation_cache() -> str | None:
    """Point JAX's persistent cache at `cache_dir` unless JAX already has one; return the directory used."""
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    target = cache_dir()
    if target is None:
        return None
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # an unwritable cache must never stop sampling
    jax.config.update("jax_compilation_cache_dir", str(target))
    if jax.config.jax_persistent_cache_min_compile_time_secs == _JAX_DEFAULT_MIN_COMPILE_SECONDS:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return str(target)
