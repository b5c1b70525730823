"""Example models: the embedded rat-tumor default, the posteriordb set and the SBC models."""

from pytensor_blackjax.examples import posteriordb, sbc
from pytensor_blackjax.examples._rats import rat_tumor_data, rat_tumors

__all__ = ["posteriordb", "rat_tumor_data", "rat_tumors", "sbc"]
