"""Durable runs: stream draws to a Zarr v3 store chunk by chunk, and resume an interrupted run."""

from pytensor_blackjax.store._formats import StoreError
from pytensor_blackjax.store._model_io import fingerprint
from pytensor_blackjax.store._open import StoredRun, open_new, open_stored, reopen_for_more

__all__ = ["StoreError", "StoredRun", "fingerprint", "open_new", "open_stored", "reopen_for_more"]
