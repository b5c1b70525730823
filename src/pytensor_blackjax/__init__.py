"""pytensor-blackjax: PyTensor models to Blackjax posterior draws, as ArviZ DataTrees.

Example:
    >>> import pytensor_blackjax as pbj
    >>> idata = pbj.sample(pbj.examples.rat_tumors(), seed=1, progressbar=False)

What sampling needs (JAX, Blackjax, PyTensor) is imported with the package; the results side
(xarray, pandas, Zarr), the examples and the multi-host helpers load on first use, and ``sample``
starts loading the results side in the background while its programs compile.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from pytensor_blackjax import samplers
from pytensor_blackjax._sample import sample
from pytensor_blackjax.compile import CompiledModel, compile
from pytensor_blackjax.model import Model, ModelBuilder, transforms
from pytensor_blackjax.run._until import Until

try:
    __version__ = version("pytensor-blackjax")
except PackageNotFoundError:  # pragma: no cover - run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ApproximationWarning",
    "CompiledModel",
    "Model",
    "ModelBuilder",
    "SamplingWarning",
    "StoreError",
    "WatchOptions",
    "compile",
    "distributed",
    "examples",
    "many",
    "resume",
    "sample",
    "sample_many",
    "samplers",
    "set_program_cache",
    "transforms",
    "Until",
    "validate",
    "extend",
]

# public name -> (module, attribute or None for the module itself), loaded on first access
_LAZY = {
    "ApproximationWarning": ("pytensor_blackjax.results", "ApproximationWarning"),
    "SamplingWarning": ("pytensor_blackjax.results", "SamplingWarning"),
    "StoreError": ("pytensor_blackjax.store", "StoreError"),
    "WatchOptions": ("pytensor_blackjax._watching", "WatchOptions"),
    "distributed": ("pytensor_blackjax.distributed", None),
    "examples": ("pytensor_blackjax.examples", None),
    "many": ("pytensor_blackjax.many", None),
    "resume": ("pytensor_blackjax._resume", "resume"),
    "extend": ("pytensor_blackjax._extend", "extend"),
    "sample_many": ("pytensor_blackjax.many", "sample_many"),
    "set_program_cache": ("pytensor_blackjax.run._cache", "set_program_cache"),
    "validate": ("pytensor_blackjax.validate", None),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'pytensor_blackjax' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
