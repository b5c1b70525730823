"""Bulk ESS, tail ESS, mean ESS and rank-normalized (or nested) split R-hat of many scalars at once.

The same estimators as ``arviz_stats`` (Vehtari et al. 2021; nested R-hat: Margossian et al. 2024),
computed for every scalar together instead of one scalar at a time: one sort of the draw axis per
rank transform for all scalars, one batched FFT autocovariance for all chains of all scalars, and
Geyer's initial positive and monotone sequences as array operations (a running minimum of the lag-pair
sums). The rank transform of the split chains is shared by bulk ESS and R-hat. Results agree with
``arviz_stats.ess(method="bulk")``, ``ess(method="tail", prob=0.05)`` (the 5% and 95% quantiles; without
``prob`` ArviZ 1.x measures others), ``rhat(method="rank")`` and ``rhat_nested`` to rounding
(tests/test_until_diagnostics.py). A check runs in blocks of scalars, on every core from
`PARALLEL_VALUES` draws (`blocked_rank_diagnostics`); a full check of the rat-tumor model (73 scalars,
4 chains of 2000 draws) costs ~30 ms of CPU, against ~400 ms for ArviZ's per-scalar estimators.
The command line's summary table (`cli._report.summary_table`) takes its ESS, R-hat and, through
`mean_ess` (``ess(method="mean")``), its MCSEs from here.

Every function takes draws shaped ``(scalar, chain, draw)``; a scalar with a NaN gives NaN, as ArviZ.

References:
    Vehtari, Gelman, Simpson, Carpenter, Bürkner (2021), Rank-normalization, folding, and
    localization: an improved R-hat for assessing convergence of MCMC. Bayesian Analysis 16(2).
    Margossian, Hoffman, Sountsov, Riou-Durand, Vehtari, Gelman (2024), Nested R-hat: assessing the
    convergence of Markov chain Monte Carlo when running many short chains. Bayesian Analysis.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft
from scipy.special import ndtri

__all__ = [
    "blocked_rank_diagnostics",
    "blocks_of",
    "in_scalar_blocks",
    "mean_ess",
    "rank_diagnostics",
    "split_chains",
    "z_scale",
]

MIN_DRAWS = 4  # fewer draws per chain: NaN, as ArviZ
BLOM = 3 / 8  # the offset of the normal scores of ranks (Blom 1958), as ArviZ
SHORT_LAGS = 64  # lags of the first, shorter autocovariance pass of an ESS
BLOCK = 8  # the fewest scalars of a block of a check
BLOCK_VALUES = 25_000  # draws of a block (at least BLOCK scalars): its arrays stay in cache, reused memory
PARALLEL_VALUES = 100_000  # from this many draws in all, a check runs its blocks on every core
BLOCK_ARRAYS = 24  # a block's temporaries, in arrays of its draws' size (bounds `_keep_freed_memory`)
SCALAR_BLOCK_VALUES = 2**21  # draws of a block of `in_scalar_blocks` (at least one scalar)
MALLOC_DYNAMIC_MAX = 32 << 20  # glibc's largest dynamic mmap threshold on 64-bit systems


def split_chains(x: np.ndarray) -> np.ndarray:
    """Each chain cut into its first and last halves (the middle draw of an odd length dropped):
    ``(scalar, 2 * chain, draw // 2)``, chain ``c``'s halves at ``2c`` and ``2c + 1``.

    ArviZ stacks all first halves before all second halves; every diagnostic here is the same for any
    order of the chains (nested R-hat gives each half its chain's superchain), and this order is a
    view, not a copy, when the length is even."""
    k, chains, draws = x.shape
    half = draws // 2
    if draws % 2:
        x = np.concatenate([x[..., :half], x[..., draws - half :]], axis=-1)
    return x.reshape(k, 2 * chains, half)


@functools.lru_cache(maxsize=4)
def _score_table(n: int) -> np.ndarray:
    """Normal scores of the ``2n - 1`` possible (half-integer) ranks of ``n`` values, by twice the rank
    - 2 (Blom's offset), as ArviZ's ``_z_scale`` computes them per draw; kept for the blocks of a check
    (read-only)."""
    table = ndtri((np.arange(2, 2 * n + 1) / 2 - BLOM) / (n - 2 * BLOM + 1))
    table.flags.writeable = False
    return table


def _scatter_scores(z: np.ndarray, order: np.ndarray, s: np.ndarray, table: np.ndarray) -> None:
    """Write into ``z`` (flat) the score of each value, given the flat positions ``order`` of the rows'
    values in sorted order (``(rows, n)``) and the sorted values ``s``: ties (rare, but a folded row
    always has some) get their average rank, handled where they are."""
    z[order] = table[::2]  # the scores of untied ranks, broadcast over the rows
    row, col = np.nonzero(s[:, 1:] == s[:, :-1])  # sorted position col ties with col + 1
    if row.size:
        # runs of consecutive tied positions form one tie group each: first..last + 1
        start = np.ones(row.size, bool)
        start[1:] = (row[1:] != row[:-1]) | (col[1:] != col[:-1] + 1)
        end = np.append(start[1:], True)
        group = np.cumsum(start) - 1
        value = table[col[start][group] + col[end][group] + 1]
        z[order[row, col]] = value
        z[order[row, col + 1]] = value


def _normal_scores(
    flat: np.ndarray, out: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normal scores of the ranks over each row of ``flat`` (``(rows, n)``; ties get their average
    rank, Blom's offset), as ArviZ's ``_z_scale``; the sorted rows; and the flat positions of their
    values (``order``, for `_folded_scores`). ``out`` (``rows * n`` floats) receives the scores.

    One sort per row; the scores come from a table of the possible ranks instead of an inverse normal
    CDF per draw. Gathers and scatters go through flat positions: a third of the time of
    ``take_along_axis`` and ``put_along_axis``."""
    rows, n = flat.shape
    flat = np.ascontiguousarray(flat)
    order = np.argsort(flat, axis=1)  # the kind does not matter: tied draws get the same rank
    order += (np.arange(rows) * n)[:, None]  # positions in the flattened rows
    s = flat.ravel()[order]
    z = np.empty(rows * n) if out is None else out.reshape(-1)
    _scatter_scores(z, order, s, _score_table(n))
    return z.reshape(rows, n), s, order


def _folded_scores(s: np.ndarray, order: np.ndarray) -> np.ndarray:
    """`_normal_scores` of the rows' distances from their medians, from their sorted values ``s``
    and the flat positions ``order`` of `_normal_scores`: no second sort.

    The values below the median, read backwards, and those above it, forwards, are two sorted runs of
    distances (``c - v`` is exactly ``-(v - c)``, and rounding is monotone), so the distances in order
    come from merging the two runs: a stable sort of two runs is one merge (timsort)."""
    rows, n = s.shape
    half = n // 2
    centre = (s[:, half - 1] + s[:, half]) / 2  # the median (n is even: the split chains hold every draw)
    runs = np.empty_like(s)
    np.subtract(centre[:, None], s[:, half - 1 :: -1], out=runs[:, :half])
    np.subtract(s[:, half:], centre[:, None], out=runs[:, half:])
    where = np.concatenate([order[:, half - 1 :: -1], order[:, half:]], axis=1)  # each run value's draw
    merged = np.argsort(runs, axis=1, kind="stable")
    merged += (np.arange(rows) * n)[:, None]
    z = np.empty(rows * n)
    _scatter_scores(z, where.ravel()[merged], runs.ravel()[merged], _score_table(n))
    return z.reshape(rows, n)


def z_scale(x: np.ndarray) -> np.ndarray:
    """Normal scores of the ranks of each scalar's draws over all its chains (ArviZ's ``_z_scale``)."""
    return _normal_scores(x.reshape(x.shape[0], -1))[0].reshape(x.shape)


def _quantiles(s: np.ndarray, probs) -> np.ndarray:
    """Quantiles of sorted rows as ``np.quantile(..., method="linear")``: ``(prob, row)``."""
    n = s.shape[1]
    out = []
    for p in probs:
        virtual = (n - 1) * p
        below = int(np.floor(virtual))
        above = min(below + 1, n - 1)
        gamma = virtual - below
        a, b = s[:, below], s[:, above]
        # numpy's _lerp, including its switch of end for gamma >= 0.5
        out.append(b - (b - a) * (1 - gamma) if gamma >= 0.5 else a + (b - a) * gamma)
    return np.stack(out)


def _mean_autocov(x: np.ndarray, mean: np.ndarray, m: int, lags: int) -> np.ndarray:
    """The mean over chains of the autocovariances at lags ``0..lags - 1`` of ``x - mean`` (``(scalar,
    chain, n)``), through FFTs of length ``m``: exact for lags up to ``m - n`` (no wrap-around)."""
    k, chains, n = x.shape
    padded = np.empty((k * chains, m))  # centred straight into the zero-padded rows: one copy, not two
    np.subtract(x, mean, out=padded[:, :n].reshape(k, chains, n))
    padded[:, n:] = 0.0
    f = rfft(padded, axis=1, overwrite_x=True)  # as rows: twice as fast as along a 3-d array's axis
    parts = np.square(f.view(np.float64), out=f.view(np.float64))  # real and imaginary parts squared
    power = np.add(parts[:, 0::2], parts[:, 1::2])
    # one inverse transform of the mean power spectrum gives the mean of the chains' autocovariances
    return irfft(power.reshape(k, chains, -1).mean(axis=1), n=m, axis=1)[:, :lags] / n


def _geyer(rho: np.ndarray, n: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """ESS from the autocorrelations ``rho`` (``(scalar, lags)``, ``rho[:, 0] == 1``) as ArviZ's loop,
    and whether ``rho`` had enough lags to decide it (else recompute with more)."""
    # The pairs (rho[2j], rho[2j+1]) are added while their sum is positive, for j up to the first
    # index whose odd lag reaches n - 3 (`bound`): ArviZ's loop, with its order of tests kept exactly.
    bound = max(0, -(-(n - 4) // 2))
    count = min(bound + 1, rho.shape[1] // 2)
    pairs = rho[:, 0 : 2 * count : 2] + rho[:, 1 : 2 * count : 2]
    stop = ~(pairs > 0)  # a NaN sum stops it too, as ``while ... and sum > 0`` does
    if count == bound + 1:
        stop[:, bound] = True
    decided = stop.any(axis=1)
    j = np.argmax(stop, axis=1)
    rows = np.arange(len(j))
    monotone = np.minimum.accumulate(pairs, axis=1)  # Geyer's initial monotone sequence
    before = np.arange(count)[None, :] < j[:, None]
    head = np.sum(np.where(before, monotone, 0.0), axis=1)
    even = rho[rows, 2 * j]
    kept = (pairs[rows, j] >= 0) | (even > 0)  # ArviZ keeps the last even lag in these two cases
    tau = -1.0 + 2.0 * head + np.where(kept, even, 0.0)
    used = np.arange(2 * count)[None, :] < (2 * j + 2)[:, None]
    broken = np.any(np.isnan(np.where(used, rho[:, : 2 * count], 0.0)), axis=1)
    tau = np.maximum(tau, 1.0 / np.log10(total))
    return np.where(broken, np.nan, total / tau), decided


def _ess(x: np.ndarray, constant: np.ndarray) -> np.ndarray:
    """ESS of chains ``(scalar, chain, draw)`` as ArviZ's ``_ess``: Geyer's initial monotone sequence
    of the multi-chain autocorrelation, capped below at ``1 / log10(draws)`` for its sum. ``constant``
    says which scalars are constant (the caller knows from its sorted draws, without a pass over ``x``).

    ArviZ transforms chains padded to twice their length, for every lag; the sum stops at the first
    lag pair whose sum is not positive, early for all but slowly mixing chains. So the first pass uses
    the lags up to ``SHORT_LAGS`` (or n / 8) only, through transforms of about half the length, and
    only the scalars it cannot decide are transformed again at full length: the same ESS."""
    k, chains, n = x.shape
    total = chains * n
    out = np.full(k, np.nan)
    live = ~constant
    out[constant] = total  # ArviZ: a constant scalar has the ESS of its number of draws
    if not live.any():
        return out
    if not live.all():
        x = x[live]
    means = x.mean(axis=2, keepdims=True)
    between = np.var(means[..., 0], axis=1, ddof=1) if chains > 1 else 0.0

    def ess_from(acov: np.ndarray, between) -> tuple[np.ndarray, np.ndarray]:
        mean_var = acov[:, 0] * n / (n - 1.0)
        var_plus = mean_var * (n - 1.0) / n + between
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = 1.0 - (mean_var[:, None] - acov) / var_plus[:, None]
        rho[:, 0] = 1.0
        return _geyer(rho, n, total)

    full = next_fast_len(2 * n)
    short = max(SHORT_LAGS, n // 8)
    m = next_fast_len(n + short)
    if m < 0.8 * full:
        ess, decided = ess_from(_mean_autocov(x, means, m, short + 1), between)
    else:
        ess, decided = np.empty(len(x)), np.zeros(len(x), bool)
    if not decided.all():
        again = ~decided
        part: np.ndarray | float = between[again] if chains > 1 else 0.0  # type: ignore[index]
        ess[again] = ess_from(_mean_autocov(x[again], means[again], full, n), part)[0]
    out[live] = ess
    return out


def _rhat(z: np.ndarray, superchains: np.ndarray | None) -> np.ndarray:
    """R-hat of ``(scalar, chain, draw)`` as ArviZ's ``_rhat``, or ``_rhat_nested`` given the
    superchain id of each chain (equal-sized superchains)."""
    n = z.shape[2]
    mean = z.mean(axis=2)
    var = z.var(axis=2, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if superchains is None:
            between, within = n * np.var(mean, axis=1, ddof=1), var.mean(axis=1)
            return np.sqrt((between / within + n - 1) / n)
        members = [superchains == g for g in np.unique(superchains)]
        super_mean = np.stack([mean[:, m].mean(axis=1) for m in members], axis=1)
        if members[0].sum() > 1:
            spread = np.stack([np.var(mean[:, m], axis=1, ddof=1) for m in members], axis=1)
        else:
            spread = np.zeros_like(super_mean)
        inner = np.stack([var[:, m].mean(axis=1) for m in members], axis=1)
        within = np.mean(inner + spread, axis=1)
        return np.sqrt(1 + np.var(super_mean, axis=1, ddof=1) / within)


def rank_diagnostics(
    x: np.ndarray,
    *,
    bulk: bool = True,
    tail: bool = True,
    rhat: bool = True,
    prob: float = 0.05,
    superchains: np.ndarray | None = None,
    ess_targets: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """The diagnostics asked for, of every scalar of ``x``: name -> values ``(scalar,)``.

    Args:
        x: draws ``(scalar, chain, draw)``.
        bulk: bulk ESS (``"ess_bulk"``).
        tail: tail ESS (``"ess_tail"``): the smaller ESS of the indicators of the ``prob`` and
            ``1 - prob`` quantiles.
        rhat: rank-normalized split R-hat (``"rhat"``): the larger of the bulk and the folded R-hat.
        prob: the tail probability of tail ESS (ArviZ's ``prob``).
        superchains: superchain id of each chain (equal-sized superchains) for nested R-hat, or None.
        ess_targets: ``{"ess_bulk": ..., "ess_tail": ...}`` (either or both): the folded R-hat (a
            second rank transform, a third of a check) is computed only for the scalars whose ESS
            meets these targets; the R-hat of the others is the bulk R-hat alone, a lower bound of
            theirs (such a scalar fails its check on ESS whatever its R-hat).
    """
    x = np.asarray(x, dtype=np.float64)
    k, chains, draws = x.shape
    out: dict[str, np.ndarray] = {}
    valid = np.full(k, draws >= MIN_DRAWS) & ~np.isnan(x).any(axis=(1, 2))
    nan = np.full(k, np.nan)
    if not valid.any():
        return {name: nan for name, on in (("ess_bulk", bulk), ("ess_tail", tail), ("rhat", rhat)) if on}
    if not valid.all():
        x = np.where(valid[:, None, None], x, 0.0)  # NaN scalars computed as zeros, reported as NaN
    split = split_chains(x)
    flat = split.reshape(k, -1)
    # every ESS from one batched autocovariance: bulk, then the indicators of the two tail quantiles
    series = np.empty((int(bulk) + 2 * int(tail), *split.shape))
    # the scores are shared by bulk ESS (written straight into its series) and R-hat
    z, ordered, order = _normal_scores(flat, series[0] if bulk else None)
    z = z.reshape(split.shape)
    # which series are constant, from the sorted draws (no pass over the series): the scores when every
    # draw ties, an indicator when every draw is at or below its quantile, or none is
    constant = [ordered[:, 0] == ordered[:, -1]] if bulk else []
    if tail:
        probs = sorted((prob, 1 - prob))
        # the split chains hold every draw when the length is even, so their sorted rows serve
        quantiles = _quantiles(ordered, probs) if draws % 2 == 0 else np.quantile(x.reshape(k, -1), probs, 1)
        for i, q in enumerate(quantiles, start=int(bulk)):
            np.less_equal(split, q[:, None, None], out=series[i])
            constant.append(~(ordered[:, 0] <= q) | (ordered[:, -1] <= q))
    if len(series):
        flat_series = series.reshape(-1, *split.shape[1:])
        ess = _ess(flat_series, np.concatenate(constant)).reshape(len(series), k)
        if bulk:
            out["ess_bulk"] = np.where(valid, ess[0], np.nan)
        if tail:
            out["ess_tail"] = np.where(valid, np.minimum(ess[-2], ess[-1]), np.nan)
    if rhat:
        if chains < 2:
            out["rhat"] = nan
            return out
        ids = None if superchains is None else np.repeat(superchains, 2)  # as split_chains orders
        rank = _rhat(z, ids)
        fold = np.full(k, np.nan)  # not computed: the bulk R-hat stands (NaN > r is False)
        rows = np.flatnonzero(_meets(out, ess_targets, k))
        if rows.size:
            fold[rows] = _rhat(_folded_rows(flat, ordered, order, rows).reshape(-1, *split.shape[1:]), ids)
        # ArviZ takes Python's max(bulk, folded): NaN if the bulk one is NaN, else the larger
        worst = np.where(np.isnan(rank), np.nan, np.where(fold > rank, fold, rank))
        out["rhat"] = np.where(valid, worst, np.nan)
    return out


def mean_ess(x: np.ndarray) -> np.ndarray:
    """ESS of the mean of every scalar of ``x`` (``(scalar, chain, draw)``): ArviZ's
    ``ess(method="mean")``, the split chains' draws as they are (no ranks), what its MCSE of the mean
    and of the sd divide by. NaN for a scalar with a NaN or fewer than `MIN_DRAWS` draws a chain; a
    constant one has the ESS of its number of draws, as ArviZ."""
    x = np.asarray(x, dtype=np.float64)
    k, _, draws = x.shape
    out = np.full(k, np.nan)
    valid = np.full(k, draws >= MIN_DRAWS) & ~np.isnan(x).any(axis=(1, 2))
    if not valid.any():
        return out
    split = split_chains(x[valid] if not valid.all() else x)
    flat = split.reshape(len(split), -1)
    with np.errstate(invalid="ignore"):  # inf - inf: not constant, and its ESS is NaN
        constant = (flat.max(axis=1) - flat.min(axis=1)) < np.finfo(np.float64).resolution
    out[valid] = _ess(split, constant)
    return out


def _meets(ess: dict[str, np.ndarray], targets: dict[str, float] | None, k: int) -> np.ndarray:
    """Which of ``k`` scalars meet the ESS ``targets`` (all of them without targets; NaN fails)."""
    met = np.ones(k, bool)
    for name, target in (targets or {}).items():
        if name in ess:
            met &= ess[name] >= target
    return met


def _folded_rows(flat: np.ndarray, ordered: np.ndarray, order: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`_folded_scores` of the rows ``rows`` of ``flat`` (``(rows, n)``), given its sorted rows
    ``ordered`` and their flat positions ``order`` (`_normal_scores`): ``(len(rows), n)``."""
    n = flat.shape[1]
    if len(rows) < len(flat):  # the positions of the chosen rows, renumbered from 0
        ordered = ordered[rows]
        order = order[rows] + ((np.arange(len(rows)) - rows) * n)[:, None]
        flat = flat[rows]
    half = n // 2
    if np.isfinite(ordered[:, half - 1 : half + 1]).all():
        return _folded_scores(ordered, order)
    # an infinite median: distances of inf - inf are NaN, which only a sort puts in their place
    centre = (ordered[:, half - 1] + ordered[:, half]) / 2
    with np.errstate(invalid="ignore"):
        distances = np.abs(flat - centre[:, None])
    return _normal_scores(distances)[0]


# (the process that made it, the pool, its number of threads)
_pool: tuple[int, ThreadPoolExecutor | None, int] | None = None


def _workers() -> tuple[ThreadPoolExecutor | None, int]:
    """Threads for the blocks of a large check beside the calling thread, one per other core (None on
    one core): made once per process (a forked child has none of its parent's threads, so it makes its
    own)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        from pytensor_blackjax.run._layouts import available_cores

        cores = available_cores()
        pool = ThreadPoolExecutor(cores - 1, thread_name_prefix="pbj-until-check") if cores > 1 else None
        _pool = (os.getpid(), pool, cores - 1)
    return _pool[1], _pool[2]


def _in_parallel(compute, count: int) -> list:
    """``compute(i)`` for ``i < count``, shared between the calling thread and the worker threads, each
    taking the next block when it is done with one. The calling thread takes part: its memory is the
    sampler's, already touched, while a worker's first blocks page-fault theirs (the first until-run of a
    process: ~45 ms of the rat tumors' checks with one more worker than needed)."""
    pool, threads = _workers()
    results: list = [None] * count
    blocks = iter(range(count))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                i = next(blocks, None)
            if i is None:
                return
            results[i] = compute(i)

    helpers = [] if pool is None else [pool.submit(work) for _ in range(min(threads, count - 1))]
    work()
    for helper in helpers:
        helper.result()
    return results


_kept = 0  # bytes of the largest block temporaries `_keep_freed_memory` has made room for


def _keep_freed_memory(nbytes: int) -> None:
    """Let the C allocator keep ``nbytes`` of freed memory instead of handing it back to the system.

    A block's temporaries (sorted draws, positions, scores, padded FFT rows; a few megabytes) are
    freed when the block is done; glibc's malloc returns the freed top of its heap to the system
    once it exceeds the trim threshold, and serves requests above the mmap threshold with fresh
    mappings, so the next block touched every page again: ~19,000 page faults and ~45 ms of system
    time in a full check of the rat tumors' 73 scalars at 2100 draws, a third of its time. Both
    thresholds follow the largest mapped block freed so far (mallopt(3), "dynamic mmap threshold";
    the trim threshold is twice it, up to `MALLOC_DYNAMIC_MAX`), so freeing one untouched mapping of
    the size wanted raises them as any program's large array would, once per size: later blocks
    reuse their memory. Other allocators ignore it; the values computed do not depend on it."""
    global _kept
    nbytes = min(nbytes, MALLOC_DYNAMIC_MAX)
    if nbytes > _kept:
        _kept = nbytes
        np.empty(nbytes // 8)  # freed at once; a mapping never touched: no page is faulted in


def _joined(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The per-scalar values of consecutive blocks of scalars, as one block's."""
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def blocks_of(shape: tuple[int, ...]) -> list[slice]:
    """The blocks of scalars of a check of draws shaped ``shape`` (``(scalar, chain, draw)``): about
    `BLOCK_VALUES` draws each, at least `BLOCK` scalars unless that passes `SCALAR_BLOCK_VALUES` draws
    (long chains: at least one scalar); they depend on the shape only."""
    scalars, per = shape[0], max(1, math.prod(shape[1:]))
    size = max(min(BLOCK, max(1, SCALAR_BLOCK_VALUES // per)), BLOCK_VALUES // per)
    return [slice(i, i + size) for i in range(0, scalars, size)]


def in_scalar_blocks(
    compute: Callable[[np.ndarray], dict[str, np.ndarray]], x: np.ndarray, max_values: int | None = None
) -> dict[str, np.ndarray]:
    """``compute`` (per-scalar values of draws ``(scalar, chain, draw)``) of ``x`` in blocks of scalars
    of at most ``max_values`` draws (default `SCALAR_BLOCK_VALUES`; one scalar at least), joined: a run's
    whole draws make temporaries of ~20 times their size at once (2 chains x 2 million draws of 11
    scalars: 5.8 GB), a block ~20 times the block's. Every value is computed per scalar, so it does not
    depend on the blocks (the same bits: tests)."""
    per = max(1, math.prod(x.shape[1:]))
    size = max(1, (max_values or SCALAR_BLOCK_VALUES) // per)
    # contiguous, as each block's copy is: NumPy's sums then add every scalar's draws in the same order
    if x.shape[0] <= size:
        return compute(np.ascontiguousarray(x))
    parts = [compute(np.ascontiguousarray(x[i : i + size])) for i in range(0, x.shape[0], size)]
    return _joined(parts)


def blocked_rank_diagnostics(x: np.ndarray, **options) -> dict[str, np.ndarray]:
    """`rank_diagnostics` of ``x`` in blocks of scalars (`blocks_of`), run on every core when ``x``
    holds at least `PARALLEL_VALUES` draws (a check runs between chunks, when the sampler's threads
    are idle).

    Blocks keep a check's arrays (a few of them per draw) small: one block of all 73 rat-tumor scalars
    at 1800 draws makes ~20 MB of temporaries, which the allocator hands back to the system and takes
    again, page by page, at every check (a third of its CPU time, in page faults); blocks of 100,000
    draws still page-faulted ~60 MB in a process's first until-run (its full check at 2000 draws: 60 ms
    against 31 ms in blocks of 25,000, and 27-34 ms against 25-28 ms in later runs). Every value is
    computed per scalar, so it does not depend on the blocks (the same bits: tests); NumPy's sorts,
    gathers and ufuncs and SciPy's FFTs release the GIL, so the blocks run in parallel."""
    x = np.asarray(x, dtype=np.float64)
    blocks = blocks_of(x.shape)
    _keep_freed_memory(BLOCK_ARRAYS * 8 * min(blocks[0].stop, x.shape[0]) * math.prod(x.shape[1:]))
    if len(blocks) == 1:
        return rank_diagnostics(x, **options)
    if x.size >= PARALLEL_VALUES:
        parts = _in_parallel(lambda i: rank_diagnostics(x[blocks[i]], **options), len(blocks))
    else:
        parts = [rank_diagnostics(x[block], **options) for block in blocks]
    return _joined(parts)
