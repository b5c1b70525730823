"""The driver: chains, chunks, devices, progress and Ctrl-C, the same for every sampler."""

from pytensor_blackjax.run._driver import RunOutput, RunSettings, Sink, run

__all__ = ["RunOutput", "RunSettings", "Sink", "run"]
