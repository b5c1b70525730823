"""Figures for the command line and the report, drawn with arviz-plots on matplotlib's Agg backend.

Large posteriors would give unreadable figures (71 stacked traces, a 74 x 74 pair matrix), so every
figure shows a bounded subset: the first variables and the first entries of each dimension. The
subset is described in words (`Figure.note`) so that the report and the terminal can say so.
"""

from __future__ import annotations

import io
import math
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import xarray as xr

__all__ = ["FORMATS", "KINDS", "Figure", "draw", "select"]

SAMPLE_DIMS = ("chain", "draw")

# kind -> (most variables, most entries per variable, most entries in all): what stays readable.
_LIMITS = {
    "trace": (8, 5, 40),
    "rank": (6, 3, 8),
    "pair": (5, 3, 5),
    "forest": (8, 20, 60),
    "energy": (0, 0, 0),
}
KINDS = tuple(_LIMITS)
FORMATS = ("png", "svg", "pdf")


@dataclass(frozen=True)
class Figure:
    """A drawn figure as image bytes, with a sentence saying which part of the posterior it shows."""

    kind: str
    data: bytes
    note: str
    format: str = "png"

    def save(self, path: str) -> None:
        with open(path, "wb") as f:
            f.write(self.data)


def _per_dim_caps(posterior: xr.Dataset, per_var: int) -> dict[Hashable, int]:
    """How many entries to keep along each non-sample dimension, so no variable exceeds ``per_var``."""
    caps: dict[Hashable, int] = {}
    for var in posterior.data_vars.values():
        dims = [d for d in var.dims if d not in SAMPLE_DIMS]
        if not dims:
            continue
        keep = max(1, math.floor(per_var ** (1 / len(dims))))
        for d in dims:
            caps[d] = min(caps.get(d, keep), keep)
    return caps


def _entries(var: xr.DataArray) -> int:
    return int(np.prod([n for d, n in var.sizes.items() if d not in SAMPLE_DIMS], dtype=int))


def _entries_named(posterior: xr.Dataset, names: list[str]) -> tuple[xr.Dataset, list[str]]:
    """Variables by name, or entries by summary label (``a[c0]``, ``b[c0, d1]``); unknown ones raise.

    An entry selects its labels on every variable sharing those dimensions.
    """
    chosen: list[str] = []
    labels: dict[str, list] = {}
    for name in names:
        base, _, rest = name.partition("[")
        if name in posterior.data_vars:
            base, rest = name, ""
        if base not in posterior.data_vars or (rest and not rest.endswith("]")):
            raise ValueError(
                f"--var {name!r} is not in the posterior; its variables are {list(posterior.data_vars)} "
                "(an entry is written as in the summary, e.g. 'theta[0]')."
            )
        dims = [d for d in posterior[base].dims if d not in SAMPLE_DIMS]
        wanted = [w.strip() for w in rest[:-1].split(",")] if rest else []
        if wanted and len(wanted) != len(dims):
            raise ValueError(
                f"--var {name!r}: {base!r} has {len(dims)} dimensions {dims}; give one label each."
            )
        for dim, label in zip(dims, wanted, strict=False):
            by_text = {str(v): v for v in posterior[dim].values.tolist()}
            if label not in by_text:
                raise ValueError(
                    f"--var {name!r}: {label!r} is not a label of dimension {dim!r}; "
                    f"its labels start {list(by_text)[:10]}."
                )
            if by_text[label] not in labels.setdefault(str(dim), []):
                labels[str(dim)].append(by_text[label])
        if base not in chosen:
            chosen.append(base)
    return (posterior.sel(labels) if labels else posterior), chosen


def select(posterior: xr.Dataset, kind: str, var_names: list[str] | None = None) -> tuple[xr.Dataset, str]:
    """The readable subset of ``posterior`` for a figure of ``kind``, and a sentence describing it.

    Args:
        posterior: the ``posterior`` group, dims ``(chain, draw, ...)``.
        kind: one of `KINDS`.
        var_names: variables to show (all by default); unknown names raise ValueError.

    Returns:
        (subset, note); the note is empty when everything is shown.

    Example:
        >>> subset, note = select(tree["posterior"].to_dataset(), "trace")
    """
    max_vars, per_var, total = _LIMITS[kind]
    posterior, names = _entries_named(posterior, [str(v) for v in (var_names or posterior.data_vars)])
    notes = []
    if len(names) > max_vars:
        notes.append(f"the first {max_vars} of {len(names)} variables")
        names = names[:max_vars]
    subset = posterior[names]
    caps = _per_dim_caps(subset, per_var)

    def panels() -> int:
        return sum(
            int(
                np.prod(
                    [min(n, caps.get(d, n)) for d, n in subset[v].sizes.items() if d not in SAMPLE_DIMS],
                    dtype=int,
                )
            )
            for v in names
        )

    # Too many panels: first show fewer entries of the longest dimension, then drop trailing variables.
    while panels() > total:
        wide = [d for d in caps if min(caps[d], subset.sizes[d]) > 1]
        if wide:
            longest = max(wide, key=lambda d: min(caps[d], subset.sizes[d]))
            caps[longest] = min(caps[longest], subset.sizes[longest]) - 1
        elif len(names) > 1:
            notes.append(f"{names.pop()} left out")
            subset = subset[names]
        else:
            break
    trimmed = {d: c for d, c in caps.items() if d in subset.dims and subset.sizes[d] > c}
    if trimmed:
        subset = subset.isel({d: slice(0, c) for d, c in trimmed.items()})
        for name in names:
            full, kept = _entries(posterior[name]), _entries(subset[name])
            if kept < full:
                notes.append(f"{name}: the first {kept} of {full} entries")
    note = ("Showing " + "; ".join(notes) + ".") if notes else ""
    return subset, note


def _collection(tree: xr.DataTree, subset: xr.Dataset, kind: str):
    import arviz_plots as ap

    small = xr.DataTree.from_dict(
        {
            "/posterior": subset,
            **(
                {"/sample_stats": tree["sample_stats"].to_dataset()}
                if "sample_stats" in tree.children
                else {}
            ),
        }
    )
    if kind == "trace":
        return ap.plot_trace_dist(small, backend="matplotlib")
    if kind == "rank":
        return ap.plot_rank(small, backend="matplotlib")
    if kind == "pair":
        return ap.plot_pair(small, backend="matplotlib")
    if kind == "forest":
        return ap.plot_forest(small, backend="matplotlib", combined=True)
    return ap.plot_energy(small, backend="matplotlib")


def _one_line_titles(fig) -> None:
    """``theta\\n1`` panel titles -> ``theta[1]``, and room between rows: a title ran into the x-axis
    labels of the row above."""
    rows = len({round(ax.get_position().y0, 3) for ax in fig.axes})
    if rows > 1 and fig.get_layout_engine() is None:
        width, height = fig.get_size_inches()
        fig.set_size_inches(width, height * 1.3)
        fig.subplots_adjust(hspace=0.6)
    for ax in fig.axes:
        for loc in ("center", "left", "right"):
            title = ax.get_title(loc=loc)
            if "\n" in title:
                name, *labels = title.split("\n")
                ax.set_title(f"{name}[{', '.join(labels)}]", loc=loc)


def draw(
    tree: xr.DataTree, kind: str, *, var_names: list[str] | None = None, fmt: str = "png", dpi: int = 100
) -> Figure:
    """Draw one diagnostic figure of a sampling result.

    Args:
        tree: a result of ``pbj.sample`` (or one read back from ``results.zarr``).
        kind: "trace" (marginal densities and traces), "rank", "pair", "forest" or "energy".
        var_names: variables to show; by default all, trimmed to a readable subset.
        fmt: image format, one of `FORMATS`.
        dpi: resolution of raster images.

    Returns:
        A `Figure` holding the image bytes and a note on what was left out.

    Raises:
        ValueError: an unknown kind or variable, or an energy plot without sampler energies.

    Example:
        >>> draw(tree, "trace").save("trace.png")
    """
    import matplotlib

    # The command line only ever writes files; a windowing backend would need a display.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if kind not in _LIMITS:
        raise ValueError(f"--kind {kind!r} is not known; use one of {list(KINDS)}.")
    if "posterior" not in tree.children:
        raise ValueError("the results hold no posterior group; nothing to plot.")
    posterior = tree["posterior"].to_dataset()
    if kind == "energy":
        stats = tree["sample_stats"].to_dataset() if "sample_stats" in tree.children else xr.Dataset()
        if "energy" not in stats:
            raise ValueError(
                "--kind energy needs the sampler's energies (sample_stats.energy), which this "
                "sampler does not record; use --kind trace or rank."
            )
        subset, note = posterior, ""
    else:
        subset, note = select(posterior, kind, var_names)
    collection = _collection(tree, subset, kind)
    fig = collection.get_viz("figure")
    _one_line_titles(fig)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Figure(kind=kind, data=buffer.getvalue(), note=note, format=fmt)
