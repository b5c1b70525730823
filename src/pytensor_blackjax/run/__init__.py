"""The driver: chains, chunks, devices, progress and Ctrl-C, the same for every sampler.

Read top down: `_driver` (the loop: warmup and sampling chunk by chunk, hand-off to a sink),
`_layouts` (where chains run: threads, one vmapped program, devices), `_programs` (what is compiled),
`_init` (start points), `_keys` (random keys), `_progress`, `_interrupt` (Ctrl-C), `_stored` and
`_cache` (the on-disk program store).
"""

from pytensor_blackjax.run._driver import Sink, run
from pytensor_blackjax.run._settings import RunOutput, RunSettings

__all__ = ["RunOutput", "RunSettings", "Sink", "run"]
