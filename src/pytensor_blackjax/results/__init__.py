"""Results: the ArviZ DataTree, diagnostics and warnings."""

from pytensor_blackjax.results._datatree import library_versions, make_datatree
from pytensor_blackjax.results._diagnostics import SamplingWarning, diagnose, warn_on_problems

__all__ = ["SamplingWarning", "diagnose", "library_versions", "make_datatree", "warn_on_problems"]
