"""Many fits of one model: ``sample_many`` on this machine's cores or on a Dask cluster."""

from pytensor_blackjax.many._dask import local_cluster
from pytensor_blackjax.many._fit import FitOutcome, fit_seed, read_attempts
from pytensor_blackjax.many._many import sample_many

__all__ = ["FitOutcome", "fit_seed", "local_cluster", "read_attempts", "sample_many"]
