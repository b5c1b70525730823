"""Correctness evidence: comparison with reference draws (posteriordb or your own), and SBC.

Example:
    >>> from pytensor_blackjax.validate import compare, run_validation
    >>> report = run_validation("../shared/posteriordb", only=["arK-arK"], seeds=3)  # doctest: +SKIP
    >>> report.passed  # doctest: +SKIP
    True
    >>> result = compare(my_draws, reference_draws)  # doctest: +SKIP
    >>> result.passed, result.power(0.9).describe()  # doctest: +SKIP
"""

from pytensor_blackjax.validate._compare import (
    CRITERIA,
    DEFAULT_ALPHA,
    Comparison,
    Moments,
    Power,
    ScalarCheck,
    Tolerance,
    check_scalars,
    compare,
    detectable_shift,
    moments,
)
from pytensor_blackjax.validate._ecdf_band import ECDFBand, UniformityTest, uniformity_test
from pytensor_blackjax.validate._plan import PLANS, SamplerPlan
from pytensor_blackjax.validate._reference import load_reference, parse_name
from pytensor_blackjax.validate._report import Row, Run, Skipped, ValidationReport
from pytensor_blackjax.validate._run import run_validation
from pytensor_blackjax.validate._sbc import SBCResult, SBCVerdict, simulation_based_calibration
from pytensor_blackjax.validate._sbc_power import SBCPower, sbc_power

__all__ = [
    "CRITERIA",
    "DEFAULT_ALPHA",
    "PLANS",
    "Comparison",
    "ECDFBand",
    "Moments",
    "Power",
    "Row",
    "Run",
    "SBCPower",
    "SBCResult",
    "SBCVerdict",
    "SamplerPlan",
    "ScalarCheck",
    "Skipped",
    "Tolerance",
    "UniformityTest",
    "ValidationReport",
    "check_scalars",
    "compare",
    "detectable_shift",
    "load_reference",
    "moments",
    "parse_name",
    "run_validation",
    "sbc_power",
    "simulation_based_calibration",
    "uniformity_test",
]
