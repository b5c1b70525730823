"""The ``pytensor-blackjax`` command line: sample a model file, summarise, plot and report results.

Example:
    $ pytensor-blackjax demo --out demo_out
    $ pytensor-blackjax run my_model.py --draws 2000 --seed 1 --out results/
    $ pytensor-blackjax report results/results.zarr -o report.html
"""

from pytensor_blackjax.cli._app import app, main

__all__ = ["app", "main"]
