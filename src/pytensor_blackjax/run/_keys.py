"""Random keys derived per chain, per phase and per step index, so that chunking never changes draws.

The run's and the chains' keys are computed on the host: Threefry-2x32 (Salmon et al. 2011, the hash
behind JAX's default keys) in NumPy gives the very key data ``jax.random.key`` and ``fold_in`` give.
Computed by JAX, they cost a first run 1.3 s of compiling one small program (0.6 s of it lowering)
and a warm run its lookup in the program store; in NumPy they cost microseconds. With another
default key implementation (``jax_default_prng_impl``) JAX computes them, in a program kept in the
program store.
"""

from __future__ import annotations

from functools import cache

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "INIT",
    "SAMPLING",
    "WARMUP",
    "chain_keys",
    "fold_in",
    "root_key",
    "split_chains",
    "step_key",
    "threefry2x32",
    "uniform_starts",
]

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
def _program(impl: str):
    """`_key_data` compiled for the key implementation ``impl`` (its name keys the program store)."""
    from pytensor_blackjax.run._stored import StoredProgram

    return StoredProgram(jax.jit(_key_data), f"chain_keys|{impl}")


_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotl(x: np.ndarray, bits: int) -> np.ndarray:
    return (x << np.uint32(bits)) | (x >> np.uint32(32 - bits))


def threefry2x32(key: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Threefry-2x32 block cipher (20 rounds) of the words ``(x0, x1)`` (uint32 arrays of one
    shape) under the key ``key`` (2 uint32 words)."""
    k = (np.uint32(key[0]), np.uint32(key[1]), np.uint32(key[0]) ^ np.uint32(key[1]) ^ _PARITY)
    with np.errstate(over="ignore"):
        x0, x1 = x0 + k[0], x1 + k[1]
        for group in range(5):
            for r in _ROTATIONS[group % 2]:
                x0 = x0 + x1
                x1 = _rotl(x1, r) ^ x0
            x0 = x0 + k[(group + 1) % 3]
            x1 = x1 + k[(group + 2) % 3] + np.uint32(group + 1)
    return x0, x1


def fold_in(key: np.ndarray, data: np.ndarray) -> np.ndarray:
    """``jax.random.fold_in`` on raw Threefry key data: one key ``(2,)`` per element of ``data``,
    shape ``data.shape + (2,)``."""
    data = np.asarray(data, dtype=np.uint32)
    y0, y1 = threefry2x32(key, np.zeros_like(data), data)
    return np.stack([y0, y1], axis=-1)


def _host_key_data(words: np.ndarray, chain_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_key_data` in NumPy, for Threefry keys."""
    root = np.array([0, words[0]], dtype=np.uint32)  # jax.random.key of a 32-bit seed
    if words[1] > 0:
        root = fold_in(root, words[1])
    return root, fold_in(root, chain_ids)


def _derive(seed: int, chains: int) -> tuple[np.ndarray, np.ndarray]:
    words = np.array([seed % 2**32, (seed >> 32) % 2**32], dtype=np.uint32)
    ids = np.arange(chains, dtype=np.uint32)
    impl = jax.config.jax_default_prng_impl
    if impl == "threefry2x32":
        return _host_key_data(words, ids)
    root, per_chain = _program(impl)(words, ids)
    return np.asarray(root), np.asarray(per_chain)


def root_key(seed: int) -> jax.Array:
    """The run's key."""
    return jax.random.wrap_key_data(jax.device_put(_derive(seed, 1)[0]))


def chain_keys(seed: int, chains: int) -> jax.Array:
    """One key per chain, shape ``(chains,)``."""
    return jax.random.wrap_key_data(jax.device_put(_derive(seed, chains)[1]))


def split_chains(keys: jax.Array) -> list[jax.Array]:
    """The keys of ``chain_keys`` one by one (through their raw data: indexing a key array compiles)."""
    data = np.asarray(jax.random.key_data(keys))
    return [jax.random.wrap_key_data(row) for row in data]


def _host_uniform(key: np.ndarray, dims: int, radius: float) -> np.ndarray:
    """``jax.random.uniform(key, (dims,), float64, -radius, radius)`` of raw Threefry key data, for
    JAX's partitionable Threefry bits (its default): the counters are the indices' high and low words,
    the two output words make one 64-bit draw, its high 52 bits the mantissa of a float in [1, 2).
    The same bits; the scaling rounds its product and its sum, where XLA may fuse them into one
    multiply-add: the points equal JAX's when ``2 * radius`` is a power of two (the default 2), else
    they may differ from them in the last bit."""
    hi, lo = threefry2x32(key, np.zeros(dims, np.uint32), np.arange(dims, dtype=np.uint32))
    bits = (hi.astype(np.uint64) << np.uint64(32)) | lo.astype(np.uint64)
    unit = ((bits >> np.uint64(12)) | np.float64(1.0).view(np.uint64)).view(np.float64) - 1.0
    low = np.float64(-radius)
    return np.maximum(low, unit * (np.float64(radius) - low) + low)


def uniform_starts(keys: jax.Array, attempt: int, dims: int, radius: float) -> np.ndarray:
    """Attempt ``attempt`` of every chain's uniform starting point, ``(chains, dims)`` float64: the
    points `samplers._start.uniform_point` draws from ``fold_in(fold_in(key, INIT), attempt)``. In
    NumPy for JAX's default keys (no program compiles); by JAX for other key implementations."""
    if jax.config.jax_default_prng_impl == "threefry2x32" and jax.config.jax_threefry_partitionable:
        data = np.asarray(jax.random.key_data(keys))
        return np.stack(
            [
                _host_uniform(fold_in(fold_in(k, np.asarray(INIT)), np.asarray(attempt)), dims, radius)
                for k in data
            ]
        )
    from pytensor_blackjax.samplers._start import uniform_point

    def draw(key):
        return uniform_point(jax.random.fold_in(jax.random.fold_in(key, INIT), attempt), dims, radius)

    return np.asarray(jax.jit(jax.vmap(draw))(keys))


def step_key(chain_key: jax.Array, phase: int, index) -> jax.Array:
    """The key of one step: a pure function of (chain, phase, step index)."""
    return jax.random.fold_in(jax.random.fold_in(chain_key, phase), index)
