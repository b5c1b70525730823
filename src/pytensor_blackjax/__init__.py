"""pytensor-blackjax: PyTensor models to Blackjax posterior draws, as ArviZ DataTrees.

Example:
    >>> import pytensor_blackjax as pbj
    >>> idata = pbj.sample(pbj.examples.rat_tumors(), seed=1, progressbar=False)
"""

from pytensor_blackjax import distributed, examples, samplers
from pytensor_blackjax._resume import resume
from pytensor_blackjax._sample import sample
from pytensor_blackjax.compile import CompiledModel, compile
from pytensor_blackjax.model import Model, ModelBuilder, transforms
from pytensor_blackjax.results import SamplingWarning

__all__ = [
    "CompiledModel",
    "Model",
    "ModelBuilder",
    "SamplingWarning",
    "compile",
    "distributed",
    "examples",
    "resume",
    "sample",
    "samplers",
    "transforms",
]
