"""Several processes (hosts) sampling together, on JAX's own distributed runtime.

Call `initialize` in every process before anything else touches JAX. Afterwards ``jax.devices()``
lists the devices of all processes, and the same ``pbj.sample`` call in every process shards the
chains over all of them (``chain_method="auto"`` or ``"parallel"``); every process receives every
chain. See docs/scale.md.

Example:
    >>> import pytensor_blackjax as pbj
    >>> pbj.distributed.initialize("10.0.0.1:1234", num_processes=2, process_id=0)  # doctest: +SKIP
    >>> idata = pbj.sample(model, chains=8, seed=1)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.extend.backend

__all__ = ["initialize", "is_initialized", "process_count", "process_index"]

_CPU_COLLECTIVES = ("gloo", "mpi")


def initialize(
    coordinator_address: str,
    num_processes: int,
    process_id: int,
    *,
    local_device_ids: int | Sequence[int] | None = None,
    cpu_collectives: str = "gloo",
    initialization_timeout: int = 300,
) -> None:
    """Join this process to a group of ``num_processes`` JAX processes.

    Wraps ``jax.distributed.initialize``. Process 0 starts the coordinator service at
    ``coordinator_address``; the others connect to it. On CPU, arrays cross processes through the
    ``cpu_collectives`` implementation, which is selected here, before JAX's CPU backend starts.
    Call it before creating JAX arrays of your own: if JAX's backend is already running (importing
    Blackjax starts it) it is restarted, and arrays made earlier stay process-local.

    Args:
        coordinator_address: ``"host:port"`` of process 0, the same in every process (e.g.
            ``"127.0.0.1:12345"`` for processes on one machine).
        num_processes: how many processes take part (>= 1).
        process_id: this process's number, 0 to ``num_processes - 1``, different in each process.
        local_device_ids: restrict this process to these local devices (default: all of them).
        cpu_collectives: "gloo" (default) or "mpi" (needs an MPI installation), for CPU devices.
        initialization_timeout: seconds to wait for every process to join.

    Raises:
        ValueError: an argument is out of range, with the value and the fix.
        RuntimeError: this process is already initialised.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> pbj.distributed.initialize("127.0.0.1:12345", num_processes=2, process_id=0)  # doctest: +SKIP
    """
    if not isinstance(coordinator_address, str) or ":" not in coordinator_address:
        raise ValueError(
            f"coordinator_address={coordinator_address!r}: give 'host:port' of process 0, "
            "e.g. '127.0.0.1:12345'."
        )
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"num_processes={num_processes!r}: give the number of processes, an integer >= 1.")
    if isinstance(process_id, bool) or not isinstance(process_id, int) or not 0 <= process_id < num_processes:
        raise ValueError(
            f"process_id={process_id!r}: give an integer from 0 to {num_processes - 1} "
            f"(num_processes={num_processes}), different in every process."
        )
    if cpu_collectives not in _CPU_COLLECTIVES:
        raise ValueError(f"cpu_collectives={cpu_collectives!r}: use one of {list(_CPU_COLLECTIVES)}.")
    if is_initialized():
        raise RuntimeError("pbj.distributed.initialize was already called in this process; call it once.")
    # read when the CPU backend starts, which the join below (re)does
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    join = partial(
        jax.distributed.initialize,
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
        initialization_timeout=initialization_timeout,
    )
    try:
        join()
    except RuntimeError as err:
        if "must be called before" not in str(err):
            raise
        # Importing Blackjax evaluates a few jnp constants, which starts JAX's process-local backend
        # before anyone can call initialize. It is dropped and started again, now with every
        # process's devices; arrays made before this call stay on the old, process-local backend.
        jax.extend.backend.clear_backends()
        join()


def is_initialized() -> bool:
    """Whether this process has joined a distributed group."""
    return bool(jax.distributed.is_initialized())


def process_index() -> int:
    """This process's number (0 when not distributed)."""
    return jax.process_index()


def process_count() -> int:
    """How many processes take part (1 when not distributed)."""
    return jax.process_count()
