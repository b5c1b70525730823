"""The driver: the same loop for every sampler - start points, warmup and sampling in chunks,
progress, Ctrl-C at chunk boundaries, and hand-off of every chunk to a sink (memory or a store)."""

from __future__ import annotations

import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol

import jax
import numpy as np

from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.run._keys import chain_keys, root_key
from pytensor_blackjax.run._programs import programs_for
from pytensor_blackjax.run._progress import make_progress
from pytensor_blackjax.run._runners import Runner, available_cores, chain_mesh
from pytensor_blackjax.run._start import initial_points
from pytensor_blackjax.samplers import RunSize, Sampler

__all__ = ["RunOutput", "RunSettings", "Sink", "run"]


@dataclass(frozen=True)
class RunSettings:
    """How long and how wide to run; validated by the public ``sample``."""

    draws: int
    tune: int
    chains: int
    seed: int
    thin: int = 1
    chunk_size: int = 100
    chain_method: str = "auto"
    precision: str = "float64"

    @property
    def chunk(self) -> int:
        return max(1, min(self.chunk_size, max(self.draws, self.tune)))


class Sink(Protocol):
    """Receives what the driver produces, chunk by chunk (a store writes it to disk)."""

    def warmup_done(self, runner: Runner) -> None: ...

    def chunk(self, start: int, arrays: dict[str, dict[str, np.ndarray]], runner: Runner) -> None: ...


@dataclass
class RunOutput:
    """Everything sampled, on the host, ``(chain, draw, ...)``."""

    groups: dict[str, dict[str, np.ndarray]]
    num_draws: int
    interrupted: bool
    timings: dict[str, float]
    chain_method: str
    params: Any = None
    warmup_divergences: int = 0
    extra: dict = field(default_factory=dict)


def choose_method(sampler: Sampler, chains: int, requested: str) -> str:
    """The chain method that runs: "ensemble", "vectorized", "threaded" or "sharded".

    "auto" and "parallel" shard chains over the devices when there are several (accelerators, forced
    host devices, or several processes after ``pbj.distributed.initialize``). On one CPU device they
    run one chain per thread: vmapped NUTS makes every chain wait for the longest trajectory, while
    JAX releases the GIL so threads run chains on separate cores. "auto" vmaps chains on a single
    accelerator, or when only one core is available.
    """
    if sampler.ensemble:
        return "ensemble"
    if requested == "vectorized":
        return "vectorized"
    if requested not in ("auto", "parallel"):
        raise ValueError(f"chain_method={requested!r}: use 'auto', 'vectorized' or 'parallel'.")
    if jax.device_count() > 1 and (chains > 1 or jax.process_count() > 1):
        return "sharded"
    if chains > 1 and requested == "auto" and (jax.default_backend() != "cpu" or available_cores() == 1):
        return "vectorized"
    return "threaded"


def _with_precision(data: tuple, precision: str) -> tuple:
    """Data as host arrays of the run's precision (floats to float32, integers to int32)."""
    if precision == "float64":
        return data
    small = {"f": np.float32, "i": np.int32, "u": np.uint32}
    return tuple(np.asarray(d).astype(small.get(np.asarray(d).dtype.kind, np.asarray(d).dtype)) for d in data)


class _Interrupt:
    """Ctrl-C sets a flag checked at chunk boundaries; a second Ctrl-C stops at once."""

    def __init__(self):
        self.hit = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _pad_rows(rows: np.ndarray, start: int, chunk: int) -> tuple[np.ndarray, int]:
    part = rows[start : start + chunk]
    n_valid = len(part)
    if n_valid < chunk:
        part = np.concatenate([part, np.zeros((chunk - n_valid, *rows.shape[1:]), rows.dtype)])
    return part, n_valid


def run(
    compiled: CompiledModel,
    sampler: Sampler,
    settings: RunSettings,
    data: tuple,
    *,
    progressbar: bool = True,
    sink: Sink | None = None,
    resume: dict | None = None,
    log_likelihood: bool = False,
) -> RunOutput:
    """Sample ``compiled`` with ``sampler``; ``resume`` continues from a stored state.
    ``log_likelihood`` adds the pointwise log-likelihood of every draw (models that declare one)."""
    timings: dict[str, float] = {}
    method = choose_method(sampler, settings.chains, settings.chain_method)
    chunk = settings.chunk
    size = RunSize(draws=settings.draws * settings.thin, tune=settings.tune, chains=settings.chains)
    mesh = chain_mesh(settings.chains) if method == "sharded" else None
    programs = programs_for(
        compiled, sampler, size, chunk, settings.thin, method, mesh=mesh, precision=settings.precision
    )
    per_chain = chain_keys(settings.seed, settings.chains)
    keys = root_key(settings.seed) if method == "ensemble" else per_chain
    data = _with_precision(data, settings.precision)
    runner = Runner(programs, method, keys, data, mesh=mesh, precision=settings.precision)
    progress = make_progress(progressbar, settings.chains)
    groups: dict[str, dict[str, list]] = {"posterior": {}, "sample_stats": {}}
    done = resume["num_draws"] if resume else 0
    warmup_divergences = 0
    try:
        with _Interrupt() as interrupt:
            t0 = time.perf_counter()
            if resume is None or resume["phase"] == "warmup":
                positions = initial_points(compiled, per_chain, data, sampler.init_radius)
                if settings.precision == "float32":
                    positions = positions.astype(np.float32)
                runner.init(positions)
                # the sampling programs compile in the background while warmup runs
                runner.prepare_sampling(chunk, with_log_likelihood=log_likelihood)
                rows = sampler.schedule(settings.tune)
                progress.start("warmup", settings.tune)
                for start in range(0, settings.tune, chunk):
                    part, n_valid = _pad_rows(rows, start, chunk)
                    stats = runner.warmup(start, n_valid, part)
                    div = int(np.sum(stats.get("diverging", np.zeros(1))[..., :n_valid]))
                    warmup_divergences += div
                    step = stats.get("step_size")
                    progress.advance(
                        n_valid,
                        divergences=div,
                        step_size=None if step is None else float(np.mean(step[..., n_valid - 1])),
                    )
                    if interrupt.hit:
                        break
                runner.finish_warmup()
                if sink is not None and not interrupt.hit:
                    sink.warmup_done(runner)
            else:
                runner.load(resume["carry"], resume["params"])
            timings["warmup"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            # Ctrl-C during warmup without a store: adaptation ends where it is and one chunk of draws
            # is made, so the caller still gets a posterior of the usual layout. With a store, stop at
            # once: the store stays resumable and a resume repeats the (deterministic) warmup.
            last = settings.draws
            warmup_cut = interrupt.hit and sink is None
            if warmup_cut:
                interrupt.hit = False
                last = min(chunk, settings.draws)
            if not interrupt.hit:
                progress.start("sampling", settings.draws)
                progress.advance(done)
            while done < last and not interrupt.hit:
                positions, stats = runner.sample(done, min(chunk, settings.draws - done))
                n_valid = min(chunk, settings.draws - done)
                arrays = _chunk_groups(programs, data, positions, stats, n_valid, log_likelihood)
                if sink is not None:
                    sink.chunk(done, arrays, runner)
                for group, values in arrays.items():
                    for name, value in values.items():
                        groups.setdefault(group, {}).setdefault(name, []).append(value)
                done += n_valid
                step = stats.get("step_size")
                progress.advance(
                    n_valid,
                    divergences=int(np.sum(arrays["sample_stats"].get("diverging", 0))),
                    step_size=None if step is None else float(np.mean(step[..., 0])),
                )
            timings["sampling"] = time.perf_counter() - t1
            interrupted = interrupt.hit or warmup_cut
    finally:
        progress.stop()
        runner.close()
    if interrupted:
        cut = " Warmup was cut short, so these draws may not be from the posterior." if warmup_cut else ""
        warnings.warn(
            f"sampling interrupted: returning the {done} draws per chain made so far "
            f"(of {settings.draws} asked for).{cut}",
            RuntimeWarning,
            stacklevel=3,
        )
    out = {g: {k: np.concatenate(v, axis=1) for k, v in vals.items()} for g, vals in groups.items() if vals}
    return RunOutput(
        out, done, interrupted, timings, method, params=runner.params, warmup_divergences=warmup_divergences
    )


def _chunk_groups(programs, data, positions, stats, n_valid, log_likelihood) -> dict[str, dict]:
    """One chunk's arrays by ArviZ group: constrained draws, sample stats, unconstrained draws."""
    chains, chunk = positions.shape[:2]
    flat = positions.reshape(chains * chunk, -1)
    constrained = jax.device_get(programs.constrain(flat, data))
    posterior = {
        k: np.asarray(v).reshape(chains, chunk, *np.shape(v)[1:])[:, :n_valid] for k, v in constrained.items()
    }
    sample_stats = {}
    for k, v in stats.items():
        v = np.asarray(v)
        if v.ndim == 1:  # shared across chains (ensemble samplers)
            v = np.broadcast_to(v[None], (chains, *v.shape))
        sample_stats[k] = v[:, :n_valid]
    out = {"posterior": posterior, "sample_stats": sample_stats}
    if log_likelihood:
        ll = jax.device_get(programs.log_likelihood(flat, data))
        out["log_likelihood"] = {
            k: np.asarray(v).reshape(chains, chunk, *np.shape(v)[1:])[:, :n_valid] for k, v in ll.items()
        }
    return out
