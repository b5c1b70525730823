"""Files in the program store that only their user can have written, checked before they are read.

A stored program is a pickle (JAX serialises an executable as one), and loading a pickle runs code, so
the store (on by default) must never load a file another user could have written. An entry is read
back only when every one of these holds, each checked on what was actually opened:

* its directory is owned by this user and no one else may write to it: created with mode 0700; an
  existing directory owned by someone else or writable by group or others is refused;
* the entry is a regular file (not a symlink) owned by this user that no one else may write to;
* its HMAC-SHA256 under this user's key matches its name and bytes. The key is 32 random bytes in
  ``.key`` in the directory, created on first use (mode 0600, published with a hard link so that two
  processes starting together agree on one key), refused if it is not owned by this user or others may
  read or write it.

A refused directory or key switches the store off for the process (programs are compiled as usual); a
refused entry is deleted and its program compiled and stored again. Each refusal warns once with a
`ProgramStoreWarning` naming the file and the fix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import os
import secrets
import stat
import tempfile
import threading
import warnings
from pathlib import Path

from pytensor_blackjax.run._cache import ENV

__all__ = ["ProgramStoreWarning", "Vault", "open_vault", "read_entry", "write_entry"]

KEY_NAME = ".key"
_KEY_BYTES = 32
_MAGIC = b"PBJHMAC1"  # format of an entry: magic, HMAC-SHA256 tag, payload
_TAG_BYTES = hashlib.sha256().digest_size
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
_OTHERS_ANY = stat.S_IRWXG | stat.S_IRWXO
# refusals already reported by this process: each file is warned about once
_WARNED: set[str] = set()
_WARNED_LOCK = threading.Lock()


class ProgramStoreWarning(UserWarning):
    """The program store refused a directory, key or entry it cannot trust; sampling goes on."""


@dataclasses.dataclass(frozen=True)
class Vault:
    """A checked store directory and the key that authenticates its entries."""

    folder: Path
    key: bytes = dataclasses.field(repr=False)


def _my_uid() -> int | None:
    """This process's user, or None where files carry no Unix owner (Windows): the HMAC still holds."""
    return os.geteuid() if hasattr(os, "geteuid") else None


def _problem(st: os.stat_result, *, kind: int, forbidden: int) -> str | None:
    """Why a file with this status cannot be trusted, or None."""
    if stat.S_IFMT(st.st_mode) != kind:
        return "is not a directory" if kind == stat.S_IFDIR else "is not a regular file"
    me = _my_uid()
    if me is None:
        return None
    if st.st_uid != me:
        return f"is owned by uid {st.st_uid}, not by you (uid {me})"
    if st.st_mode & forbidden:
        who = "group or others can write to it" if forbidden == _OTHERS_WRITE else "others can access it"
        return f"has mode {stat.S_IMODE(st.st_mode):#o}: {who}"
    return None


def _warn_once(path: Path, message: str) -> None:
    with _WARNED_LOCK:
        if str(path) in _WARNED:
            return
        _WARNED.add(str(path))
    warnings.warn(message, ProgramStoreWarning, stacklevel=4)


def open_vault(folder: Path) -> Vault | None:
    """The program store in ``folder`` (created with mode 0700 if missing), or None when it cannot be
    trusted (warned once) or cannot be created (silently, as an unwritable store always was)."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)  # whatever the umask
        st = os.stat(folder)
    except OSError:
        return None
    problem = _problem(st, kind=stat.S_IFDIR, forbidden=_OTHERS_WRITE)
    if problem is not None:
        _warn_once(
            folder,
            f"the program store {folder} {problem}, so a program stored there could have been written "
            f"by someone else; running without the store (programs are compiled, not loaded). To use "
            f"it: `chmod 700 {folder}` if it is yours, or set {ENV} to a directory of your own "
            f"({ENV}=off switches the store off).",
        )
        return None
    key = _read_key(folder / KEY_NAME)
    return None if key is None else Vault(folder, key)


def _read_key(path: Path) -> bytes | None:
    for _ in range(2):
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        except FileNotFoundError:
            if not _new_key(path):
                return None
            continue
        except OSError as e:  # e.g. a symlink
            _refuse_key(path, f"cannot be opened safely ({e.strerror})")
            return None
        with os.fdopen(fd, "rb") as f:
            problem = _problem(os.fstat(f.fileno()), kind=stat.S_IFREG, forbidden=_OTHERS_ANY)
            if problem is not None:
                _refuse_key(path, problem)
                return None
            key = f.read(_KEY_BYTES + 1)
        if len(key) != _KEY_BYTES:
            _refuse_key(path, f"holds {len(key)} bytes instead of {_KEY_BYTES}")
            return None
        return key
    return None


def _new_key(path: Path) -> bool:
    """Write a random key to ``path`` unless one exists; False if the directory is not writable."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-key-")  # mode 0600
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(_KEY_BYTES))
        with contextlib.suppress(FileExistsError):  # another process made one first: use theirs
            os.link(tmp, path)  # unlike a rename, a link never replaces a key already in use
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _refuse_key(path: Path, problem: str) -> None:
    _warn_once(
        path,
        f"the program store's key {path} {problem}; running without the store (programs are compiled, "
        f"not loaded). Delete it (`rm {path}`): a new key is made and the store refills.",
    )


def _tag(vault: Vault, name: str, payload: bytes | memoryview) -> bytes:
    # the name is authenticated too: a valid entry copied under another key is not that program
    mac = hmac.new(vault.key, _MAGIC + name.encode() + b"\0", hashlib.sha256)
    mac.update(payload)
    return mac.digest()


def read_entry(vault: Vault, path: Path) -> bytes | None:
    """The payload stored at ``path``, or None if there is none or it cannot be trusted (warned once,
    then deleted so that the program is compiled and stored again)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        _refuse_entry(path, f"cannot be opened safely ({e.strerror})")
        return None
    with os.fdopen(fd, "rb") as f:
        problem = _problem(os.fstat(f.fileno()), kind=stat.S_IFREG, forbidden=_OTHERS_WRITE)
        if problem is not None:
            _refuse_entry(path, problem)
            return None
        data = f.read()
    head = len(_MAGIC) + _TAG_BYTES
    if data[: len(_MAGIC)] != _MAGIC or not hmac.compare_digest(
        data[len(_MAGIC) : head], _tag(vault, path.name, memoryview(data)[head:])
    ):
        _refuse_entry(path, f"does not carry a valid HMAC under the key {vault.folder / KEY_NAME}")
        return None
    return data[head:]


def _refuse_entry(path: Path, problem: str) -> None:
    _warn_once(
        path,
        f"refusing to load the stored program {path}: it {problem}, so it may not have been written by "
        f"this package for you. It is deleted and the program compiled again.",
    )
    with contextlib.suppress(OSError):
        path.unlink()


def write_entry(vault: Vault, path: Path, payload: bytes) -> bool:
    """Store ``payload`` at ``path`` with its HMAC, atomically; False if it could not be written."""
    try:
        fd, tmp = tempfile.mkstemp(dir=vault.folder, prefix=".tmp-")  # mode 0600
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + _tag(vault, path.name, payload))
            f.write(payload)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False
    return True
