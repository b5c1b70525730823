"""The posteriordb reference posteriors as models of this package (the data stay outside it).

Each posterior of the database's ``<data set>-<model>`` folders is written with `ModelBuilder` from
the folder's ``model.md``; three are also written in PyMC (`pymc_model`). The posterior keeps the
reference's names, 0-based (``theta[1]`` is ``theta`` index 0), and derived quantities stored in the
references (``theta`` of non-centered eight schools, ``f`` of the latent GP) are deterministics.

Example:
    >>> import pytensor_blackjax as pbj
    >>> from pytensor_blackjax.examples import posteriordb
    >>> model = posteriordb.load("../shared/posteriordb/arK-arK")  # doctest: +SKIP
    >>> tree = pbj.sample(model, seed=1)  # doctest: +SKIP
"""

from pytensor_blackjax.examples.posteriordb._pymc import PYMC_MODELS, pymc_model
from pytensor_blackjax.examples.posteriordb._registry import (
    POSTERIORS,
    Posterior,
    load,
    load_data,
    model,
    names,
    spec,
)

__all__ = [
    "POSTERIORS",
    "PYMC_MODELS",
    "Posterior",
    "load",
    "load_data",
    "model",
    "names",
    "pymc_model",
    "spec",
]
