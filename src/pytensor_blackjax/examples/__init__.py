"""Example models: the embedded rat-tumor default and the posteriordb set."""

from pytensor_blackjax.examples import posteriordb
from pytensor_blackjax.examples._rats import rat_tumor_data, rat_tumors

__all__ = ["posteriordb", "rat_tumor_data", "rat_tumors"]
