"""Correctness evidence: comparison with posteriordb reference draws, simulation-based calibration.

Example:
    >>> from pytensor_blackjax.validate import run_validation
    >>> report = run_validation("../shared/posteriordb", only=["arK-arK"])  # doctest: +SKIP
    >>> report.passed  # doctest: +SKIP
    True
"""

from pytensor_blackjax.validate._compare import KS_ALPHA, SD_TOL, Z_MAX, MarginalCheck, compare
from pytensor_blackjax.validate._ecdf_band import ECDFBand, UniformityTest, uniformity_test
from pytensor_blackjax.validate._reference import load_reference, parse_name
from pytensor_blackjax.validate._report import Row, ValidationReport
from pytensor_blackjax.validate._run import run_validation
from pytensor_blackjax.validate._sbc import SBCResult, SBCVerdict, simulation_based_calibration
from pytensor_blackjax.validate._sbc_power import SBCPower, sbc_power

__all__ = [
    "KS_ALPHA",
    "ECDFBand",
    "SD_TOL",
    "Z_MAX",
    "MarginalCheck",
    "Row",
    "SBCPower",
    "SBCResult",
    "SBCVerdict",
    "UniformityTest",
    "ValidationReport",
    "compare",
    "load_reference",
    "parse_name",
    "run_validation",
    "sbc_power",
    "simulation_based_calibration",
    "uniformity_test",
]
