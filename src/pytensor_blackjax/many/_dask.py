"""Every Dask-specific line of ``sample_many``: fits as tasks on a ``dask.distributed`` cluster.

The model travels once per worker process, as a Dask datum computed by a task (`_ship`): Dask keeps it
in the worker's memory, hands the same object to every fit task there (so each worker compiles once),
and recomputes it from its task if the worker holding it dies. Fit tasks are impure (``pure=False``)
and retried, so a task whose worker was killed runs again elsewhere; with a store it resumes.
"""

from __future__ import annotations

import pickle
import threading
import uuid
from typing import Any

from pytensor_blackjax.compile import CompiledModel, compile
from pytensor_blackjax.many._fit import FitJob, FitOptions, FitOutcome, run_fit

__all__ = ["ModelShipment", "connect", "run_on_dask"]

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
    if not isinstance(client, distributed.Client):
        raise TypeError(
            f"client={client!r} is not a dask.distributed.Client; connect one, e.g. "
            "client=dask.distributed.Client('tcp://scheduler:8786'), or pass client=None to run locally."
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
