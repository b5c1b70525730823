"""Every Dask-specific line of ``sample_many``: fits as tasks on a ``dask.distributed`` cluster.

The model travels once per worker process, as a Dask datum computed by a task (`_ship`): Dask keeps it
in the worker's memory, hands the same object to every fit task there (so each worker compiles once),
and recomputes it from its task if the worker holding it dies. Fit tasks are impure (``pure=False``)
and retried, so a task whose worker was killed runs again elsewhere; with a store it resumes.

`local_cluster` is a Dask cluster on this machine whose worker processes are separate programs
(``python -c _WORKER_PROGRAM``, each a Dask nanny and its worker): ``LocalCluster`` starts
its workers with ``multiprocessing`` ``spawn``, which re-runs the user's script in every worker unless
its top level sits under ``if __name__ == "__main__":``; a program started by ``subprocess`` never
imports the user's script. Each such program reads a pipe from the process that started it and ends,
with its worker, when that pipe closes: on ``close()``, and when the starting process dies in any way
(Ctrl-C, SIGKILL), so no worker outlives its user.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from pytensor_blackjax.compile import CompiledModel, compile
from pytensor_blackjax.many._fit import FitJob, FitOptions, FitOutcome, run_fit

__all__ = ["ModelShipment", "connect", "local_cluster", "run_on_dask"]

INSTALL_HINT = "pip install 'pytensor-blackjax[dask]'"
# task reruns after an error inside the task itself; reruns after a worker death are Dask's own
# (``distributed.scheduler.allowed-failures``, 3 by default)
RETRIES = 2


def _require_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"sample_many(client=...) runs fits on a Dask cluster and needs dask.distributed: {INSTALL_HINT} "
            "(or leave client=None to run on this machine)."
        ) from exc
    return distributed


class ModelShipment:
    """The model as bytes for the trip to a worker, compiled once in each process that holds it."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self._compiled: CompiledModel | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"payload": self.payload}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["payload"])  # type: ignore[misc]  # this class, unpickled: not a subclass

    def compiled(self) -> CompiledModel:
        with self._lock:  # a worker with several threads compiles once
            if self._compiled is None:
                self._compiled = compile(pickle.loads(self.payload))
            return self._compiled


def _ship(payload: bytes) -> ModelShipment:
    return ModelShipment(payload)


def _fit_task(shipment: ModelShipment, job: FitJob, options: FitOptions) -> FitOutcome:
    return run_fit(shipment.compiled(), job, options)


def run_on_dask(
    client: Any, compiled: CompiledModel, jobs: list[FitJob], options: FitOptions, *, progressbar: bool
) -> list[FitOutcome]:
    """Submit one task per fit to ``client`` and gather the outcomes (a lost task's error becomes its
    fit's status)."""
    distributed = _require_distributed()
    if isinstance(client, distributed.deploy.Cluster):
        with distributed.Client(client) as connected:
            return run_on_dask(connected, compiled, jobs, options, progressbar=progressbar)
    if not isinstance(client, distributed.Client):
        raise TypeError(
            f"client={client!r} is neither a dask.distributed.Client nor a Dask cluster; pass one, e.g. "
            "client=pbj.many.local_cluster() or client=dask.distributed.Client('tcp://scheduler:8786'), "
            "or pass client=None to run locally."
        )
    from pytensor_blackjax.many._many import _Progress
    from pytensor_blackjax.store._model_io import dump_model

    run_id = uuid.uuid4().hex[:12]
    shipment = client.submit(_ship, dump_model(compiled.model), pure=False, key=f"pbj-model-{run_id}")
    futures = [
        client.submit(
            _fit_task,
            shipment,
            job,
            options,
            pure=False,
            retries=RETRIES,
            key=f"pbj-fit-{run_id}-{job.index}",
        )
        for job in jobs
    ]
    outcomes: dict[int, FitOutcome] = {}
    job_of = {f.key: job for f, job in zip(futures, jobs, strict=True)}
    try:
        with _Progress(len(jobs), progressbar) as progress:
            for future in distributed.as_completed(futures):
                job = job_of[future.key]
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: this fit's task was lost
                    outcome = FitOutcome(job.index, job.seed, f"{type(exc).__name__}: {exc}")
                outcomes[job.index] = outcome
                progress.advance(outcome)
    finally:
        client.cancel([*futures, shipment])
    return [outcomes[job.index] for job in jobs]


def connect(address: str) -> Any:
    """A ``dask.distributed.Client`` connected to the scheduler at ``address`` (``tcp://host:8786``)."""
    distributed = _require_distributed()
    try:
        return distributed.Client(address, timeout="30s")
    except OSError as exc:
        raise OSError(
            f"cannot reach a Dask scheduler at {address!r} ({exc}); start one (dask scheduler, or a "
            "dask-jobqueue cluster) and pass its address, e.g. --scheduler tcp://10.0.0.5:8786."
        ) from exc


def local_cluster(
    workers: int | None = None,
    *,
    threads_per_worker: int = 1,
    host: str = "127.0.0.1",
    memory_limit: str | float | None = "auto",
) -> Any:
    """A Dask cluster on this machine that a plain script can start: no ``if __name__ == "__main__":``.

    The scheduler runs in this process; each worker is a separate program (a Dask nanny and its worker,
    started with ``subprocess``), so the calling script is never imported again in a worker, unlike
    ``dask.distributed.LocalCluster(processes=True)``, whose ``spawn``-started workers re-run an
    unguarded script. A killed worker process is restarted by its nanny as on ``LocalCluster``. The
    worker programs end when the cluster closes and when this process ends in any way (Ctrl-C,
    SIGKILL): each watches a pipe from this process.

    Args:
        workers: worker processes; None: one per available core.
        threads_per_worker: threads (fits at a time) per worker; 1 suits fits, whose chain threads
            share one core anyway (JAX runs one CPU device's programs in turn).
        host: interface the scheduler and workers listen on (loopback by default).
        memory_limit: per worker, as ``LocalCluster``'s (``"auto"``: the machine's memory split evenly).

    Returns:
        ``distributed.SpecCluster``: use as a context manager, pass it (or a ``Client`` of it) as
        ``sample_many(client=...)``.

    Raises:
        ImportError: dask.distributed is not installed.
        ValueError: ``workers`` or ``threads_per_worker`` is not a positive integer.

    Example:
        >>> with pbj.many.local_cluster(2) as cluster:  # doctest: +SKIP
        ...     tree = pbj.sample_many(model, datasets, seed=1, client=cluster)
    """
    from pytensor_blackjax._validate import check_count
    from pytensor_blackjax.run._layouts import available_cores

    distributed = _require_distributed()
    workers = available_cores() if workers is None else check_count("workers", workers)
    threads = check_count("threads_per_worker", threads_per_worker)
    from distributed.worker_memory import parse_memory_limit

    options = {
        "nthreads": threads,
        "host": host,
        # as LocalCluster splits it: the machine's memory over the workers
        "memory_limit": parse_memory_limit(memory_limit, 1, workers, logger=logging.getLogger(__name__)),
        "dashboard": False,
        "silence_logs": "WARNING",
    }
    worker = {"cls": _worker_program_class(), "options": {"options": options}}
    scheduler = {
        "cls": distributed.Scheduler,
        "options": {"host": host, "port": 0, "dashboard": False, "dashboard_address": None},
    }
    return distributed.SpecCluster(
        workers=dict.fromkeys(range(workers), worker),
        scheduler=scheduler,
        worker=worker,
        name="pbj-local",
        silence_logs="WARNING",
    )


@functools.cache
def _worker_program_class() -> type:
    """`distributed.deploy.spec.ProcessInterface` for one worker program (made on first use: dask is
    an optional extra)."""
    from distributed.deploy.spec import ProcessInterface

    class WorkerProgram(ProcessInterface):
        """One worker program: started by `local_cluster`'s SpecCluster, ended by closing its pipe."""

        def __init__(self, scheduler: str, name: Any = None, options: dict | None = None):
            self.scheduler, self.name = scheduler, name
            self.options = {**(options or {}), "name": name}
            self.process: asyncio.subprocess.Process | None = None
            super().__init__(scheduler=scheduler, name=name)

        async def start(self) -> None:
            self.process = await asyncio.create_subprocess_exec(
                *worker_command(self.scheduler, self.options),
                stdin=subprocess.PIPE,
                env=child_environment(),
                # Ctrl-C in a terminal reaches this process only; the program ends when its pipe closes
                start_new_session=True,
            )
            await super().start()

        async def close(self) -> None:
            process, self.process = self.process, None
            if process is not None and process.returncode is None:
                assert process.stdin is not None  # started with a pipe
                process.stdin.close()
                try:
                    await asyncio.wait_for(process.wait(), timeout=10)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            await super().close()

    return WorkerProgram


# One worker program: a Dask nanny (which restarts its worker process if that dies) and a thread that
# ends the program, worker included, once the pipe on stdin closes (the cluster closed, or the process
# that started it died however it died). Run with ``python -c`` so that it imports neither this package
# (JAX: 1.5 s and 190 MB a program) nor any script: ``spawn`` re-imports nothing for a ``-c`` main.
_WORKER_PROGRAM = """
import asyncio, json, os, sys, threading
import psutil
from distributed import Nanny

def end_with_parent():
    sys.stdin.buffer.read()
    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.Error:
            pass
    os._exit(0)

async def serve(scheduler, options):
    async with Nanny(scheduler, **options) as nanny:
        await nanny.finished()

threading.Thread(target=end_with_parent, daemon=True).start()
asyncio.run(serve(sys.argv[1], json.loads(sys.argv[2])))
"""


def worker_command(scheduler: str, options: dict) -> list[str]:
    return [sys.executable, "-c", _WORKER_PROGRAM, scheduler, json.dumps(options)]


def child_environment() -> dict[str, str]:
    """This environment, with this package importable in a child started from any directory."""
    import pytensor_blackjax

    env = dict(os.environ)
    package_root = str(Path(pytensor_blackjax.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env
