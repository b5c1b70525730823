"""PyTensor graph -> JAX callables."""

from pytensor_blackjax.compile._compiled import Block, CompiledModel, compile

__all__ = ["Block", "CompiledModel", "compile"]
