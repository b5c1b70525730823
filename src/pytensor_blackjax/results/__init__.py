"""Results: the ArviZ DataTree, diagnostics and warnings."""

from pytensor_blackjax.results._datatree import library_versions, make_datatree
from pytensor_blackjax.results._diagnostics import (
    ApproximationWarning,
    SamplingWarning,
    diagnose,
    is_approximate,
    warn_on_problems,
)

__all__ = [
    "ApproximationWarning",
    "SamplingWarning",
    "is_approximate",
    "diagnose",
    "library_versions",
    "make_datatree",
    "warn_on_problems",
]
