"""Compiled programs kept on disk, so a later process sampling the same model skips tracing, lowering
and compiling them.

JAX's persistent compilation cache skips only XLA's compilation: every process still traces each
sampler program and lowers it to StableHLO to compute that cache's key, ~0.3-0.5 s per NUTS program on
small models - most of what was left of a second run's start-up. Here a program is looked up before it
is traced, under a key built from everything the traced program depends on:

* the model, as JAX sees it: the jaxprs of its log-density with gradient, its constrain function and its
  pointwise log-likelihood at the data's shapes, with the bytes of every constant they close over, and
  the names of what they return. That digest is itself stored, under a digest of the model's PyTensor
  graphs (`compile._fingerprint`): a later process reads it there and never makes the model's JAX
  functions unless it has a program to trace;
* the program: its name, every field of the sampler config (this package's own dataclasses of plain
  values only), chunk length, thinning, chain method and precision;
* the argument types (tree structure, shapes, dtypes, weak types);
* the code and the machine: this package's source files, the versions of JAX, jaxlib, Blackjax and
  PyTensor, JAX's configuration, ``XLA_FLAGS``, the device and the CPU's instruction-set flags.

What cannot be keyed reliably (a user-defined sampler, a config holding an array) or stored safely (a
program with host callbacks, an executable JAX's own cache loaded: it serialises without its code) is
compiled the ordinary way and not stored. A file that fails to load is removed and the program compiled
again. The store lives in `cache_dir` and keeps at most `MAX_STORE_BYTES`, dropping the least recently
used programs. Loading a stored program unpickles it, so nothing is read back that this user's process
did not write: `_sealed` checks the directory's and the file's owner and mode and the entry's HMAC first.

Executables are (de)serialised with ``jax.experimental.serialize_executable``, its one use in this
package; tests/test_stored.py checks a round trip through a fresh process.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import pickle
import re
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import serialize_executable

from pytensor_blackjax.run import _sealed
from pytensor_blackjax.run._cache import cache_dir
from pytensor_blackjax.run._program_keys import (
    code_digest,
    config_digest,
    config_identity,
    machine_digest,
    model_digest,
    signature,
)

__all__ = [
    "MAX_STORE_BYTES",
    "STATS",
    "LowerFirst",
    "StoredProgram",
    "config_identity",
    "digest_of",
    "known_model",
    "model_digest",
    "signature",
    "store_dir",
    "wait_for_lowerings",
]

MAX_STORE_BYTES = 512 * 2**20
# programs this process loaded from the store, compiled, and saved to it
STATS = {"loaded": 0, "compiled": 0, "saved": 0}


def store_dir() -> Path | None:
    """Where compiled programs are stored, or None when the store is off."""
    return cache_dir()


# -- the model's digest, kept under its PyTensor graphs' fingerprint ----------------------------------
# A program's key holds the model's digest. Where the model's PyTensor graphs have a fingerprint
# (`compile._fingerprint`), the digest is made from it (with the data's types, this package's code and
# JAX's configuration) and kept under it, so no process makes the model's JAX functions to key its
# programs; a later process finds the entry and knows its programs are stored (`known_model`). Graphs
# the fingerprint cannot describe are keyed on the model as JAX traces it (`model_digest`). (A store
# written before keeps traced digests under the same entries: its programs stay found.)

_MODEL_SUFFIX = ".model"
_DIGEST = "stored digest"  # the model's digest at data of some types, in `CompiledModel.programs`


def _model_entry(compiled: Any, types: tuple) -> tuple[_sealed.Vault, Path] | None:
    fingerprint = getattr(compiled, "fingerprint", None)
    folder = store_dir() if jax.process_count() == 1 else None
    if fingerprint is None or folder is None:
        return None
    vault = _sealed.open_vault(folder)
    if vault is None:
        return None
    h = hashlib.sha256(b"model|" + fingerprint + code_digest() + config_digest())
    h.update(repr(types).encode())
    return vault, vault.folder / f"{h.hexdigest()}{_MODEL_SUFFIX}"


def _read_model_digest(entry: tuple[_sealed.Vault, Path] | None) -> bytes | None:
    if entry is None or not entry[1].exists():
        return None
    digest = _sealed.read_entry(*entry)
    return digest if digest is not None and len(digest) == hashlib.sha256().digest_size else None


def _data_types(data: tuple) -> tuple:
    return signature(data), str(jnp.result_type(float))


def known_model(compiled: Any, data: tuple) -> bool:
    """Whether the store holds ``compiled``'s digest at these data: a run of it loads its programs
    without the model's JAX functions (which ``compile`` then makes only when called). The digest read
    is kept for the run."""
    types = _data_types(data)
    digest = _read_model_digest(_model_entry(compiled, types))
    if digest is None:
        return False
    compiled.programs.get((_DIGEST, types), lambda: digest)
    return True


def stored_model_digest(compiled: Any, data: tuple) -> bytes:
    """`model_digest`, read from the store when an earlier process kept it under the model's graphs."""
    types = _data_types(data)

    def find() -> bytes:
        entry = _model_entry(compiled, types)
        if entry is None:  # graphs the fingerprint cannot describe: keyed as JAX traces the model
            return model_digest(compiled, data)
        digest = _read_model_digest(entry)
        if digest is None:
            # the graphs' own digest: the model's first run keys its programs without tracing it (a
            # store written before keeps, under the same entry, the digest a trace gave)
            vault, path = entry
            digest = hashlib.sha256(b"graphs|" + path.name.encode()).digest()
            _sealed.write_entry(vault, path, digest)
        return digest

    return compiled.programs.get((_DIGEST, types), find)


def digest_of(compiled: Any) -> Callable[[tuple], bytes]:
    """``data -> stored_model_digest(compiled, data)``."""
    return lambda data: stored_model_digest(compiled, data)


class StoredProgram:
    """A jitted program compiled once per argument types, from the store when it has it.

    Args:
        jitted: the ``jax.jit`` program.
        identity: what the program is, apart from the model and argument types (name, sampler config,
            chunk, method, ...); None keeps the program out of the store.
        model: ``data -> digest`` of the model the program runs, or None if it runs none.
        data_arg: position of the data tuple in the program's arguments.
    """

    def __init__(
        self,
        jitted: Any,
        identity: str | None,
        model: Callable[[tuple], bytes] | None = None,
        data_arg: int | None = None,
    ):
        self._jitted, self._identity, self._model, self._data_arg = jitted, identity, model, data_arg
        self._compiled: dict[tuple, jax.stages.Compiled] = {}
        self._types: dict[tuple, Any] = {}  # output types known before the executable (see out_types)
        self._unproven: dict[tuple, Path] = {}  # loaded from the store, not yet run here
        self._lock = threading.Lock()

    def __call__(self, *args):
        sig = signature(args)
        program = self._compiled.get(sig) or self._get(args, sig)
        path = self._unproven.get(sig)
        if path is None:
            return program(*args)
        with _watch(path):  # a loaded program's first run: a crash here condemns it
            out = jax.block_until_ready(program(*args))
        self._unproven.pop(sig, None)
        return out

    def compiled(self, *args) -> jax.stages.Compiled:
        """The executable for these arguments (arrays or ``jax.ShapeDtypeStruct``), compiled or loaded
        on first use."""
        sig = signature(args)
        return self._compiled.get(sig) or self._get(args, sig)

    def compiled_count(self) -> int:
        return len(self._compiled)

    def out_types(self, *args) -> Any:
        """The output types for these arguments without waiting for a compilation: the executable's
        when it is compiled or in the store (loaded then), else from a trace (``eval_shape``, the trace a
        compilation then reuses), weak types dropped as an executable's are. Programs that take this
        one's outputs can then compile beside it instead of after it.

        While another thread compiles this program (a chain's first call, as soon as the start points
        are drawn), the types come from its trace, before it is lowered and compiled: waiting for the
        whole compilation put the warmup program's compile after the warmup-init one's (a first run's
        critical path: ~0.5-0.9 s of 2 cores)."""
        sig = signature(args)
        while True:  # never blocked by a thread that holds the lock while it waits (`LowerFirst`)
            program = self._compiled.get(sig)
            if program is not None:
                return program.out_info
            types = self._types.get(sig)
            if types is not None:
                return types
            if self._lock.acquire(timeout=0.005):
                try:
                    if sig in self._compiled:
                        continue
                    if self._in_store(args, sig):  # loaded (or, failing that, compiled) as `_get` does
                        self._compiled[sig] = self._load_or_compile(args, sig)
                        continue
                    with _lowering():
                        self._types[sig] = _types(self._jitted.eval_shape(*args))
                finally:
                    self._lock.release()

    def _in_store(self, args: tuple, sig: tuple) -> bool:
        _, path = self._entry(args, sig)
        return path is not None and path.exists()

    def _entry(self, args: tuple, sig: tuple) -> tuple[_sealed.Vault | None, Path | None]:
        """The store (None: not used) and the file this program would be kept in."""
        # several processes (pbj.distributed) compile together: no process may skip that
        folder = store_dir() if jax.process_count() == 1 and self._identity is not None else None
        vault = None if folder is None else _sealed.open_vault(folder)
        key = None if vault is None else self._key(args, sig)
        return vault, None if vault is None or key is None else vault.folder / f"{key}.bin"

    def _get(self, args: tuple, sig: tuple) -> jax.stages.Compiled:
        with self._lock:
            program = self._compiled.get(sig)
            if program is None:
                program = self._load_or_compile(args, sig)
                self._compiled[sig] = program
            return program

    def _key(self, args: tuple, sig: tuple) -> str | None:
        if self._identity is None:
            return None
        h = hashlib.sha256(code_digest() + machine_digest() + config_digest())
        h.update(repr((self._identity, sig)).encode())
        if self._model is not None and self._data_arg is not None:
            h.update(self._model(args[self._data_arg]))
        return h.hexdigest()

    def _load_or_compile(self, args: tuple, sig: tuple) -> jax.stages.Compiled:
        vault, path = self._entry(args, sig)
        if vault is not None and path is not None and path.exists() and not _crashed_before(path):
            loaded = _load(vault, path)
            if loaded is not None:
                self._unproven[sig] = path
                STATS["loaded"] += 1
                return loaded
        # lowered from the argument types alone, as a program compiled ahead is: whichever thread
        # compiles it, and from whatever trace, the module is the same (JAX's own cache finds it)
        with _lowering():
            traced = self._jitted.trace(*_abstract(args))
        self._types[sig] = _types(traced.out_info)  # for `out_types` in other threads, before XLA compiles
        LowerFirst.wait_turn()
        with _lowering():
            lowered = traced.lower()
        LowerFirst.lowered()
        with _served_from_jax_cache() as served:
            program = lowered.compile()
        STATS["compiled"] += 1
        # an executable JAX loaded from its own cache serialises without its code: store only fresh ones
        if (
            vault is not None
            and path is not None
            and not served()
            and _strikes(path) < MAX_STRIKES
            and not _HOST_CALLBACK.search(lowered.as_text())
        ):
            _save(vault, path, program)
        return program


# programs being traced or lowered in this process (GIL-bound work; XLA's compilation is not)
_LOWERING = 0
_LOWERED = threading.Condition()


@contextlib.contextmanager
def _lowering():
    global _LOWERING
    with _LOWERED:
        _LOWERING += 1
    try:
        yield
    finally:
        with _LOWERED:
            _LOWERING -= 1
            _LOWERED.notify_all()


class LowerFirst:
    """A claim that one program's lowering goes before every other one's in this process.

    Tracing and lowering hold the GIL, so two programs lowered at once both finish late. A first
    run's critical path is the warmup-init program's trace (the warmup program needs its output
    types), then the warmup program's trace and lowering, then XLA's compilation of it (the longest,
    GIL-free); the warmup-init program's lowering (0.1-0.2 s on small models) need not come before
    it. While a claim is held, `StoredProgram` publishes a program's output types after its trace,
    then waits before lowering it, unless its thread is `exempt` or `carries` the claim; the claim
    ends after the carrying thread's next lowering, or at `release` (at the latest when the
    claimant's own work ends, whatever happened). A thread waits at most `MAX_WAIT` seconds: a claim
    only orders work, it never stops it. The programs are the same whichever order they are lowered in.
    """

    MAX_WAIT = 10.0
    _held = 0  # claims not yet released, guarded by `_LOWERED`
    _here = threading.local()  # .claim: the claim this thread works for; .carrier: it ends the claim

    def __init__(self) -> None:
        with _LOWERED:
            LowerFirst._held += 1
        self._open = True

    def release(self) -> None:
        """End the claim (once; later calls do nothing)."""
        with _LOWERED:
            if self._open:
                self._open = False
                LowerFirst._held -= 1
                _LOWERED.notify_all()

    @contextlib.contextmanager
    def exempt(self):
        """This block's thread lowers without waiting (it prepares what the claimed program needs)."""
        LowerFirst._here.claim, LowerFirst._here.carrier = self, False
        try:
            yield
        finally:
            LowerFirst._here.claim = None

    @contextlib.contextmanager
    def carried(self):
        """Lowerings in this block's thread go first; the claim ends after the first of them, or with
        the block."""
        LowerFirst._here.claim, LowerFirst._here.carrier = self, True
        try:
            yield
        finally:
            LowerFirst._here.claim = None
            self.release()

    @staticmethod
    def wait_turn() -> None:
        """Wait until no claim is held (at most `MAX_WAIT` s), unless this thread works for one."""
        if getattr(LowerFirst._here, "claim", None) is None:
            with _LOWERED:
                _LOWERED.wait_for(lambda: LowerFirst._held == 0, timeout=LowerFirst.MAX_WAIT)

    @staticmethod
    def lowered() -> None:
        """This thread has lowered a program: the claim it carries, if any, ends."""
        claim = getattr(LowerFirst._here, "claim", None)
        if claim is not None and LowerFirst._here.carrier:
            claim.release()


def wait_for_lowerings() -> None:
    """Return once no `StoredProgram` of this process is being traced or lowered."""
    with _LOWERED:
        _LOWERED.wait_for(lambda: _LOWERING == 0)


def _types(tree: Any) -> Any:
    """``jax.ShapeDtypeStruct`` leaves without weak types or sharding, as a trace's outputs would be."""
    return jax.tree.map(lambda t: jax.ShapeDtypeStruct(t.shape, t.dtype), tree)


def _abstract(args: tuple) -> tuple:
    """The arguments' types (`jax.ShapeDtypeStruct`, weak types kept, no sharding: a type from a
    compiled program's outputs carries its device, one from a trace none)."""

    def kind(x):
        aval = x if isinstance(x, jax.ShapeDtypeStruct) else jax.typeof(x)
        return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=bool(getattr(aval, "weak_type", False)))

    return jax.tree.map(kind, args)


_HOST_CALLBACK = re.compile(r"custom_call @\S*callback")
_HITS = threading.local()
_LISTENING = threading.Lock()
_listener_registered = False


def _on_event(event: str, **_) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _HITS.count = getattr(_HITS, "count", 0) + 1


@contextlib.contextmanager
def _served_from_jax_cache():
    """Yields ``() -> bool``: did JAX's persistent cache serve a compilation in this thread meanwhile."""
    global _listener_registered
    with _LISTENING:
        if not _listener_registered:
            jax.monitoring.register_event_listener(_on_event)
            _listener_registered = True
    before = getattr(_HITS, "count", 0)
    yield lambda: getattr(_HITS, "count", 0) > before


# -- a stored program that brings its process down is not trusted -----------------------------------
# While a loaded program is deserialised and while it runs for the first time, a marker names this
# process; a marker whose process no longer runs means that process died there. That costs the program
# a strike: it is deleted, compiled again and stored again; at MAX_STRIKES it is never stored again.
# One strike is forgiven because a process killed from outside (SIGKILL, a scheduler's time limit)
# during a first chunk looks the same as one that crashed.

MAX_STRIKES = 2


def _marker(path: Path, pid: int) -> Path:
    return path.with_name(f"{path.stem}.{pid}.running")


def _bad(path: Path) -> Path:
    return path.with_suffix(".bad")


def _strikes(path: Path) -> int:
    try:
        return int(_bad(path).read_text() or 1)
    except (OSError, ValueError):
        return 1 if _bad(path).exists() else 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _crashed_before(path: Path) -> bool:
    for marker in path.parent.glob(f"{path.stem}.*.running"):
        pid = marker.name.split(".")[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                _bad(path).write_text(str(_strikes(path) + 1))
                path.unlink()
                marker.unlink()
            return True
    return False


_MARKERS: set[Path] = set()


@contextlib.contextmanager
def _watch(path: Path):
    marker = _marker(path, os.getpid())
    with contextlib.suppress(OSError):  # a read-only store is still read
        marker.touch()
        _MARKERS.add(marker)
    try:
        yield
    finally:  # an exception is not a crash: the process lives on
        _MARKERS.discard(marker)
        with contextlib.suppress(OSError):
            marker.unlink()


@atexit.register
def _clear_markers() -> None:
    for marker in list(_MARKERS):
        with contextlib.suppress(OSError):
            marker.unlink()


@cache
def _lapack_ready() -> None:
    """XLA's CPU LAPACK kernels are bound when JAX first lowers a linear-algebra operation; a program
    loaded without being lowered would call unbound kernels. JAX binds them the same way before it runs
    an exported program (``jax._src.export``); a JAX without that function gets one small lowering,
    which costs ~0.15 s in a process that has lowered nothing yet."""
    try:
        from jax._src.lax.linalg import initialize_lapack
    except ImportError:
        jax.jit(jnp.linalg.cholesky).lower(jax.ShapeDtypeStruct((2, 2), jnp.float32))
    else:
        initialize_lapack()


def _load(vault: _sealed.Vault, path: Path) -> jax.stages.Compiled | None:
    entry = _sealed.read_entry(vault, path)  # None: gone, or refused (warned and deleted)
    if entry is None:
        return None
    try:
        device_ids, payload, in_tree, out_tree = pickle.loads(entry)
        if b"lapack" in payload:  # its LAPACK calls are named in it (most programs make none)
            _lapack_ready()
        by_id = {d.id: d for d in jax.devices()}
        with _watch(path):
            program = serialize_executable.deserialize_and_load(
                payload, in_tree, out_tree, execution_devices=[by_id[i] for i in device_ids]
            )
    except Exception:  # a damaged or foreign file: compile again and replace it
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: kept longest when the store is trimmed
    return program


def _save(vault: _sealed.Vault, path: Path, program: jax.stages.Compiled) -> None:
    devices = {d for sharding in jax.tree.leaves(program.input_shardings) for d in sharding.device_set}
    if len(devices) != 1:
        return  # the store keeps single-device programs (sharded runs compile as usual)
    try:
        payload = pickle.dumps(
            ([d.id for d in devices], *serialize_executable.serialize(program)),
            protocol=pickle.HIGHEST_PROTOCOL,
        )
    except Exception:  # e.g. programs with captured constants: not serialisable, simply not stored
        return
    if not _sealed.write_entry(vault, path, payload):
        return  # an unwritable store must never stop sampling
    STATS["saved"] += 1
    _trim(path.parent)


def _trim(folder: Path, limit: int = MAX_STORE_BYTES) -> None:
    with contextlib.suppress(OSError):
        paths = [*folder.glob("*.bin"), *folder.glob(f"*{_MODEL_SUFFIX}")]
        files = [(p.stat().st_mtime, p.stat().st_size, p) for p in paths]
        total = sum(size for _, size, _ in files)
        for _, size, p in sorted(files):
            if total <= limit:
                break
            with contextlib.suppress(OSError):
                p.unlink()
                total -= size
