"""The driver: the same loop for every sampler and chain layout - start points, warmup and sampling in
chunks, progress, Ctrl-C at chunk boundaries, and hand-off of every chunk to a sink (a store).

Where things happen: the chunk programs are compiled in `_programs`, called (threads, vmap, devices)
by the chain layouts of `_layouts`, and driven here; start points come from `_start`, keys from
`_keys`; a sink receives each chunk and a `Checkpoint` of the chains after it.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol, TypeVar

import jax
import numpy as np

from pytensor_blackjax._checkpoint import Checkpoint, ResumePoint
from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.run._interrupt import Interrupt
from pytensor_blackjax.run._keys import chain_keys, root_key, split_chains
from pytensor_blackjax.run._layouts import ChainLayout, choose_layout
from pytensor_blackjax.run._programs import Programs, build_programs, float32_scope, programs_for
from pytensor_blackjax.run._progress import make_progress
from pytensor_blackjax.run._settings import RunOutput, RunSettings
from pytensor_blackjax.run._start import initial_points, random_starts
from pytensor_blackjax.run._until import Until, UntilCheck, warn_short
from pytensor_blackjax.samplers import RunSize, Sampler

__all__ = ["RunOutput", "RunSettings", "Sink", "run"]

T = TypeVar("T")


class Sink(Protocol):
    """Receives what the driver produces, chunk by chunk (a store writes it to disk)."""

    def warmup_done(self, checkpoint: Checkpoint) -> None: ...

    def chunk(self, start: int, arrays: dict[str, dict[str, np.ndarray]], checkpoint: Checkpoint) -> None: ...

    def warmup_progress(self, steps_done: int, tune: int, step_size: float | None, divergences: int) -> None:
        """Where warmup is, after each warmup chunk (for watchers; not a checkpoint)."""

    def start_points(self, positions: np.ndarray) -> None:
        """The chains' starting points, ``(chains, dims)``, when they were given (``initvals``): a resume
        that repeats the warmup starts there again."""


@dataclass
class _Chunks:
    """Draws collected so far, by ArviZ group."""

    groups: dict[str, dict[str, list[np.ndarray]]]
    done: int = 0

    def add(self, arrays: dict[str, dict[str, np.ndarray]], n_valid: int) -> None:
        for group, values in arrays.items():
            for name, value in values.items():
                self.groups.setdefault(group, {}).setdefault(name, []).append(value)
        self.done += n_valid

    def joined(self) -> dict[str, dict[str, np.ndarray]]:
        groups = {g: vals for g, vals in self.groups.items() if vals}
        return {g: {k: np.concatenate(v, axis=1) for k, v in vals.items()} for g, vals in groups.items()}


def run(
    compiled: CompiledModel,
    sampler: Sampler,
    settings: RunSettings,
    data: tuple,
    *,
    progressbar: bool = True,
    sink: Sink | None = None,
    resume: ResumePoint | None = None,
    log_likelihood: bool = False,
    until: Until | None = None,
    previous: dict[str, np.ndarray] | None = None,
    start: np.ndarray | None = None,
) -> RunOutput:
    """Sample ``compiled`` with ``sampler``; ``resume`` continues from a stored state.
    ``log_likelihood`` adds the pointwise log-likelihood of every draw (models that declare one).

    ``start``: the chains' starting points, ``(chains, dims)`` (from ``initvals``), instead of the
    default ones; the sink records them. ``settings.keep_warmup`` adds the
    ``warmup_posterior`` and ``warmup_sample_stats`` groups, ``settings.include_unconstrained`` the
    ``unconstrained_posterior`` group.

    ``until``: stop at the first chunk boundary where its targets are met (``settings.draws`` is then
    the most there may be); ``previous`` holds the posterior draws made before ``resume``, which its
    checks include."""
    # the chunk programs' length: a call holds one chunk, or several while calls are quick (`CallSizes`)
    values = values_per_draw(compiled, log_likelihood=log_likelihood)
    calls = CallSizes(
        settings.chunk, call_capacity(settings, values, fixed=sink is not None or until is not None)
    )
    size = RunSize(draws=settings.draws * settings.thin, tune=settings.tune, chains=settings.chains)
    layout_cls = choose_layout(sampler.ensemble, settings.chains, settings.chain_method)
    programs = programs_for(
        compiled, sampler, layout_cls, size, calls.capacity, settings.thin,
        mesh=layout_cls.mesh_for(settings.chains), precision=settings.precision,
        warmup_draws=settings.keep_warmup,
    )  # fmt: skip
    keys = chain_keys(settings.seed, settings.chains)
    data = _with_precision(data, settings.precision)
    layout = layout_cls(programs, keys, settings.seed, data, precision=settings.precision)
    progress = make_progress(progressbar, settings.chains)
    chunks = _Chunks({"posterior": {}, "sample_stats": {}}, done=resume.num_draws if resume else 0)
    warmup_chunks = _Chunks({}) if settings.keep_warmup else None
    timings: dict[str, float] = {}
    warmup_divergences, stop, check = 0, None, None
    interrupt, finished = Interrupt(), False
    try:
        with interrupt:
            t0 = time.perf_counter()
            if resume is None or resume.phase == "warmup":
                # every program compiles in the background from here on, while the start points are found
                rows = sampler.schedule(settings.tune)  # made once: `_warmup` runs along it
                first = _pad_rows(rows, 0, calls.capacity)[0] if len(rows) else None
                layout.prepare(
                    (settings.chains, compiled.num_dims),
                    calls.capacity,
                    first,
                    with_log_likelihood=log_likelihood,
                )
                float32 = settings.precision == "float32"
                positions: np.ndarray | None = None
                if resume is not None and resume.start_points is not None:
                    positions = np.asarray(resume.start_points, np.float64)
                elif start is not None:
                    positions = np.asarray(start, np.float64)
                    if sink is not None:
                        sink.start_points(positions)
                elif not layout.host_chains:
                    positions = initial_points(compiled, keys, data, sampler.init_radius)
                begin: Callable[[], object]
                if positions is None:  # the warmup-init program judges the random starts
                    begin = partial(
                        random_starts, layout, compiled, data, sampler.init_radius, float32=float32
                    )
                else:
                    begin = partial(layout.init, positions.astype(np.float32) if float32 else positions)
                warmup_divergences = _warmup(layout, rows, settings, begin, progress, interrupt, calls,
                                             sink=sink, log_likelihood=log_likelihood,
                                             kept=warmup_chunks, programs=programs, data=data)  # fmt: skip
                if sink is not None and not interrupt.hit:
                    sink.warmup_done(layout.checkpoint(0))
            else:
                structure = _state_structure(compiled, sampler, size, settings, data)
                layout.restore(resume, structure)
            timings["warmup"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            # Ctrl-C during warmup: the sampling phase is skipped (its programs are neither awaited nor
            # run); with a store, a resume repeats the (deterministic) warmup.
            check = None if until is None else UntilCheck(until, settings.chunk, previous)
            if not interrupt.hit:
                progress.start("sampling", settings.draws)
                progress.advance(chunks.done)
            # a resumed run may have committed its stopping chunk before it was killed
            stop = check.stop_reason() if check is not None and check.done >= check.next else None
            while chunks.done < settings.draws and not interrupt.hit and stop is None:
                arrays = _sample_chunk(
                    layout, programs, settings, data, chunks, sink, progress, log_likelihood, calls,
                    compiled.blocks if settings.include_unconstrained else None,
                )  # fmt: skip
                if check is not None:
                    check.add(arrays["posterior"])
                    stop = check.stop_reason()
                    progress.note(check.progress_note())
                    seconds = check.until.max_seconds
                    if stop is None and seconds is not None:
                        stop = "max_seconds" if time.perf_counter() - t1 >= seconds else None
            timings["sampling"] = time.perf_counter() - t1
            interrupted = interrupt.hit
            finished = True
    finally:
        progress.stop()
        # after a Ctrl-C (or an error) nothing waits for programs compiling in the background
        layout.close(wait=finished and not interrupt.hit)
    extra = {}
    if until is not None:
        check = check or UntilCheck(until, settings.chunk, chunks.joined().get("posterior"))
        stop = "interrupted" if interrupted else stop or "max_draws"
        final = check.final()
        extra = {"stop_reason": stop, "until": final, "checks": check.checks}
        extra["check_seconds"] = check.check_seconds
        if stop in ("max_draws", "max_seconds"):
            warn_short(stop, final, until, stacklevel=3)
    if interrupted and chunks.done:  # no draws at all: the caller raises `interrupted_before_draws`
        warnings.warn(
            f"sampling interrupted: returning the {chunks.done} draws per chain made so far "
            f"(of {settings.draws} asked for).",
            RuntimeWarning,
            stacklevel=3,
        )
    groups = chunks.joined()
    if warmup_chunks is not None:
        groups.update({f"warmup_{g}": values for g, values in warmup_chunks.joined().items()})
    return RunOutput(groups, chunks.done, interrupted, timings, layout.name, params=layout.params,
                     warmup_divergences=warmup_divergences, extra=extra)  # fmt: skip


def _warmup(layout: ChainLayout, rows: np.ndarray, settings: RunSettings, begin: Callable[[], object],
            progress, interrupt: Interrupt, calls: CallSizes, *, sink: Sink | None, log_likelihood: bool,
            kept: _Chunks | None = None, programs: Programs | None = None,
            data: tuple = ()) -> int:  # fmt: skip
    """Warmup in chunks, started by ``begin()`` (the layout's ``init`` at the chains' starting points),
    along the sampler's schedule ``rows`` (one per step); returns
    the number of divergent warmup steps. ``kept`` collects the warmup draws and stats (a run with
    ``keep_warmup``), constrained by ``programs``. After a Ctrl-C it returns at the next chunk boundary
    without finishing the adaptation."""
    if interrupt.hit:  # while the start points were found
        return 0
    begin()
    if interrupt.hit:
        return 0
    # a window-end program of its own: chunks stop at the windows' ends, where it runs
    window_end = layout.programs.window_end is not None
    ends = np.flatnonzero(rows[:, 1] == 1) + 1 if window_end else np.zeros(0, int)
    progress.start("warmup", settings.tune)
    divergences, start = 0, 0
    while start < settings.tune:
        if interrupt.hit:
            return divergences  # no adapted parameters: nothing to sample with
        stop = _segment_end(start, calls.next(settings.tune - start), ends)
        part, n_valid = _pad_rows(rows[:stop], start, calls.capacity)
        drawn, stats = calls.timed(n_valid, partial(layout.warmup, start, n_valid, part))
        if window_end and rows[stop - 1, 1] == 1:
            layout.window_end()
        if kept is not None and drawn is not None:
            kept.add(_chunk_groups(programs, data, drawn, stats, n_valid, False), n_valid)
        div = int(np.sum(stats.get("diverging", np.zeros(1))[..., :n_valid]))
        divergences += div
        step = stats.get("step_size")
        last_step = None if step is None else float(np.mean(step[..., n_valid - 1]))
        progress.advance(n_valid, divergences=div, step_size=last_step)
        if sink is not None:
            sink.warmup_progress(start + n_valid, settings.tune, last_step, divergences)
        start = stop
    if not layout.await_prepared(lambda: interrupt.hit):
        return divergences
    layout.finish_warmup()
    return divergences


def _sample_chunk(layout: ChainLayout, programs: Programs, settings: RunSettings, data: tuple,
                  chunks: _Chunks, sink: Sink | None, progress, log_likelihood: bool, calls: CallSizes,
                  blocks: tuple | None = None) -> dict:  # fmt: skip
    """One call's draws (a chunk, or several: `CallSizes`): run it, hand it to the sink with the
    chains' state after it, keep it; ``blocks`` (the model's layout) adds the unconstrained draws."""
    start = chunks.done
    n_valid = calls.next(settings.draws - start)
    positions, stats = calls.timed(n_valid, partial(layout.sample, start, n_valid))
    arrays = _chunk_groups(programs, data, positions, stats, n_valid, log_likelihood, blocks)
    if sink is not None:
        sink.chunk(start, arrays, layout.checkpoint(start + n_valid))
    chunks.add(arrays, n_valid)
    step = stats.get("step_size")
    progress.advance(
        n_valid,
        divergences=int(np.sum(arrays["sample_stats"].get("diverging", 0))),
        step_size=None if step is None else float(np.mean(step[..., 0])),
    )
    return arrays


def _with_precision(data: tuple, precision: str) -> tuple:
    """Data as host arrays of the run's precision (floats to float32, integers to int32)."""
    if precision == "float64":
        return data
    small = {"f": np.float32, "i": np.int32, "u": np.uint32}
    return tuple(np.asarray(d).astype(small.get(np.asarray(d).dtype.kind, np.asarray(d).dtype)) for d in data)


def _segment_end(start: int, n: int, ends: np.ndarray) -> int:
    """The end of the warmup steps ``[start, stop)`` one call of the warmup program runs: at most
    ``n`` of them, and none across one of ``ends`` (the step counts after which a window ends)."""
    after = ends[ends > start]
    return min(start + n, int(after[0])) if len(after) else start + n


# One call of the chunk programs costs ~0.3-0.4 ms of host work per chain besides the draws (the
# call, its outputs' transfer, the constrained draws' program, the threads' hand-off): 3.5 us a draw
# at 100 draws a call, a third of a draw's time on a 10-parameter regression. While calls are quick a
# call holds several chunks, up to `MAX_CALL_DRAWS` draws and `MAX_CALL_VALUES` numbers per chain in
# each of its outputs (the programs' buffers: positions, constrained draws, pointwise log-likelihood),
# and takes about `CALL_SECONDS`, so that Ctrl-C and the progress bar
# still answer within a fraction of a second. The draws do not depend on it (keys follow the step).
MAX_CALL_DRAWS = 1000
MAX_CALL_VALUES = 250_000
CALL_SECONDS = 0.1


def values_per_draw(compiled: CompiledModel, *, log_likelihood: bool) -> int:
    """The numbers per draw of a call's largest output: the position, the constrained draw (parameters
    and deterministics) or, with ``log_likelihood``, the pointwise log-likelihood (shapes of the
    model's own data)."""
    sizes = [compiled.num_dims, sum(math.prod(s) for s in compiled.output_shapes.values())]
    if log_likelihood:
        sizes.append(sum(math.prod(s) for s in compiled.loglik_shapes.values()))
    return max(sizes)


def call_capacity(settings: RunSettings, values: int, *, fixed: bool) -> int:
    """The most draws (or warmup steps) one call of the chunk programs holds, for outputs of ``values``
    numbers per draw (`values_per_draw`): ``settings.chunk`` where every call must end at a chunk's
    boundary (``fixed``: a store, an ``until`` run) or where processes run the programs together (their
    calls must agree); else up to `MAX_CALL_DRAWS`, never fewer than one chunk."""
    chunk = settings.chunk
    if fixed or jax.process_count() > 1:
        return chunk
    most = min(MAX_CALL_DRAWS, max(settings.draws, settings.tune), MAX_CALL_VALUES // max(1, values))
    return max(chunk, most)


class CallSizes:
    """How many draws (or warmup steps) the next call runs: one chunk at first, then as many as take
    about `CALL_SECONDS` at the pace of the calls so far, between one chunk and ``capacity``."""

    def __init__(self, chunk: int, capacity: int):
        self.chunk, self.capacity, self.size = chunk, capacity, chunk

    def next(self, remaining: int) -> int:
        return min(self.size, remaining)

    def timed(self, n: int, call: Callable[[], T]) -> T:
        """``call()``, a call of ``n`` steps, timed for the next call's size (`took`)."""
        began = time.perf_counter()
        out = call()
        self.took(n, time.perf_counter() - began)
        return out

    def took(self, n: int, seconds: float) -> None:
        """A call ran ``n`` steps in ``seconds``; a short call (the last one, or one a window's end
        cut) says little about the pace and changes nothing."""
        if self.capacity > self.chunk and n >= self.chunk:
            pace = CALL_SECONDS / max(seconds, 1e-9) * n
            self.size = int(min(self.capacity, max(self.chunk, pace)))


def _pad_rows(rows: np.ndarray, start: int, chunk: int) -> tuple[np.ndarray, int]:
    part = rows[start : start + chunk]
    n_valid = len(part)
    if n_valid < chunk:
        part = np.concatenate([part, np.zeros((chunk - n_valid, *rows.shape[1:]), rows.dtype)])
    return part, n_valid


def _state_structure(compiled, sampler, size, settings, data) -> jax.tree_util.PyTreeDef:
    """The pytree structure of ``(state, params)`` after warmup, for rebuilding a stored state."""
    base = build_programs(compiled, sampler, size.only(sampler.size_fields), settings.chunk, settings.thin)
    shape: tuple[int, ...] = (compiled.num_dims,)
    if sampler.ensemble:
        key, shape = root_key(settings.seed), (settings.chains, compiled.num_dims)
    else:
        key = split_chains(chain_keys(settings.seed, 1))[0]
    float32 = settings.precision == "float32"
    with float32_scope() if float32 else contextlib.nullcontext():
        position = np.zeros(shape, np.float32 if float32 else np.float64)
        out = jax.eval_shape(lambda k, p, d: base.finish(base.warmup_init(k, p, d)), key, position, data)
    return jax.tree.structure(out)


def _chunk_groups(programs, data, positions, stats, n_valid, log_likelihood, blocks=None) -> dict[str, dict]:
    """One chunk's arrays by ArviZ group: constrained draws, sample stats, pointwise log-likelihood, and
    (given the model's ``blocks``) the unconstrained draws, one array per value."""
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
    if blocks is not None:
        kept = np.asarray(positions)[:, :n_valid]
        out["unconstrained_posterior"] = {
            b.name: kept[..., b.start : b.start + b.size].reshape(chains, n_valid, *b.shape) for b in blocks
        }
    if log_likelihood:
        ll = jax.device_get(programs.log_likelihood(flat, data))
        out["log_likelihood"] = {
            k: np.asarray(v).reshape(chains, chunk, *np.shape(v)[1:])[:, :n_valid] for k, v in ll.items()
        }
    return out
