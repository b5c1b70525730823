"""What the live page shows, computed from committed draws: plain arrays and rows, no Bokeh.

`Watcher` keeps it current: it runs off the page's document lock, once per new commit; the page only
copies the result into its data sources.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pytensor_blackjax.results import EBFMI_MIN, ESS_PER_CHAIN_MIN, RHAT_MAX, TAIL_PROB, ebfmi
from pytensor_blackjax.store._watch_read import CommittedDraws, StoreStatus, read_status

__all__ = [
    "EBFMI_MIN",
    "ESS_PER_CHAIN_MIN",
    "RHAT_MAX",
    "Rate",
    "View",
    "Watcher",
    "build_view",
    "thin_index",
]


@dataclass(frozen=True)
class DiagnosticRow:
    label: str
    rhat: float
    ess_bulk: float
    ess_tail: float


@dataclass(frozen=True)
class ChainRow:
    chain: int
    step_size: float
    tree_depth: float
    n_steps: float
    acceptance: float
    divergences: int
    ebfmi: float


@dataclass(frozen=True)
class View:
    """Everything the page draws, for one commit."""

    status: StoreStatus
    version: int  # grows with every new view; a page redraws when it changes
    eta_seconds: float | None
    draws_per_second: float | None
    labels: tuple[str, ...] = ()
    columns: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))  # (chain, draw, component)
    diverging: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))  # (chain, draw)
    energy: np.ndarray | None = None  # (chain, draw)
    diagnostics: tuple[DiagnosticRow, ...] = ()
    chains: tuple[ChainRow, ...] = ()

    @property
    def ess_min(self) -> float:
        return ESS_PER_CHAIN_MIN * max(1, self.status.chains)


class Rate:
    """Progress per second from the watcher's own observations (the store keeps no timestamps)."""

    def __init__(self, window: int = 20):
        self.window = window
        self.seen: list[tuple[float, str, int]] = []

    def observe(self, status: StoreStatus, now: float | None = None) -> tuple[float | None, float | None]:
        """(units per second, seconds left) of the current phase; None until two points are seen."""
        phase = status.phase
        if phase == "warmup" and status.warmup is not None:
            done, total = int(status.warmup["steps_done"]), status.tune
        elif phase == "sampling":
            done, total = status.num_draws, status.draws
        else:
            return None, None
        now = time.time() if now is None else now
        if not self.seen or self.seen[-1][1:] != (phase, done):
            self.seen.append((now, phase, done))
        same = [(t, d) for t, p, d in self.seen[-self.window :] if p == phase]
        if len(same) < 2 or same[-1][1] == same[0][1]:
            return None, None
        rate = (same[-1][1] - same[0][1]) / max(same[-1][0] - same[0][0], 1e-9)
        left = (total - done) / rate
        if phase == "warmup":  # and then every draw, at about the same speed per step
            left += status.draws / rate
        return rate, left


def component_labels(name: str, shape: tuple[int, ...], dims: tuple[str, ...], coords: dict) -> list[str]:
    """``theta[0]``, ``theta[1]``... (coordinate values where the store has them)."""
    if not shape:
        return [name]
    axes = []
    for dim, size in zip(dims, shape, strict=True):
        values = coords.get(dim)
        axes.append([str(v) for v in values] if values is not None and len(values) == size else range(size))
    grids = np.meshgrid(*[np.arange(len(a)) for a in axes], indexing="ij")
    flat = [g.ravel() for g in grids]
    return [
        f"{name}[{','.join(str(axes[a][i[a]]) for a in range(len(axes)))}]" for i in zip(*flat, strict=True)
    ]


def _columns(draws: CommittedDraws) -> tuple[list[str], np.ndarray]:
    labels, blocks = [], []
    for name, values in draws.arrays.get("posterior", {}).items():
        if values.dtype.kind not in "fiub" or values.size == 0:
            continue
        dims = draws.dims[f"posterior/{name}"][2:]
        labels += component_labels(name, values.shape[2:], dims, draws.coords)
        blocks.append(values.reshape(values.shape[0], values.shape[1], -1).astype(float))
    if not blocks:
        return [], np.zeros((0, 0, 0))
    return labels, np.concatenate(blocks, axis=2)


def _diagnostics(labels: list[str], columns: np.ndarray) -> tuple[DiagnosticRow, ...]:
    """Rank-normalised R-hat, bulk and tail ESS of every scalar component: ArviZ's estimators, for
    all components at once (`rank_diagnostics`; a page refresh beside running chains takes ~10 ms of
    CPU for the rat tumors' 73, not ArviZ's ~0.2 s one at a time); NaN below 4 draws a chain, as ArviZ."""
    from pytensor_blackjax.run._until_diagnostics import in_scalar_blocks, rank_diagnostics

    with np.errstate(all="ignore"):
        out = in_scalar_blocks(lambda x: rank_diagnostics(x, prob=TAIL_PROB), np.moveaxis(columns, 2, 0))
    return tuple(
        DiagnosticRow(label, float(r), float(b), float(t))
        for label, r, b, t in zip(labels, out["rhat"], out["ess_bulk"], out["ess_tail"], strict=True)
    )


def _ebfmi(energy: np.ndarray) -> np.ndarray:
    if energy.shape[1] < 3:
        return np.full(energy.shape[0], np.nan)
    with np.errstate(all="ignore"):
        return ebfmi(energy)


def _chain_rows(status: StoreStatus, stats: dict[str, np.ndarray], energy) -> tuple[ChainRow, ...]:
    chains = status.chains
    warm = status.warmup or {}

    def per_chain(name: str, reduce=np.nanmean) -> np.ndarray:
        if name not in stats or stats[name].shape[1] == 0:
            return np.full(chains, np.nan)
        with np.errstate(all="ignore"):
            return np.asarray(reduce(stats[name].astype(float), axis=1))

    step = per_chain("step_size")
    if np.all(np.isnan(step)) and warm.get("step_size") is not None:
        step = np.full(chains, float(warm["step_size"]))  # during warmup: the mean over chains
    divergences = per_chain("diverging", np.nansum)
    ebfmi = _ebfmi(energy) if energy is not None else np.full(chains, np.nan)
    return tuple(
        ChainRow(
            chain=c,
            step_size=float(step[c]),
            tree_depth=float(per_chain("tree_depth")[c]),
            n_steps=float(per_chain("n_steps")[c]),
            acceptance=float(per_chain("acceptance_rate")[c]),
            divergences=int(np.nan_to_num(divergences[c])),
            ebfmi=float(ebfmi[c]),
        )
        for c in range(chains)
    )


def build_view(
    status: StoreStatus, draws: CommittedDraws, *, version: int, rate: Rate, previous: View | None = None
) -> View:
    """Diagnostics and plot data for the draws committed so far; those of ``previous`` are reused when
    no draw was committed since (only the phase or the warmup note moved)."""
    per_second, left = rate.observe(status)
    stats = draws.arrays.get("sample_stats", {})
    energy = stats.get("energy")
    energy = None if energy is None else energy.astype(float)
    chains = _chain_rows(status, stats, energy)
    if previous is not None and previous.status.num_draws == status.num_draws:
        return dataclasses.replace(
            previous,
            status=status,
            version=version,
            eta_seconds=left,
            draws_per_second=per_second,
            chains=chains,
        )
    labels, columns = _columns(draws)
    diverging = stats.get("diverging")
    if diverging is None:
        diverging = np.zeros(columns.shape[:2], bool)
    return View(
        status=status,
        version=version,
        eta_seconds=left,
        draws_per_second=per_second,
        labels=tuple(labels),
        columns=columns,
        diverging=diverging.astype(bool),
        energy=energy,
        diagnostics=_diagnostics(labels, columns),
        chains=chains,
    )


def thin_index(num_draws: int, max_points: int) -> np.ndarray:
    """Evenly spaced draw indices, at most ``max_points``: long traces stay light in the browser."""
    stride = max(1, -(-num_draws // max_points))
    return np.arange(0, num_draws, stride)


class Watcher:
    """The latest `View` of one store, shared by every page the server shows."""

    def __init__(self, path: Path):
        self.path = path
        self.draws = CommittedDraws(path)
        self.rate = Rate()
        self.view: View | None = None
        self.error = ""
        self._key: tuple | None = None

    def refresh(self) -> None:
        """Read the commit record; read new draws and recompute only when something changed."""
        try:
            status = read_status(self.path)
            key = (status.phase, status.num_draws, (status.warmup or {}).get("steps_done"))
            if key == self._key:
                return
            self.draws.advance(status.num_draws)
            view = build_view(
                status, self.draws, version=self._version() + 1, rate=self.rate, previous=self.view
            )
            self.view, self._key, self.error = view, key, ""
        except (OSError, ValueError) as e:  # e.g. the store was moved away: say so, keep the last view
            self.error = f"cannot read the store now: {e}"

    def _version(self) -> int:
        return self.view.version if self.view is not None else 0
