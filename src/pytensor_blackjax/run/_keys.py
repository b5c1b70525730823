"""Random keys derived per chain, per phase and per step index, so that chunking never changes draws.

The run's and the chains' keys come from one small program kept in the program store: computed
eagerly, JAX compiled four tiny programs for them in every process (seeding, folding in, slicing
out each chain's key), 0.1-0.4 s of a second run's start.
"""

from __future__ import annotations

from functools import cache

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["INIT", "SAMPLING", "WARMUP", "chain_keys", "root_key", "split_chains", "step_key"]

INIT, WARMUP, SAMPLING = 0, 1, 2


def _key_data(words: jax.Array, chain_ids: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Raw data of the run's key and of each chain's: the seed's low word seeds the key, a non-zero
    high word is folded in (seeds up to 2**64 - 1 give distinct keys); chain i folds in i."""
    low = jax.random.key(words[0])
    root = jax.random.key_data(low)
    root = jnp.where(words[1] > 0, jax.random.key_data(jax.random.fold_in(low, words[1])), root)
    chains = jax.vmap(lambda i: jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(root), i)))
    return root, chains(chain_ids)


@cache
def _program():
    from pytensor_blackjax.run._stored import StoredProgram

    return StoredProgram(jax.jit(_key_data), "chain_keys")


def _derive(seed: int, chains: int) -> tuple[np.ndarray, np.ndarray]:
    words = np.array([seed % 2**32, (seed >> 32) % 2**32], dtype=np.uint32)
    root, per_chain = _program()(words, np.arange(chains, dtype=np.uint32))
    return np.asarray(root), np.asarray(per_chain)


def root_key(seed: int) -> jax.Array:
    """The run's key."""
    return jax.random.wrap_key_data(jnp.asarray(_derive(seed, 1)[0]))


def chain_keys(seed: int, chains: int) -> jax.Array:
    """One key per chain, shape ``(chains,)``."""
    return jax.random.wrap_key_data(jnp.asarray(_derive(seed, chains)[1]))


def split_chains(keys: jax.Array) -> list[jax.Array]:
    """The keys of ``chain_keys`` one by one (through their raw data: indexing a key array compiles)."""
    data = np.asarray(jax.random.key_data(keys))
    return [jax.random.wrap_key_data(row) for row in data]


def step_key(chain_key: jax.Array, phase: int, index) -> jax.Array:
    """The key of one step: a pure function of (chain, phase, step index)."""
    return jax.random.fold_in(jax.random.fold_in(chain_key, phase), index)
