"""Rank-normalised split R-hat and bulk ESS (Vehtari, Gelman, Simpson, Carpenter & Buerkner 2021).

A small NumPy version for the post-sampling warning, so that every ``sample`` call does not pay for
importing a full diagnostics stack; ``arviz_stats`` remains the reference for reports.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

__all__ = ["bulk_ess", "rank_rhat"]


def _split(x: np.ndarray) -> np.ndarray:
    """(chains, draws, k) -> (2 * chains, draws // 2, k)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _z_scale(x: np.ndarray) -> np.ndarray:
    chains, draws, k = x.shape
    flat = x.reshape(chains * draws, k)
    ranks = np.empty_like(flat)
    order = np.argsort(flat, axis=0, kind="stable")
    np.put_along_axis(ranks, order, np.arange(1, flat.shape[0] + 1, dtype=float)[:, None], axis=0)
    return ndtri((ranks - 0.375) / (flat.shape[0] + 0.25)).reshape(chains, draws, k)


def _rhat(x: np.ndarray) -> np.ndarray:
    n = x.shape[1]
    within = x.var(axis=1, ddof=1).mean(axis=0)
    between = n * x.mean(axis=1).var(axis=0, ddof=1)
    var_plus = (n - 1) / n * within + between / n
    return np.sqrt(var_plus / np.maximum(within, 1e-300))


def rank_rhat(x: np.ndarray) -> np.ndarray:
    """max(bulk, folded) rank-normalised split R-hat of (chains, draws, k) draws, one per column."""
    split = _split(x)
    folded = np.abs(split - np.median(split.reshape(-1, split.shape[-1]), axis=0))
    return np.maximum(_rhat(_z_scale(split)), _rhat(_z_scale(folded)))


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance along axis 1 of (chains, draws, k), by FFT."""
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    return np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=1)[:, :n] / n


def _ess(x: np.ndarray) -> np.ndarray:
    chains, n, _ = x.shape
    acov = _autocov(x)
    within = acov[:, 0].mean(axis=0) * n / (n - 1)
    var_plus = within * (n - 1) / n
    if chains > 1:
        var_plus = var_plus + x.mean(axis=1).var(axis=0, ddof=1)
    rho = 1.0 - (within - acov.mean(axis=0)) / np.maximum(var_plus, 1e-300)  # (n, k)
    rho[0] = 1.0
    pairs = rho[:-1:2] + rho[1::2]  # Geyer's initial positive sequence ...
    positive = np.cumprod(pairs > 0, axis=0).astype(bool)
    pairs = np.where(positive, pairs, 0.0)
    pairs = np.minimum.accumulate(np.where(positive, pairs, np.inf), axis=0)  # ... made monotone
    pairs = np.where(positive, pairs, 0.0)
    tau = -1.0 + 2.0 * pairs.sum(axis=0)
    return chains * n / np.maximum(tau, 1.0 / np.log10(chains * n))


def bulk_ess(x: np.ndarray) -> np.ndarray:
    """Bulk effective sample size of (chains, draws, k) draws, one per column."""
    return _ess(_z_scale(_split(x)))
