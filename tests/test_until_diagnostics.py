"""The vectorized diagnostics of until-checks agree with arviz_stats: bulk and tail ESS, rank-normalized
split R-hat and nested R-hat, on independent, autocorrelated, tied and constant draws of many shapes."""

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from arviz_stats.base import array_stats

from pytensor_blackjax.run import _until_diagnostics
from pytensor_blackjax.run._until import superchain_ids
from pytensor_blackjax.run._until_diagnostics import (
    PARALLEL_VALUES,
    blocked_rank_diagnostics,
    mean_ess,
    rank_diagnostics,
    split_chains,
    z_scale,
)


def ar1(rng, scalars, chains, draws, phi):
    """AR(1) chains, one autocorrelation ``phi`` per scalar (negative ones included)."""
    x = np.zeros((scalars, chains, draws))
    noise = rng.normal(size=x.shape)
    x[..., 0] = noise[..., 0]
    for t in range(1, draws):
        x[..., t] = phi[:, None] * x[..., t - 1] + noise[..., t]
    return x


def draws_of(kind, rng, shape):
    scalars, chains, draws = shape
    if kind == "independent":
        return rng.normal(size=shape)
    if kind == "ar1":
        return ar1(rng, scalars, chains, draws, np.linspace(-0.5, 0.95, scalars)) + 3.0
    if kind == "ties":  # repeated values, as a Metropolis sampler's rejections make
        return np.round(ar1(rng, scalars, chains, draws, np.linspace(0.0, 0.9, scalars)))
    x = rng.normal(size=shape)  # constant scalars, and one constant in its first half of every chain
    x[0] = 3.0
    x[1, :, : draws // 2] = 1.0
    return x


def arviz(x, superchains=None):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # ArviZ divides 0 by 0 for constant scalars
        out = {
            "ess_bulk": array_stats.ess(x, method="bulk"),
            "ess_tail": array_stats.ess(x, method="tail", prob=0.05),
        }
        if superchains is None:
            out["rhat"] = array_stats.rhat(x, method="rank") if x.shape[1] > 1 else np.full(len(x), np.nan)
        else:
            out["rhat"] = array_stats.rhat_nested(x, superchain_ids=superchains)
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def assert_agree(mine, reference):
    for name, expected in reference.items():
        got = mine[name]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=name)
        np.testing.assert_allclose(got, expected, rtol=1e-8, err_msg=name)


@pytest.mark.parametrize("kind", ["independent", "ar1", "ties", "constant"])
@pytest.mark.parametrize(
    "shape", [(6, 4, 200), (5, 2, 101), (3, 1, 57), (4, 3, 9), (4, 4, 4), (3, 2, 5), (2, 8, 1001)]
)
def test_agrees_with_arviz(kind, shape):
    x = draws_of(kind, np.random.default_rng(sum(shape)), shape)
    assert_agree(rank_diagnostics(x), arviz(x))


@pytest.mark.parametrize("kind", ["independent", "ar1", "ties", "constant"])
@pytest.mark.parametrize("shape", [(6, 4, 200), (5, 2, 101), (3, 1, 57), (4, 4, 4), (2, 8, 1001)])
def test_mean_ess_agrees_with_arviz(kind, shape):
    x = draws_of(kind, np.random.default_rng(sum(shape) + 1), shape)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        expected = np.asarray(array_stats.ess(x, method="mean"), dtype=float)
    assert_agree({"ess_mean": mean_ess(x)}, {"ess_mean": expected})


def test_mean_ess_is_nan_where_arviz_gives_nan():
    x = np.random.default_rng(2).normal(size=(3, 4, 50))
    x[1, 0, 3] = np.nan
    got = mean_ess(x)
    assert np.isnan(got[1]) and np.isfinite(got[[0, 2]]).all()
    assert np.isnan(mean_ess(x[:, :, :3])).all()  # fewer than 4 draws a chain


@pytest.mark.parametrize("chains, draws", [(32, 100), (36, 51), (64, 20)])
def test_nested_rhat_agrees_with_arviz(chains, draws):
    rng = np.random.default_rng(chains)
    x = rng.normal(size=(5, chains, draws)) + 0.3 * rng.normal(size=(5, chains, 1))
    ids = superchain_ids(chains)
    mine = rank_diagnostics(x[:, : len(ids)], bulk=False, tail=False, superchains=ids)
    assert_agree(mine, {"rhat": arviz(x[:, : len(ids)], ids)["rhat"]})


def test_too_few_draws_and_nan_give_nan_as_arviz():
    rng = np.random.default_rng(0)
    short = rank_diagnostics(rng.normal(size=(2, 4, 3)))
    assert all(np.isnan(v).all() for v in short.values())
    x = rng.normal(size=(3, 4, 50))
    x[1, 2, 7] = np.nan
    mine = rank_diagnostics(x)
    assert all(np.isnan(v[1]) and np.isfinite(v[[0, 2]]).all() for v in mine.values())
    assert_agree({k: v[[0, 2]] for k, v in mine.items()}, arviz(x[[0, 2]]))


def test_only_the_diagnostics_asked_for():
    x = np.random.default_rng(1).normal(size=(2, 4, 40))
    assert set(rank_diagnostics(x, tail=False, rhat=False)) == {"ess_bulk"}
    assert set(rank_diagnostics(x, bulk=False)) == {"ess_tail", "rhat"}


def test_split_chains_and_ranks_with_ties():
    x = np.arange(10.0).reshape(1, 2, 5)
    np.testing.assert_array_equal(split_chains(x)[0], [[0, 1], [3, 4], [5, 6], [8, 9]])
    tied = np.array([[[1.0, 2.0, 2.0, 3.0]]])
    z = z_scale(tied)[0, 0]
    assert z[1] == z[2] and z[0] < z[1] < z[3] and z[0] == pytest.approx(-z[3])


def test_slowly_mixing_chains_get_every_lag():
    """ESS first looks at the early lags only; chains still correlated there get the full pass."""
    x = ar1(np.random.default_rng(7), 3, 4, 2000, np.array([0.3, 0.97, 0.995]))
    assert_agree(rank_diagnostics(x), arviz(x))


def test_blocked_checks_agree_and_do_not_depend_on_the_cores(monkeypatch):
    """A large check runs in blocks of scalars on every core: the same values as one block, to
    rounding, and the same bits with any number of threads (so the same stopping point anywhere)."""
    x = draws_of("ar1", np.random.default_rng(3), (21, 4, 1500))
    assert x.size >= PARALLEL_VALUES
    values = {}
    for workers in (1, 3):
        with ThreadPoolExecutor(max_workers=workers) as pool:
            monkeypatch.setattr(_until_diagnostics, "_pool", (os.getpid(), pool, workers))
            values[workers] = blocked_rank_diagnostics(x)
    for name, expected in rank_diagnostics(x).items():
        np.testing.assert_array_equal(values[1][name], values[3][name], err_msg=name)
        np.testing.assert_allclose(values[3][name], expected, rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", ["independent", "ties", "constant", "two values"])
def test_folded_scores_from_the_sorted_draws_equal_a_second_sort(kind):
    """The folded ranks come from merging the two runs of distances either side of the median (no
    second sort): the same scores, to the bit, as ranking the distances afresh, ties included."""
    rng = np.random.default_rng(11)
    shape = (7, 4, 300)
    x = rng.integers(0, 2, size=shape).astype(float) if kind == "two values" else draws_of(kind, rng, shape)
    flat = split_chains(x).reshape(len(x), -1)
    _, ordered, order = _until_diagnostics._normal_scores(flat)
    centre = np.median(flat, axis=1)
    expected = _until_diagnostics._normal_scores(np.abs(flat - centre[:, None]))[0]
    np.testing.assert_array_equal(_until_diagnostics._folded_scores(ordered, order), expected)


@pytest.mark.parametrize("values", [1_000, 10_000, 10**9])
def test_blocks_do_not_change_a_value(monkeypatch, values):
    """A check's blocks are a matter of speed only: blocks of any size give the bits of one block."""
    x = draws_of("ties", np.random.default_rng(4), (19, 4, 301))
    whole = rank_diagnostics(x)
    monkeypatch.setattr(_until_diagnostics, "BLOCK_VALUES", values)
    monkeypatch.setattr(_until_diagnostics, "BLOCK", 1)
    assert len(_until_diagnostics.blocks_of(x.shape)) == {1_000: 19, 10_000: 3, 10**9: 1}[values]
    for name, got in blocked_rank_diagnostics(x).items():
        np.testing.assert_array_equal(got, whole[name], err_msg=name)


def test_long_chains_make_blocks_of_fewer_scalars_with_the_same_values(monkeypatch):
    """Chains so long that `BLOCK` scalars pass `SCALAR_BLOCK_VALUES` draws go fewer at a time (one at
    least): memory stays bounded, every value the same."""
    x = draws_of("ar1", np.random.default_rng(6), (19, 4, 301))
    whole = rank_diagnostics(x)
    monkeypatch.setattr(_until_diagnostics, "BLOCK_VALUES", 1000)  # under one scalar's 4 x 301 draws
    assert len(_until_diagnostics.blocks_of(x.shape)) == 3  # BLOCK = 8 scalars a block
    monkeypatch.setattr(_until_diagnostics, "SCALAR_BLOCK_VALUES", 2 * 4 * 301)
    assert [b.start for b in _until_diagnostics.blocks_of(x.shape)] == list(range(0, 19, 2))
    monkeypatch.setattr(_until_diagnostics, "SCALAR_BLOCK_VALUES", 100)
    assert len(_until_diagnostics.blocks_of(x.shape)) == 19
    for name, got in blocked_rank_diagnostics(x).items():
        np.testing.assert_array_equal(got, whole[name], err_msg=name)


@pytest.mark.parametrize("kind", ["ar1", "constant"])
def test_the_folded_rhat_is_made_only_where_the_ess_targets_hold(kind):
    """With ESS targets, a scalar meeting them gets ArviZ's R-hat, to the bit of a full check; one short
    of them gets its bulk R-hat alone, a lower bound (it fails the check whatever its R-hat)."""
    x = draws_of(kind, np.random.default_rng(8), (12, 4, 400))
    x[5, 2] += 0.4  # a chain off the others: its folded R-hat can exceed the bulk one
    full = rank_diagnostics(x)
    targets = {"ess_bulk": float(np.median(full["ess_bulk"])), "ess_tail": 100.0}
    lazy = rank_diagnostics(x, ess_targets=targets)
    met = (full["ess_bulk"] >= targets["ess_bulk"]) & (full["ess_tail"] >= targets["ess_tail"])
    assert 0 < met.sum() < len(x)
    for name in ("ess_bulk", "ess_tail"):
        np.testing.assert_array_equal(lazy[name], full[name])
    np.testing.assert_array_equal(lazy["rhat"][met], full["rhat"][met])
    bulk_only = _until_diagnostics._rhat(z_scale(split_chains(x)), None)
    np.testing.assert_array_equal(lazy["rhat"][~met], bulk_only[~met])
    assert np.all(lazy["rhat"][~met] <= full["rhat"][~met])
    blocked = blocked_rank_diagnostics(x, ess_targets=targets)  # blocks keep every bit
    for name, got in blocked.items():
        np.testing.assert_array_equal(got, lazy[name], err_msg=name)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="minor page faults are read from /proc")
def test_a_check_reuses_the_memory_of_the_one_before(monkeypatch):
    """A check's blocks free megabytes of temporaries; the allocator keeps them for the next block and
    the next check (`_keep_freed_memory`) instead of handing them back and faulting them in again."""

    def minor_faults():
        with open("/proc/self/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[7])

    x = draws_of("ar1", np.random.default_rng(5), (40, 4, 2000))
    assert len(_until_diagnostics.blocks_of(x.shape)) > 2
    # this thread only: the workers' own first blocks would fault in memory of their own
    monkeypatch.setattr(
        _until_diagnostics, "_in_parallel", lambda compute, count: list(map(compute, range(count)))
    )
    blocked_rank_diagnostics(x[:, :, :1999])  # (odd: a copy of the split chains; warms every code path)
    before = minor_faults()
    for _ in range(3):
        blocked_rank_diagnostics(x)
    faults = minor_faults() - before
    # without it: ~2,000 faults per check (8 MB of temporaries per block of 8 scalars)
    assert faults < 300, faults
