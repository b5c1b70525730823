"""Where compiled programs are kept between processes (see `_stored`).

``PBJ_COMPILATION_CACHE=/some/dir`` picks the directory, ``PBJ_COMPILATION_CACHE=off`` switches the store
off; the default is ``$XDG_CACHE_HOME/pytensor-blackjax/programs`` (``~/.cache/...``). JAX's own
persistent compilation cache is left as the user configured it (off unless they chose a directory).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV", "cache_dir"]

ENV = "PBJ_COMPILATION_CACHE"
_OFF = {"0", "off", "false", "no", "none"}


def cache_dir() -> Path | None:
    """Where compiled programs are kept, or None when the store is off."""
    choice = os.environ.get(ENV, "").strip()
    if choice.lower() in _OFF:
        return None
    if choice:
        return Path(choice).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytensor-blackjax" / "programs"
