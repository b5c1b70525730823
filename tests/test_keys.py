"""The run's and the chains' keys: computed on the host, they must be the very keys JAX derives."""

import logging

import jax
import numpy as np
import pytest

from pytensor_blackjax.run import _keys

SEEDS = [0, 1, 5, 2**31, 2**32 - 1, 2**32, 2**32 + 7, 123456789012, 2**63 + 12345, 2**64 - 1]


def jax_keys(seed, chains):
    """The keys as JAX computes them: key of the low word, the high word folded in, then each chain."""
    key = jax.random.key(seed % 2**32)
    if seed >> 32:
        key = jax.random.fold_in(key, seed >> 32)
    return key, [jax.random.fold_in(key, i) for i in range(chains)]


@pytest.mark.parametrize("seed", SEEDS)
def test_host_keys_equal_jax_keys(seed):
    root, chains = jax_keys(seed, 7)
    np.testing.assert_array_equal(jax.random.key_data(_keys.root_key(seed)), jax.random.key_data(root))
    ours = jax.random.key_data(_keys.chain_keys(seed, 7))
    np.testing.assert_array_equal(ours, np.stack([jax.random.key_data(k) for k in chains]))


def test_threefry_equals_jax_on_many_words():
    rng = np.random.default_rng(0)
    for _ in range(20):
        key = rng.integers(0, 2**32, size=2, dtype=np.uint32)
        data = rng.integers(0, 2**32, size=50, dtype=np.uint32)
        expected = [jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(key), d)) for d in data]
        np.testing.assert_array_equal(_keys.fold_in(key, data), np.stack(expected))


def test_keys_cost_no_compilation(caplog):
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        _keys.chain_keys(12, 5)
        _keys.root_key(13)
    assert not [r for r in caplog.records if "Compiling" in r.getMessage()]


def test_another_default_key_implementation_is_computed_by_jax():
    for impl in ("rbg", "unsafe_rbg"):
        with jax.default_prng_impl(impl):
            data = np.asarray(jax.random.key_data(_keys.chain_keys(3, 4)))
            again = np.asarray(jax.random.key_data(_keys.chain_keys(3, 4)))
            assert data.shape == (4, 4)  # the implementation's key data, not Threefry's (2,)
            assert len({row.tobytes() for row in data}) == 4
            np.testing.assert_array_equal(data, again)


def jax_starts(keys, attempt, dims, radius):
    from pytensor_blackjax.samplers._start import uniform_point

    def draw(key):
        return uniform_point(jax.random.fold_in(jax.random.fold_in(key, _keys.INIT), attempt), dims, radius)

    return np.asarray(jax.vmap(draw)(keys))


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3])
def test_host_uniform_starts_equal_jax_uniform(seed):
    keys = _keys.chain_keys(seed, 5)
    with jax.enable_x64(True):
        for attempt in (0, 1, 99):
            for dims in (1, 2, 73, 128):
                for radius in (2.0, 0.5, 8.0):  # 2 * radius a power of two: the same bits
                    host = _keys.uniform_starts(keys, attempt, dims, radius)
                    np.testing.assert_array_equal(host, jax_starts(keys, attempt, dims, radius))
                for radius in (1.7, 1e-3, 10.0):  # XLA may fuse the scaling: a rounding apart
                    host = _keys.uniform_starts(keys, attempt, dims, radius)
                    ref = jax_starts(keys, attempt, dims, radius)
                    assert np.all(np.abs(host - ref) <= np.spacing(2 * radius))
                    assert np.all(np.abs(host) < radius)


def test_uniform_starts_cost_no_compilation(caplog):
    keys = _keys.chain_keys(3, 4)
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        _keys.uniform_starts(keys, 0, 10, 2.0)
    assert not [r for r in caplog.records if "Compiling" in r.getMessage()]
