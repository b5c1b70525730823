"""The live page of ``pytensor-blackjax watch``: HTML for text and tables, the data behind each plot, and
`Page`, one browser tab's Bokeh document. The server that shows it is `cli._watch`; together they hold
every Bokeh line of the package.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

try:
    from bokeh.core.templates import get_env
    from bokeh.document import Document
    from bokeh.layouts import column, row
    from bokeh.models import ColumnDataSource
    from bokeh.models.annotations import Span, Title
    from bokeh.models.widgets import Div, Select
    from bokeh.palettes import Category10_10
    from bokeh.plotting import figure
except ImportError as e:  # the optional extra
    raise ImportError(
        f"the live page needs Bokeh, which is not installed ({e}); install it with "
        "pip install 'pytensor-blackjax[watch]'."
    ) from e

from pytensor_blackjax.cli._watch_stats import EBFMI_MIN, RHAT_MAX, View, Watcher, thin_index

__all__ = ["REFRESH_MS", "Page", "energy_data", "pair_data", "rank_data", "trace_data"]

REFRESH_MS = 1000
MAX_TRACE_POINTS = 1000  # per chain: a 100,000-draw trace is drawn from every 100th draw
MAX_PAIR_POINTS = 4000  # over all chains; divergent draws are always all drawn
RANK_BINS = 20
PHASE_COLOURS = {"warmup": "#b26b00", "sampling": "#1f6fb2", "complete": "#2e7d32", "interrupted": "#c62828"}
BAD, GOOD, UNKNOWN = "#f8d0d0", "#d8efd8", "#eeeeee"
STYLE = "font-family: system-ui, sans-serif; font-size: 13px;"
# Plain HTML around Bokeh's page: a banner that is there before the live part arrives over the websocket
BANNER = """{% block inner_body %}
<div style="background:#263238;color:#fff;padding:10px 16px;font:15px system-ui,sans-serif">
<b>pytensor-blackjax watch</b> &middot; {{ store | e }} &middot; updates as chunks are committed</div>
<noscript>The live page needs JavaScript.</noscript>
<div style="padding:8px 16px">{{ super() }}</div>
{% endblock %}"""


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}g}"


def _duration(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else (f"{m}m {s:02d}s" if m else f"{s}s")


def _bar(fraction: float, colour: str) -> str:
    pct = 100 * min(max(fraction, 0.0), 1.0)
    return (
        '<div style="background:#e6e6e6;width:100%;height:10px;border-radius:5px">'
        f'<div style="background:{colour};width:{pct:.1f}%;height:10px;border-radius:5px"></div></div>'
    )


def header_html(view: View, error: str) -> str:
    s = view.status
    colour = PHASE_COLOURS.get(s.phase, "#555")
    if s.phase == "warmup" and s.warmup:
        done, total, unit = int(s.warmup["steps_done"]), s.tune, "warmup steps"
    else:
        done, total, unit = s.num_draws, s.draws, "draws"
    lines = [
        f'<div style="{STYLE}">',
        f'<span style="font-size:20px;font-weight:600">{html.escape(s.model or "model")}</span> '
        f'<span style="background:{colour};color:white;padding:2px 8px;border-radius:10px;'
        f'font-weight:600">{s.phase}</span> '
        f'<span style="color:#555">sampler {html.escape(s.sampler)} · {s.chains} chains · '
        f"store {html.escape(str(s.path))}</span>",
        f'<div style="margin:8px 0 2px 0"><b id="committed">{s.num_draws}</b> of {s.draws} draws per chain '
        f"committed · {done} of {total} {unit} · {_fmt(view.draws_per_second)} per second · "
        f"ETA {_duration(view.eta_seconds) if s.phase in ('warmup', 'sampling') else '–'}</div>",
        _bar(done / max(total, 1), colour),
    ]
    if s.phase == "warmup" and s.warmup:
        lines.append(
            f'<div style="margin-top:4px">warmup: step size {_fmt(s.warmup.get("step_size"))}, '
            f"{int(s.warmup.get('divergences', 0))} divergences so far</div>"
        )
    if s.phase == "interrupted":
        why = "its process is gone" if s.writer_alive is False else "it has stopped writing"
        lines.append(
            f'<div style="margin-top:6px;color:{PHASE_COLOURS["interrupted"]};font-weight:600">'
            f"This run was interrupted ({why}) after {s.num_draws} draws per chain; resume with "
            f"<code>{html.escape(s.resume_hint)}</code></div>"
        )
    if error:
        lines.append(f'<div style="color:#c62828">{html.escape(error)}</div>')
    lines.append("</div>")
    return "".join(lines)


def _table(head: list[str], rows: list[str], caption: str) -> str:
    cells = "".join(f'<th style="text-align:right;padding:2px 8px">{h}</th>' for h in head)
    return (
        f'<div style="{STYLE}"><div style="font-weight:600;margin-bottom:4px">{caption}</div>'
        '<table style="border-collapse:collapse">'
        f'<thead><tr style="border-bottom:1px solid #999">{cells}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _cell(text: str, colour: str = "") -> str:
    bg = f"background:{colour};" if colour else ""
    return f'<td style="text-align:right;padding:2px 8px;{bg}">{text}</td>'


def chains_html(view: View) -> str:
    s = view.status
    rows = []
    for c in view.chains:
        bfmi_colour = UNKNOWN if not np.isfinite(c.ebfmi) else (BAD if c.ebfmi < EBFMI_MIN else GOOD)
        rows.append(
            "<tr>"
            + _cell(str(c.chain))
            + _cell(f"{s.num_draws}/{s.draws}")
            + _cell(_fmt(c.step_size))
            + _cell(_fmt(c.tree_depth))
            + _cell(_fmt(c.n_steps))
            + _cell(_fmt(c.acceptance))
            + _cell(str(c.divergences), BAD if c.divergences else "")
            + _cell(_fmt(c.ebfmi), bfmi_colour)
            + "</tr>"
        )
    head = ["chain", "draws", "step size", "tree depth", "steps/draw", "acceptance", "divergences", "E-BFMI"]
    total = sum(c.divergences for c in view.chains)
    return _table(head, rows, f"Chains · {total} divergent draws · E-BFMI below {EBFMI_MIN} is marked")


def diagnostics_html(view: View) -> str:
    ess_min = view.ess_min
    rows = []
    for d in view.diagnostics:
        rhat_colour = UNKNOWN if not np.isfinite(d.rhat) else (BAD if d.rhat > RHAT_MAX else GOOD)
        rows.append(
            f'<tr class="diag-row"><td style="padding:2px 8px">{html.escape(d.label)}</td>'
            + _cell("–" if not np.isfinite(d.rhat) else f"{d.rhat:.3f}", rhat_colour)
            + "".join(
                _cell(
                    "–" if not np.isfinite(e) else f"{e:.0f}",
                    UNKNOWN if not np.isfinite(e) else (BAD if e < ess_min else GOOD),
                )
                for e in (d.ess_bulk, d.ess_tail)
            )
            + "</tr>"
        )
    caption = (
        f"Running R-hat (marked above {RHAT_MAX}) and ESS (marked below {ess_min:.0f}) "
        f"of {view.status.num_draws} draws per chain"
    )
    return _table(["variable", "R-hat", "bulk ESS", "tail ESS"], rows, caption)


def _chain_columns(chains: int) -> list[str]:
    return [f"c{c}" for c in range(chains)]


def trace_data(view: View, label: str) -> dict[str, np.ndarray]:
    if label not in view.labels:  # nothing committed yet: empty columns, one per chain
        return {"draw": np.zeros(0), **{n: np.zeros(0) for n in _chain_columns(view.status.chains)}}
    k = view.labels.index(label)
    index = thin_index(view.columns.shape[1], MAX_TRACE_POINTS)
    data = {"draw": index}
    for c, name in enumerate(_chain_columns(view.columns.shape[0])):
        data[name] = view.columns[c, index, k]
    return data


def rank_data(view: View, label: str) -> dict[str, np.ndarray]:
    """Per chain, how many of its draws fall in each bin of the pooled ranks (flat when chains mix)."""
    chains, draws, _ = view.columns.shape
    if label not in view.labels or draws == 0:
        return {"bin": np.zeros(0), **{n: np.zeros(0) for n in _chain_columns(view.status.chains)}}
    x = view.columns[:, :, view.labels.index(label)].ravel()
    ranks = np.argsort(np.argsort(x, kind="stable"), kind="stable").reshape(chains, draws)
    edges = np.linspace(0, chains * draws, RANK_BINS + 1)
    data = {"bin": np.arange(RANK_BINS) + 0.5}
    for c, name in enumerate(_chain_columns(chains)):
        data[name] = np.histogram(ranks[c], bins=edges)[0].astype(float)
    return data


def pair_data(view: View, x_label: str, y_label: str) -> tuple[dict[str, Any], dict[str, Any]]:
    chains, draws, _ = view.columns.shape
    if x_label not in view.labels or y_label not in view.labels or draws == 0:
        return {"x": [], "y": []}, {"x": [], "y": []}
    xs = view.columns[:, :, view.labels.index(x_label)].ravel()
    ys = view.columns[:, :, view.labels.index(y_label)].ravel()
    divergent = view.diverging[:, :draws].ravel() if view.diverging.size else np.zeros(xs.size, bool)
    keep = thin_index(xs.size, MAX_PAIR_POINTS)
    return {"x": xs[keep], "y": ys[keep]}, {"x": xs[divergent], "y": ys[divergent]}


def energy_data(view: View) -> dict[str, Any]:
    """Histograms of the centred energy and of its changes between draws (they should overlap)."""
    if view.energy is None or view.energy.shape[1] < 3:
        return {"left": [], "right": [], "marginal": [], "transition": []}
    centred = (view.energy - view.energy.mean(axis=1, keepdims=True)).ravel()
    steps = np.diff(view.energy, axis=1).ravel()
    edges = np.histogram_bin_edges(np.concatenate([centred, steps]), bins=40)
    return {
        "left": edges[:-1],
        "right": edges[1:],
        "marginal": np.histogram(centred, bins=edges, density=True)[0],
        "transition": np.histogram(steps, bins=edges, density=True)[0],
    }


class Page:
    """One browser tab: its own data sources, filled from the shared watcher."""

    def __init__(self, doc: Document, watcher: Watcher):
        self.doc, self.watcher = doc, watcher
        self.shown_version = -1
        self.trace_label = ""
        view = watcher.view
        chains = view.status.chains if view is not None else 1
        colours = [Category10_10[c % 10] for c in range(chains)]
        self.header = Div(sizing_mode="stretch_width")
        self.chain_table = Div(sizing_mode="stretch_width")
        self.diag_table = Div(width=460, height=430, styles={"overflow-y": "auto"})
        self.var_select = Select(title="Trace and rank of", options=[], width=200)
        self.x_select = Select(title="Pair plot: x", options=[], width=200)
        self.y_select = Select(title="y", options=[], width=200)
        self.trace = ColumnDataSource({"draw": [], **{n: [] for n in _chain_columns(chains)}})
        self.rank = ColumnDataSource({"bin": [], **{n: [] for n in _chain_columns(chains)}})
        self.pair = ColumnDataSource({"x": [], "y": []})
        self.pair_div = ColumnDataSource({"x": [], "y": []})
        self.energy = ColumnDataSource({"left": [], "right": [], "marginal": [], "transition": []})

        tools = "pan,wheel_zoom,box_zoom,reset,save"
        self.trace_fig = figure(height=260, width=620, title="Trace", tools=tools, x_axis_label="draw")
        self.rank_fig = figure(height=260, width=420, title="Rank (bars flat when chains mix)", tools=tools)
        for name, colour in zip(_chain_columns(chains), colours, strict=True):
            self.trace_fig.line("draw", name, source=self.trace, color=colour, alpha=0.8, legend_label=name)
            self.rank_fig.step("bin", name, source=self.rank, color=colour, line_width=2, mode="center")
        self.trace_fig.legend.location = "top_left"
        self.trace_fig.legend.orientation = "horizontal"
        self.uniform = Span(location=0, dimension="width", line_dash="dashed", line_color="#555")
        self.rank_fig.add_layout(self.uniform)
        self.rank_fig.xaxis.axis_label = f"rank bin (of {RANK_BINS})"
        self.pair_fig = figure(height=360, width=460, title="Pair plot (divergent draws in red)", tools=tools)
        self.pair_fig.scatter("x", "y", source=self.pair, size=3, alpha=0.35, color="#1f6fb2")
        self.pair_fig.scatter(
            "x", "y", source=self.pair_div, size=6, color="#d62728", legend_label="divergent"
        )
        self.energy_fig = figure(height=360, width=460, title="Energy", tools=tools)
        self.energy_fig.quad(
            top="marginal", bottom=0, left="left", right="right", source=self.energy, alpha=0.4,
            color="#1f6fb2", legend_label="marginal energy",
        )  # fmt: skip
        self.energy_fig.quad(
            top="transition", bottom=0, left="left", right="right", source=self.energy, alpha=0.4,
            color="#ff7f0e", legend_label="energy transition",
        )  # fmt: skip
        self.var_select.on_change("value", lambda attr, old, new: self.draw_variable())
        self.x_select.on_change("value", lambda attr, old, new: self.draw_pair())
        self.y_select.on_change("value", lambda attr, old, new: self.draw_pair())
        doc.add_root(
            column(
                self.header,
                self.chain_table,
                row(
                    self.diag_table, column(row(self.x_select, self.y_select), self.pair_fig), self.energy_fig
                ),
                self.var_select,
                row(self.trace_fig, self.rank_fig),
                sizing_mode="stretch_width",
            )
        )
        doc.title = "pytensor-blackjax watch"
        doc.template = get_env().from_string("{% extends base %}\n" + BANNER)
        doc.template_variables["store"] = str(watcher.path)
        self.update()
        doc.add_periodic_callback(self.update, REFRESH_MS)

    def update(self) -> None:
        view = self.watcher.view
        if view is None or view.version == self.shown_version:
            return
        first = self.shown_version < 0
        self.shown_version = view.version
        s = view.status
        self.doc.title = f"{s.phase} · {s.num_draws}/{s.draws} draws · {s.model} · pytensor-blackjax watch"
        self.header.text = header_html(view, self.watcher.error)
        self.chain_table.text = chains_html(view)
        self.diag_table.text = diagnostics_html(view)
        labels = list(view.labels)
        if labels and self.var_select.options != labels:
            options: list[str | None] = list(labels)  # one of the list types Bokeh declares for options
            self.var_select.options = self.x_select.options = self.y_select.options = options
            if first or self.var_select.value not in labels:
                self.var_select.value = labels[0]
                self.x_select.value = labels[0]
                self.y_select.value = labels[min(1, len(labels) - 1)]
        self.draw_variable(stream=not first)
        self.draw_pair()
        self.energy.data = energy_data(view)
        bfmi = ", ".join(_fmt(c.ebfmi, 2) for c in view.chains)
        _set_title(self.energy_fig, f"Energy · E-BFMI per chain: {bfmi} (low below {EBFMI_MIN})")

    def draw_variable(self, stream: bool = False) -> None:
        view = self.watcher.view
        if view is None:
            return
        label = self.var_select.value
        new = trace_data(view, label)
        old = self.trace.data.get("draw", [])
        same_stride = (
            len(old) > 1 and len(new["draw"]) > 1 and old[1] - old[0] == new["draw"][1] - new["draw"][0]
        )
        if stream and label == self.trace_label and same_stride and len(new["draw"]) >= len(old):
            # the thinned trace only grew: send the new points, not the whole trace again
            self.trace.stream({k: v[len(old) :] for k, v in new.items()})
        else:
            self.trace.data = new
        self.trace_label = label
        stride = _stride(new)
        every = "every draw" if stride == 1 else f"every {stride}th draw"
        _set_title(self.trace_fig, f"Trace of {label} ({every}, {view.columns.shape[1]} per chain)")
        ranks = rank_data(view, label)
        self.rank.data = ranks
        draws = view.columns.shape[1]
        self.uniform.location = draws / RANK_BINS if draws else 0
        _set_title(self.rank_fig, f"Rank of {label} (flat when chains mix)")

    def draw_pair(self) -> None:
        view = self.watcher.view
        if view is None:
            return
        points, divergent = pair_data(view, self.x_select.value, self.y_select.value)
        self.pair.data, self.pair_div.data = points, divergent
        self.pair_fig.xaxis.axis_label = self.x_select.value
        self.pair_fig.yaxis.axis_label = self.y_select.value
        _set_title(self.pair_fig, f"Pair plot · {len(divergent['x'])} divergent draws in red")


def _set_title(fig: figure, text: str) -> None:
    # Bokeh types a figure's title as Title | str | None; the figure has made the str it was given a Title
    assert isinstance(fig.title, Title)
    fig.title.text = text


def _stride(data: dict) -> int:
    draw = data.get("draw", [])
    return int(draw[1] - draw[0]) if len(draw) > 1 else 1
