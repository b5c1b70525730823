"""One fit of many: the job, its outcome, and running it where it lands (a local thread or a Dask worker).

Nothing here knows about Dask: a fit is a plain function of a compiled model, a `FitJob` and the
`FitOptions` shared by every fit, so the local pool and the Dask tasks run the very same code.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

    from pytensor_blackjax.compile import CompiledModel

__all__ = ["FitJob", "FitOptions", "FitOutcome", "attempt_log", "fit_seed", "run_fit", "store_path"]

OK = "ok"


def fit_seed(seed: int, index: int) -> int:
    """The seed of fit ``index`` of a ``sample_many(..., seed=seed)`` call.

    It depends on ``(seed, index)`` only (NumPy's ``SeedSequence`` spawn key), never on where, when or
    in which order the fit runs, so ``pbj.sample(model, data=datasets[index], seed=fit_seed(seed,
    index), ...)`` repeats that fit alone, draw for draw.
    """
    sequence = np.random.SeedSequence(seed, spawn_key=(index,))
    return int(sequence.generate_state(1, np.uint64)[0])


@dataclass(frozen=True)
class FitOptions:
    """The ``sample`` settings every fit shares (the seed and data are per fit, in `FitJob`)."""

    draws: int
    tune: int
    chains: int
    sampler: Any
    chain_method: str
    thin: int
    chunk_size: int
    precision: str
    log_likelihood: bool

    def sample_kwargs(self) -> dict[str, Any]:
        return {
            "draws": self.draws,
            "tune": self.tune,
            "chains": self.chains,
            "sampler": self.sampler,
            "chain_method": self.chain_method,
            "thin": self.thin,
            "chunk_size": self.chunk_size,
            "precision": self.precision,
            "log_likelihood": self.log_likelihood,
            "progressbar": False,
        }


@dataclass(frozen=True)
class FitJob:
    """One data set to fit: its position, its derived seed and, with ``store_dir``, its store path."""

    index: int
    seed: int
    data: Mapping[str, Any]
    store: str | None = None


@dataclass(frozen=True)
class FitOutcome:
    """What came back from one fit.

    Attributes:
        status: "ok", or the error that ended the fit (``"ValueError: data['y'] contains NaN ..."``).
        tree: the fit's DataTree, None when it failed.
        attempts: how many times a task started this fit (from its store's attempt log; 1 without one).
        resumed_from: draws per chain already committed in the store when the last attempt began
            (0: it started from the beginning; equal to ``draws``: it was complete and read back).
        seconds: wall time of the last attempt.
    """

    index: int
    seed: int
    status: str
    tree: xr.DataTree | None = field(default=None, repr=False)
    attempts: int = 1
    resumed_from: int = 0
    seconds: float = float("nan")


def store_path(store_dir: str | os.PathLike, index: int) -> str:
    return str(Path(store_dir) / f"fit-{index:05d}.zarr")


def attempt_log(store: str | os.PathLike) -> Path:
    """Beside the store (never inside: the store's layout is the store's own): one JSON line per attempt."""
    return Path(f"{store}.attempts.jsonl")


def run_fit(compiled: CompiledModel, job: FitJob, options: FitOptions) -> FitOutcome:
    """Run one fit; any error becomes its status so that one bad fit never loses the others."""
    t0 = time.perf_counter()
    try:
        if job.store is None:
            import pytensor_blackjax as pbj

            tree = pbj.sample(compiled, data=job.data, seed=job.seed, **options.sample_kwargs())
            attempts, resumed_from = 1, 0
        else:
            tree, attempts, resumed_from = _run_stored(compiled, job, options)
    except Exception as exc:  # noqa: BLE001 - reported per fit; KeyboardInterrupt still stops the run
        return FitOutcome(job.index, job.seed, _describe(exc), seconds=time.perf_counter() - t0)
    return FitOutcome(job.index, job.seed, OK, tree, attempts, resumed_from, time.perf_counter() - t0)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or "(no message)"
    return f"{type(exc).__name__}: {text}"


def _root_attrs(path: Path) -> dict | None:
    """The store's commit record, or None when the store never got one (absent, or killed while
    being created): such a store holds no draws and starts again."""
    try:
        attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    except (OSError, ValueError):
        return None
    return attrs if "pbj_store_format" in attrs else None


def _run_stored(compiled: CompiledModel, job: FitJob, options: FitOptions) -> tuple[xr.DataTree, int, int]:
    import pytensor_blackjax as pbj

    assert job.store is not None  # only fits with a store come here
    path = Path(job.store)
    attrs = _root_attrs(path)
    committed = 0 if attrs is None else int(attrs.get("num_draws_completed", 0))
    state = "new" if attrs is None else str(attrs.get("status"))
    if attrs is not None and int(attrs.get("seed", -1)) != job.seed:
        raise ValueError(
            f"store {str(path)!r} holds a fit with seed {attrs.get('seed')}, not this fit's seed {job.seed}: "
            "it was written by a different sample_many call; give a new store_dir or delete the store."
        )
    attempts = _log_attempt(path, state, committed)
    if attrs is None:
        if path.exists():
            shutil.rmtree(path)
        tree = pbj.sample(compiled, data=job.data, seed=job.seed, store=str(path), **options.sample_kwargs())
        return tree, attempts, 0
    if state == "complete":
        with _QUIET_READ_BACK, warnings.catch_warnings():
            # reading back a complete store is the point here, not news
            warnings.filterwarnings("ignore", message=".*already complete", category=RuntimeWarning)
            tree = pbj.resume(path, model=compiled, progressbar=False)
        return tree, attempts, int(attrs.get("draws", committed))
    return pbj.resume(path, model=compiled, progressbar=False), attempts, committed


# `warnings.catch_warnings` swaps process-wide state: read-backs in several threads take turns
_QUIET_READ_BACK = threading.Lock()


def _log_attempt(path: Path, state: str, committed: int) -> int:
    """Append this attempt to the store's log and return how many attempts it now records."""
    log = attempt_log(path)
    log.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "time": time.time(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "store_status": state,
        "num_draws_completed": committed,
    }
    with open(log, "a", encoding="utf-8") as f:  # one short append: whole lines even if killed
        f.write(json.dumps(record) + "\n")
    return sum(1 for line in log.read_text(encoding="utf-8").splitlines() if line.strip())


def read_attempts(store: str | os.PathLike) -> list[dict]:
    """The attempt log of one fit's store: one dict per task start (time, host, pid, store_status,
    num_draws_completed at that start)."""
    log = attempt_log(store)
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
