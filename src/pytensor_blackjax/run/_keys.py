"""Random keys derived per chain, per phase and per step index, so that chunking never changes draws."""

from __future__ import annotations

import jax
import numpy as np

__all__ = ["INIT", "SAMPLING", "WARMUP", "chain_keys", "root_key", "step_key"]

INIT, WARMUP, SAMPLING = 0, 1, 2


def root_key(seed: int) -> jax.Array:
    """The run's key; seeds up to 2**64 - 1 give distinct keys (the high word is folded in)."""
    key = jax.random.key(np.uint32(seed % 2**32))
    if seed >= 2**32:
        key = jax.random.fold_in(key, np.uint32((seed >> 32) % 2**32))
    return key


def chain_keys(seed: int, chains: int) -> jax.Array:
    root = root_key(seed)
    return jax.vmap(lambda i: jax.random.fold_in(root, i))(np.arange(chains, dtype=np.uint32))


def step_key(chain_key: jax.Array, phase: int, index) -> jax.Array:
    """The key of one step: a pure function of (chain, phase, step index)."""
    return jax.random.fold_in(jax.random.fold_in(chain_key, phase), index)
