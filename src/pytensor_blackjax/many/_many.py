"""``sample_many``: one model, many data sets; fits run on this machine's cores or as Dask tasks, and come
back as one DataTree with a leading ``fit`` dimension and a ``fits`` table."""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pytensor_blackjax._validate import check_count, check_seed
from pytensor_blackjax.compile import CompiledModel, compile
from pytensor_blackjax.many._fit import OK, FitJob, FitOptions, FitOutcome, fit_seed, run_fit, store_path
from pytensor_blackjax.model import Model
from pytensor_blackjax.samplers import Sampler, resolve

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["assemble", "sample_many"]

FIT_DIM = "fit"
# a fit's own attrs that differ from fit to fit: they go to the `fits` table, not the stacked root
_PER_FIT_ATTRS = ("seed", "sampling_time", "warmup_time", "total_time", "warmup_divergences", "interrupted")


def sample_many(
    model: Model | CompiledModel,
    datasets: Sequence[Mapping[str, Any]] | Mapping[Any, Mapping[str, Any]],
    *,
    seed: int | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    sampler: str | Sampler = "nuts",
    chain_method: str = "auto",
    thin: int = 1,
    chunk_size: int = 100,
    precision: str = "float64",
    log_likelihood: bool = False,
    progressbar: bool = True,
    client: Any = None,
    store_dir: str | os.PathLike | None = None,
    fits_at_once: int | None = None,
) -> xr.DataTree:
    """Fit one model to many data sets and return every fit in one DataTree.

    The model is compiled once; each data set swaps in as ``data=`` does in ``sample`` (same shapes, no
    recompilation). Fit ``i`` gets the seed ``fit_seed(seed, i)``, so its draws equal those of
    ``pbj.sample(model, data=datasets[i], seed=fit_seed(seed, i), ...)`` wherever and in whatever order
    it runs. A fit that fails (bad data, a sampler error) gets its error as its status and NaN draws;
    the others are unaffected.

    Args:
        model: a `Model` or its `CompiledModel`.
        datasets: a sequence of data dicts (name -> array, as ``sample(data=...)``), or a mapping
            label -> data dict (the labels become the ``fit`` coordinate).
        seed: non-negative integer; None picks one (recorded in attrs).
        draws, tune, chains, sampler, chain_method, thin, chunk_size, precision, log_likelihood: as in
            ``sample``, the same for every fit.
        progressbar: show how many fits are done.
        client: a ``dask.distributed.Client``, or a Dask cluster such as ``pbj.many.local_cluster()``
            (which a plain script can start without an ``if __name__ == "__main__":`` guard): run each
            fit as a Dask task on that cluster (needs ``pip install 'pytensor-blackjax[dask]'``).
            None: run on this machine's cores.
        store_dir: folder for one Zarr store per fit (``fit-00012.zarr``). A fit whose store is partial
            (its worker died) resumes from its last committed chunk; a complete one is read back. The
            folder must be reachable from every worker.
        fits_at_once: local runs only: at most how many fits run at the same time (default: one per
            available core): one in this process, the others in helper processes started for this call
            (JAX runs the programs of one CPU device in turn, so threads of one process would share one
            core): with the call when there are 16 fits or more (their start-up then overlaps this
            process's compilation), otherwise once the fits done so far show that the remaining ones
            outweigh a helper's start-up. Models that do not pickle run in this process only.

    Returns:
        ``xarray.DataTree``: every group of a single fit with a leading ``fit`` dimension (``posterior``
        dims ``(fit, chain, draw, ...)``), and a group ``fits`` with, per fit: ``status`` ("ok" or the
        error), ``seed``, ``attempts`` (task starts, from the store's attempt log), ``resumed_from``
        (draws per chain already in the store when the last attempt began) and ``seconds``.

    Raises:
        ValueError, TypeError: invalid arguments (the same for every fit), named with the fix.
        ImportError: ``client`` given without dask.distributed installed.

    Example:
        >>> import numpy as np, pytensor_blackjax as pbj
        >>> m = pbj.ModelBuilder(); mu = m.param("mu"); y = m.data("y", np.zeros(10))
        >>> m.add_logp(-0.5 * mu**2 - 0.5 * ((y - mu) ** 2).sum())
        >>> sets = [{"y": np.random.default_rng(i).normal(i, 1, 10)} for i in range(4)]
        >>> tree = pbj.sample_many(m.build(), sets, seed=1, chains=2, progressbar=False)
        >>> tree["posterior"]["mu"].dims
        ('fit', 'chain', 'draw')
    """
    labels, data_list = _split_datasets(datasets)
    seed = check_seed(seed)
    options = FitOptions(
        draws=check_count("draws", draws),
        tune=check_count("tune", tune, minimum=0),
        chains=check_count("chains", chains),
        sampler=resolve(sampler),
        chain_method=chain_method,
        thin=check_count("thin", thin),
        chunk_size=check_count("chunk_size", chunk_size),
        precision=precision,
        log_likelihood=bool(log_likelihood),
    )
    compiled = model if isinstance(model, CompiledModel) else compile(model)
    if store_dir is not None:
        os.makedirs(store_dir, exist_ok=True)
    jobs = [
        FitJob(i, fit_seed(seed, i), data, None if store_dir is None else store_path(store_dir, i))
        for i, data in enumerate(data_list)
    ]
    if client is not None:
        from pytensor_blackjax.many._dask import run_on_dask

        outcomes = run_on_dask(client, compiled, jobs, options, progressbar=progressbar)
    else:
        workers = _fits_at_once(fits_at_once, len(jobs))
        outcomes = _run_local(compiled, jobs, options, workers, progressbar=progressbar)
    tree = assemble(outcomes, labels)
    tree.attrs.update({"seed": seed, "num_fits": len(jobs), "scheduler": _where(client)})
    return tree


def _split_datasets(datasets: Any) -> tuple[list, list]:
    if isinstance(datasets, Mapping):
        return list(datasets.keys()), list(datasets.values())
    if isinstance(datasets, str | bytes) or not isinstance(datasets, Sequence):
        raise TypeError(
            f"datasets must be a list of data dicts (name -> array) or a dict label -> data dict, "
            f"got {type(datasets).__name__}; e.g. datasets=[{{'y': y1}}, {{'y': y2}}]."
        )
    if len(datasets) == 0:
        raise ValueError("datasets is empty: give at least one data dict, e.g. datasets=[{'y': y1}].")
    return list(range(len(datasets))), list(datasets)


def _fits_at_once(requested: int | None, num_fits: int) -> int:
    from pytensor_blackjax.run._layouts import available_cores

    if requested is not None:
        return min(num_fits, check_count("fits_at_once", requested))
    # one fit per core: a fit's chain threads share one core (JAX runs one CPU device's programs in turn)
    return max(1, min(num_fits, available_cores()))


def _where(client: Any) -> str:
    if client is None:
        return "local"
    return str(getattr(getattr(client, "scheduler", None), "address", None) or type(client).__name__)


def _run_local(
    compiled: CompiledModel, jobs: list[FitJob], options: FitOptions, lanes: int, *, progressbar: bool
) -> list[FitOutcome]:
    """Fits on this machine: one lane in this process and, when `_HelperTimer` says they pay off,
    ``lanes - 1`` in helper processes (see `_worker` for why threads would not do); each lane takes the
    next fit from one queue."""
    pending: queue.SimpleQueue = queue.SimpleQueue()
    for queued in jobs:
        pending.put(queued)
    outcomes: dict[int, FitOutcome] = {}
    stop = threading.Event()
    payload = _payload(compiled) if lanes > 1 else None
    with _Progress(len(jobs), progressbar) as progress:
        lock = threading.Lock()

        def report(outcome: FitOutcome) -> None:
            with lock:
                outcomes[outcome.index] = outcome
                progress.advance(outcome)

        def next_job() -> FitJob | None:
            if stop.is_set():
                return None
            try:
                return pending.get_nowait()
            except queue.Empty:
                return None

        helpers: list[_HelperLane] = []
        # set once `_HelperTimer` says helpers pay off; never before this process's first fit is done,
        # so that the programs are in the program store and a helper loads them rather than compiling
        # them a second time
        go = threading.Event()

        def start_helpers() -> None:
            assert payload is not None  # only models that pickle get helpers
            helpers.extend(_HelperLane(payload, options, next_job, report, go) for _ in range(lanes - 1))

        timer = _HelperTimer()
        try:
            if payload is not None and timer.at_once(len(jobs)):
                start_helpers()
            while (job := next_job()) is not None:
                t0 = time.perf_counter()
                report(run_fit(compiled, job, options))
                if (
                    payload is not None
                    and not go.is_set()
                    and timer.worth_it(time.perf_counter() - t0, pending.qsize())
                ):
                    if not helpers:
                        start_helpers()
                    go.set()
            for helper in helpers:
                helper.finish()
        except BaseException:
            stop.set()  # Ctrl-C: the fits running finish or are killed with their process, no new ones start
            raise
    return [outcomes[job.index] for job in jobs]


class _HelperTimer:
    """When helper processes pay off, from the number of fits and the fits this process has run so far.

    A helper needs a start-up before its own first draw (Python and JAX, the model compiled, its
    programs loaded from the program store once this process's first fit has put them there). Helpers
    take fits once the remaining fits, at the pace of a fit after the first, are worth at least twice
    this process's first fit (about a helper's start-up once the programs are in the store): a few
    short fits stay here, where compiling once is most of the time. With many fits (`AT_ONCE` or more)
    the helpers are started with the call and wait, ready, for that decision, so that their start-up
    overlaps this process's compilation; helpers that were never needed are ended with the call.
    """

    AT_ONCE = 16

    def __init__(self):
        self.first: float | None = None

    def at_once(self, num_fits: int) -> bool:
        return num_fits >= self.AT_ONCE

    def worth_it(self, seconds: float, remaining: int) -> bool:
        if self.first is None:
            self.first = seconds
            return False
        return remaining * seconds > 2 * self.first


class _HelperLane:
    """One helper process and the thread that feeds it fits until none is left; a fit whose process
    died fails alone."""

    def __init__(self, payload: bytes, options: FitOptions, next_job, report, go: threading.Event):
        from pytensor_blackjax.many._dask import child_environment

        env = child_environment()
        # one BLAS/OpenMP thread per helper, as Dask gives its workers: the cores are the helpers' already
        env.update({name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pytensor_blackjax.many._worker", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._next_job, self._report, self._go = next_job, report, go
        self._lock = threading.Lock()
        self._busy = False  # a fit is in the helper: wait for it
        self._ended = False  # no fit is left: take none
        self._thread = threading.Thread(target=self._feed, args=(payload, options), daemon=True)
        self._thread.start()

    def _take(self) -> FitJob | None:
        with self._lock:
            job = None if self._ended else self._next_job()
            self._busy = job is not None
            return job

    def _feed(self, payload: bytes, options: FitOptions) -> None:
        from pytensor_blackjax.many._worker import READY, receive, send

        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None  # both are pipes
        job = None
        try:
            send(stdin, (payload, options))
            if receive(stdout) != READY:
                raise EOFError("the helper process did not start")
            while not self._go.wait(0.2):  # its first fit would compile the programs again
                if self._ended:
                    return
            while (job := self._take()) is not None:
                send(stdin, job)
                self._report(receive(stdout))
                job = None
            send(stdin, None)
        except (EOFError, OSError):
            if job is not None:
                code = self.process.wait()
                self._report(
                    FitOutcome(
                        job.index, job.seed, f"WorkerDied: its helper process ended (exit code {code})"
                    )
                )

    def finish(self) -> None:
        """No fit is left to start: end the helper now unless it holds a fit, then wait for it."""
        with self._lock:
            self._ended = True
            if not self._busy:
                self.process.kill()  # still starting, or waiting for a fit: it holds nothing
        while self._thread.is_alive():
            self._thread.join(0.2)  # short waits: Ctrl-C reaches this thread
        assert self.process.stdin is not None and self.process.stdout is not None  # both are pipes
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def _payload(compiled: CompiledModel) -> bytes | None:
    """The model for the helper processes, or None (run in this process only) if it does not pickle."""
    from pytensor_blackjax.store._model_io import dump_model

    try:
        return dump_model(compiled.model)
    except (pickle.PicklingError, TypeError, AttributeError):
        return None


class _Progress:
    """Fits done / failed, on stderr; a no-op when switched off."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.done, self.failed = total, enabled, 0, 0
        self._bar = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("fits"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("", total=self.total)
        return self

    def advance(self, outcome: FitOutcome) -> None:
        self.done += 1
        self.failed += outcome.status != OK
        if self._bar is not None:
            note = f"{self.failed} failed" if self.failed else ""
            self._bar.update(self._task, advance=1, description=note)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.stop()
        return False


def assemble(outcomes: Sequence[FitOutcome], labels: Sequence[Any]) -> xr.DataTree:
    """Stack the fits' DataTrees along a leading ``fit`` dimension and add the ``fits`` table.

    Failed fits are NaN in every stacked group (integer and boolean variables become floating point
    when some fit failed, so that NaN can mark them).
    """
    import xarray as xr

    outcomes = sorted(outcomes, key=lambda o: o.index)
    good = [o for o in outcomes if o.tree is not None]
    fit_coord = {FIT_DIM: list(labels)}
    children: dict[str, xr.Dataset] = {}
    root_attrs: dict = {}
    if good:
        template = good[0].tree
        assert template is not None
        root_attrs = {k: v for k, v in template.attrs.items() if k not in _PER_FIT_ATTRS}
        for group in template.children:
            parts = [_group_or_nan(o.tree, template, group) for o in outcomes]
            if len(good) < len(outcomes):
                parts = [_as_float(p) for p in parts]
            stacked = xr.concat(
                parts,
                dim=FIT_DIM,
                data_vars="all",
                coords="minimal",
                compat="override",
                join="override",
                combine_attrs="override",
            )
            children[group] = stacked.assign_coords(fit_coord)
    children["fits"] = xr.Dataset(
        {
            "status": (FIT_DIM, np.array([o.status for o in outcomes], dtype=object).astype(str)),
            "seed": (FIT_DIM, np.array([o.seed for o in outcomes], dtype=np.uint64)),
            "attempts": (FIT_DIM, np.array([o.attempts for o in outcomes], dtype=np.int64)),
            "resumed_from": (FIT_DIM, np.array([o.resumed_from for o in outcomes], dtype=np.int64)),
            "seconds": (FIT_DIM, np.array([o.seconds for o in outcomes], dtype=np.float64)),
        },
        coords=fit_coord,
    )
    tree = xr.DataTree.from_dict({f"/{k}": v for k, v in children.items()})
    tree.attrs.update(root_attrs)
    tree.attrs["num_fits_failed"] = len(outcomes) - len(good)
    return tree


def _group_or_nan(tree: xr.DataTree | None, template: xr.DataTree, group: str) -> xr.Dataset:
    ref = template[group].to_dataset()
    if tree is not None and group in tree.children:
        return tree[group].to_dataset()
    return _as_float(ref).copy(deep=True).map(lambda v: v * np.nan, keep_attrs=True)


def _as_float(ds: xr.Dataset) -> xr.Dataset:
    """Numeric variables as a floating type that can hold NaN (floats stay as they are)."""
    out = {}
    for name, var in ds.data_vars.items():
        kind = var.dtype.kind
        out[name] = var if kind in "fc" else var.astype(np.float64 if kind in "biu" else object)
    return ds.assign(out)
