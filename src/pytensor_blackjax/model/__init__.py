"""Describing a model: pure PyTensor, no JAX."""

from pytensor_blackjax.model import _transforms as transforms
from pytensor_blackjax.model._builder import ModelBuilder
from pytensor_blackjax.model._model import DataVar, Model

__all__ = ["DataVar", "Model", "ModelBuilder", "transforms"]
