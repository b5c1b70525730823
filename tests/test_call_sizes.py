"""How many draws one call of the chunk programs runs: one chunk at first, then as many as take about
`CALL_SECONDS`, within the programs' capacity; exactly one chunk where calls must end at a chunk's
boundary (a store, an ``until`` run). The draws never depend on it."""

import numpy as np
import pytensor.tensor as pt
import pytest

import pytensor_blackjax as pbj
from pytensor_blackjax.run import RunSettings
from pytensor_blackjax.run._driver import (
    CALL_SECONDS,
    MAX_CALL_DRAWS,
    MAX_CALL_VALUES,
    CallSizes,
    call_capacity,
    values_per_draw,
)
from pytensor_blackjax.run._layouts import ChainLayout


def settings(draws=1000, tune=1000, chunk_size=100):
    return RunSettings(draws=draws, tune=tune, chains=2, seed=1, chunk_size=chunk_size)


def test_capacity_is_one_chunk_where_calls_must_end_at_its_boundary():
    assert call_capacity(settings(), 10, fixed=True) == 100
    assert call_capacity(settings(chunk_size=37), 10, fixed=True) == 37


def test_capacity_is_bounded_by_draws_memory_and_never_below_a_chunk():
    assert call_capacity(settings(), 10, fixed=False) == MAX_CALL_DRAWS
    assert call_capacity(settings(draws=300, tune=200), 10, fixed=False) == 300
    assert call_capacity(settings(), 1000, fixed=False) == MAX_CALL_VALUES // 1000
    assert call_capacity(settings(), 10**6, fixed=False) == 100  # one chunk, as the user asked
    assert call_capacity(settings(chunk_size=2000, draws=4000), 10, fixed=False) == 2000


def test_the_largest_output_per_draw_bounds_a_call():
    m = pbj.ModelBuilder()
    x = m.param("x", shape=(3,))
    m.deterministic("wide", pt.outer(x, pt.ones(400)))  # 1200 numbers a draw
    y = m.data("y", np.zeros(5000))
    m.add_logp(-0.5 * pt.sum(x**2) - 0.5 * pt.sum((y - x[0]) ** 2))
    m.log_likelihood("y", -0.5 * (y - x[0]) ** 2)  # 5000 numbers a draw
    compiled = pbj.compile(m.build())
    assert values_per_draw(compiled, log_likelihood=False) == 1203  # x and its deterministic
    assert values_per_draw(compiled, log_likelihood=True) == 5000
    assert call_capacity(settings(), 1203, fixed=False) == MAX_CALL_VALUES // 1203
    assert call_capacity(settings(), 5000, fixed=False) == 100  # one chunk, never fewer


def test_call_sizes_grow_to_the_pace_of_quick_calls_within_the_capacity():
    calls = CallSizes(100, 1000)
    assert calls.next(5000) == 100 and calls.next(30) == 30
    calls.took(100, CALL_SECONDS / 4)  # 4x quicker than asked: 400 draws next
    assert calls.next(5000) == 400
    calls.took(400, CALL_SECONDS / 100)
    assert calls.next(5000) == 1000  # at most the capacity
    calls.took(1000, CALL_SECONDS * 20)  # slow again (a first call waiting for its program)
    assert calls.next(5000) == 100  # never below a chunk


def test_a_short_call_or_a_fixed_capacity_changes_nothing():
    calls = CallSizes(100, 1000)
    calls.took(25, 1e-6)  # a window's end cut it short: says little about the pace
    assert calls.next(5000) == 100
    fixed = CallSizes(100, 100)
    fixed.took(100, 1e-6)
    assert fixed.next(5000) == 100


def gaussian():
    m = pbj.ModelBuilder()
    x = m.param("x", shape=(3,))
    m.add_logp(-0.5 * pt.sum((x - 1.0) ** 2))
    return m.build()


@pytest.fixture
def counted(monkeypatch):
    sizes = {"warmup": [], "sample": []}
    warmup, sample = ChainLayout.warmup, ChainLayout.sample

    def count_warmup(layout, start, n_valid, rows):
        sizes["warmup"].append(n_valid)
        return warmup(layout, start, n_valid, rows)

    def count_sample(layout, start, n_valid):
        sizes["sample"].append(n_valid)
        return sample(layout, start, n_valid)

    monkeypatch.setattr(ChainLayout, "warmup", count_warmup)
    monkeypatch.setattr(ChainLayout, "sample", count_sample)
    return sizes


KW = dict(draws=3000, tune=1000, chains=2, seed=3, chunk_size=100, progressbar=False)


def test_quick_calls_hold_several_chunks_and_give_the_same_draws(counted, tmp_path):
    model = gaussian()
    tree = pbj.sample(model, **KW)
    free = {k: list(v) for k, v in counted.items()}
    counted["warmup"].clear()
    counted["sample"].clear()
    stored = pbj.sample(model, store=str(tmp_path / "run.zarr"), **KW)
    # with a store every call is one chunk (each ends at a checkpoint)
    assert counted["sample"] == [100] * 30 and max(counted["warmup"]) <= 100
    # without one, a call of a 3-parameter model's 100 draws takes ~1 ms: calls grow to the capacity
    assert sum(free["sample"]) == 3000 and sum(free["warmup"]) == 1000
    assert max(free["sample"]) == MAX_CALL_DRAWS and len(free["sample"]) < 10
    for group in ("posterior", "sample_stats"):
        for name in tree[group].data_vars:
            np.testing.assert_array_equal(tree[group][name].values, stored[group][name].values)
