"""Results: the ArviZ DataTree, diagnostics and warnings."""

from pytensor_blackjax.results._checks import (
    EBFMI_MIN,
    ESS_PER_CHAIN_MIN,
    RHAT_MAX,
    TAIL_PROB,
    TREE_DEPTH_HIT_MAX,
    Diagnostic,
    ebfmi,
)
from pytensor_blackjax.results._datatree import library_versions, make_datatree
from pytensor_blackjax.results._diagnostics import (
    ApproximationWarning,
    Convergence,
    SamplingWarning,
    convergence_of,
    diagnose,
    diagnostics,
    is_approximate,
    warn_on_problems,
)

__all__ = [
    "EBFMI_MIN",
    "ESS_PER_CHAIN_MIN",
    "RHAT_MAX",
    "TAIL_PROB",
    "TREE_DEPTH_HIT_MAX",
    "ApproximationWarning",
    "Convergence",
    "Diagnostic",
    "SamplingWarning",
    "convergence_of",
    "diagnose",
    "diagnostics",
    "ebfmi",
    "is_approximate",
    "library_versions",
    "make_datatree",
    "warn_on_problems",
]
