"""Where compiled programs are kept between processes (see `_stored`).

``pbj.set_program_cache(False)`` (or a directory) chooses from Python, for the whole process; otherwise
``PBJ_COMPILATION_CACHE=/some/dir`` picks the directory, ``PBJ_COMPILATION_CACHE=off`` switches the store
off; the default is ``$XDG_CACHE_HOME/pytensor-blackjax/programs`` (``~/.cache/...``). JAX's own
persistent compilation cache is left as the user configured it (off unless they chose a directory).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV", "cache_dir", "set_program_cache"]

ENV = "PBJ_COMPILATION_CACHE"
_OFF = {"0", "off", "false", "no", "none"}


# The process's choice from Python (a setting, like JAX's config; every thread must see it): None defers
# to the environment variable.
_CHOSEN: list[str | None] = [None]


def set_program_cache(where: bool | str | os.PathLike | None) -> None:
    """Switch the on-disk program store off (False), on (True: the default place), or to a directory.

    The choice holds for the whole process and overrides ``PBJ_COMPILATION_CACHE``; None goes back to it.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> pbj.set_program_cache(False)  # compile everything afresh, store nothing
    """
    if where is None or where is True:
        _CHOSEN[0] = None if where is None else ""
    elif where is False:
        _CHOSEN[0] = "off"
    elif isinstance(where, str | os.PathLike) and str(where).strip():
        _CHOSEN[0] = str(where)
    else:
        raise TypeError(
            f"set_program_cache({where!r}): give False (off), True (the default place), a directory, or None "
            f"(follow {ENV})."
        )


def cache_dir() -> Path | None:
    """Where compiled programs are kept, or None when the store is off."""
    chosen = _CHOSEN[0]
    choice = (os.environ.get(ENV, "") if chosen is None else chosen).strip()
    if choice.lower() in _OFF:
        return None
    if choice:
        return Path(choice).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytensor-blackjax" / "programs"
