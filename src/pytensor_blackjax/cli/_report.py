"""The summary table, plain-words diagnostics and the one-page HTML report of a sampling result."""

from __future__ import annotations

import base64
import html
import warnings
from collections.abc import Hashable, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from pytensor_blackjax.results import (
    RHAT_MAX,
    TAIL_PROB,
    Convergence,
    Diagnostic,
    diagnostics,
    is_approximate,
)

__all__ = ["build_report", "checks", "flagged", "formatted", "summary_statistics", "summary_table", "warm_up"]

MAX_TABLE_ROWS = 500


def summary_table(tree: xr.DataTree) -> pd.DataFrame:
    """ArviZ's summary of the posterior: mean, sd, interval, ESS, R-hat and MCSE per entry, unrounded;
    tail ESS at the 5% and 95% quantiles (`TAIL_PROB`, as `pbj.Until` checks it).

    The same rows, columns and estimators as ``arviz_stats.summary(tree, round_to="none")`` (the
    interval of ArviZ's ``rcParams``), computed for every entry at once (`summary_statistics`): ArviZ's
    per-entry estimators and the SciPy modules ``arviz_stats`` imports cost ~0.2 s and ~0.6 s of a
    command that prints the table. An HDI interval (``rcParams["stats.ci_kind"]``) is ArviZ's own.

    Example:
        >>> summary_table(tree).loc["alpha", "r_hat"]
    """
    from arviz_base import dataset_to_dataframe, rcParams

    # Draws of an approximation are independent by construction: R-hat, ESS and MCSE say nothing of it.
    kind = "stats" if is_approximate(tree) else "all"
    if rcParams["stats.ci_kind"] != "eti":
        return _arviz_summary(tree, kind)
    prob = float(rcParams["stats.ci_prob"])
    posterior = tree["posterior"].to_dataset()
    draws = {name: posterior[name].transpose("chain", "draw", ...) for name in posterior.data_vars}
    entries = _entries(draws) if draws else np.zeros((0, 1, 4))  # no entries (4 draws: no empty means)
    stats = summary_statistics(entries, prob=prob, diagnostics=kind == "all")
    columns = [f"eti{int(prob * 100)}_{c[4:]}" if c.startswith("eti_") else c for c in stats]
    if not draws:  # nothing sampled: the columns, no rows
        return pd.DataFrame(columns=columns, dtype=float)
    table = np.stack(list(stats.values()))  # (column, entry)
    variables, start = {}, 0
    for name, array in draws.items():  # each variable's entries back in its shape, ArviZ's layout
        shape, dims = array.shape[2:], array.dims[2:]
        size = int(np.prod(shape, dtype=int))
        values = table[:, start : start + size].reshape(len(columns), *shape)
        variables[name] = xr.DataArray(values, dims=("summary", *dims))
        start += size
    coords = {d: posterior[d].values for d in posterior.coords if d not in ("chain", "draw")}
    dataset = xr.Dataset(variables, coords={"summary": columns, **coords})
    return dataset_to_dataframe(dataset, sample_dims=["summary"]).T.apply(pd.to_numeric, errors="coerce")


def _entries(draws: Mapping[Hashable, xr.DataArray]) -> np.ndarray:
    """Every entry of every variable (``(chain, draw, ...)``) as one ``(entry, chain, draw)`` array:
    variables in order, each flattened as NumPy does (the rows of ArviZ's summary)."""
    parts = []
    for array in draws.values():
        chains, n = array.shape[:2]
        parts.append(np.moveaxis(np.asarray(array.values, dtype=float).reshape(chains, n, -1), 2, 0))
    return np.concatenate(parts, axis=0)


def summary_statistics(x: np.ndarray, *, prob: float, diagnostics: bool = True) -> dict[str, np.ndarray]:
    """The columns of ArviZ's summary for every scalar of ``x`` (``(scalar, chain, draw)``): ``mean``,
    ``sd`` (``ddof=1``), ``eti_lb`` and ``eti_ub`` (the equal-tailed ``prob`` interval, NumPy's linear
    quantiles), and with ``diagnostics`` ``ess_bulk``, ``ess_tail`` (at `TAIL_PROB`), ``r_hat`` (rank
    normalised), ``mcse_mean`` and ``mcse_sd``, as ``arviz_stats``' estimators define them; NaN where
    ArviZ gives NaN (a NaN draw; fewer than 4 draws a chain for ESS and MCSE, 2 chains for R-hat).
    Computed in blocks of scalars (`in_scalar_blocks`): a long run's temporaries stay bounded."""
    from pytensor_blackjax.run._until_diagnostics import in_scalar_blocks

    return in_scalar_blocks(lambda block: _summary_block(block, prob=prob, diagnostics=diagnostics), x)


def _summary_block(x: np.ndarray, *, prob: float, diagnostics: bool) -> dict[str, np.ndarray]:
    from pytensor_blackjax.run._until_diagnostics import mean_ess, rank_diagnostics

    k = x.shape[0]
    rows = x.reshape(k, x.shape[1] * x.shape[2])
    edge = (1 - prob) / 2
    lower, upper = np.quantile(rows, [edge, 1 - edge], axis=1) if rows.shape[1] else (np.full(k, np.nan),) * 2
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = rows.mean(axis=1) if rows.shape[1] else np.full(k, np.nan)
        sd = rows.std(axis=1, ddof=1) if rows.shape[1] >= 2 else np.full(k, np.nan)
        out = {"mean": mean, "sd": sd, "eti_lb": lower, "eti_ub": upper}
        if not diagnostics:
            return out
        rank = rank_diagnostics(x, prob=TAIL_PROB)
        centred = x - mean[:, None, None]
        squared = centred**2
        second = squared.mean(axis=(1, 2))
        fourth = (squared**2).mean(axis=(1, 2))
        out.update(
            ess_bulk=rank["ess_bulk"],
            ess_tail=rank["ess_tail"],
            r_hat=rank["rhat"],
            mcse_mean=sd / np.sqrt(mean_ess(x)),
            mcse_sd=np.sqrt((fourth - second**2) / mean_ess(squared) / second / 4),
        )
    return out


def _arviz_summary(tree: xr.DataTree, kind: str) -> pd.DataFrame:
    """``arviz_stats.summary`` (its interval as ArviZ's ``rcParams`` say), tail ESS at `TAIL_PROB`."""
    import arviz_stats

    with warnings.catch_warnings():
        # Very short runs give NaN diagnostics with numpy warnings; the table shows them as nan.
        warnings.simplefilter("ignore", RuntimeWarning)
        table = pd.DataFrame(arviz_stats.summary(tree, kind=kind, round_to="none"))
        table = table.apply(pd.to_numeric, errors="coerce")
        if "ess_tail" in table:
            posterior = tree["posterior"].to_dataset()
            ess = arviz_stats.ess(posterior, method="tail", prob=TAIL_PROB)
            table["ess_tail"] = np.concatenate([np.ravel(ess[name].values) for name in posterior.data_vars])
        return table


def warm_up() -> None:
    """Load what `summary_table` loads on its first call (ArviZ's table layout; what xarray imports the
    first time it checks an array's type, ``dask.array`` where Dask is installed), from a table of a
    2 x 4-draw posterior: called in the background while a run samples."""
    from pytensor_blackjax.results import make_datatree

    tiny = make_datatree({"posterior": {"x": np.arange(8.0).reshape(2, 4)}})
    summary_table(tiny)


def _format(column: str, value: float, digits: int = 4) -> str:
    if not np.isfinite(value):
        return "nan"
    if column.startswith("ess"):
        return f"{value:.0f}"
    if column == "r_hat":
        return f"{value:.{min(digits, 3)}f}"
    return f"{value:.{digits}g}"


def formatted(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """The summary as display strings: ESS whole, R-hat to 3 decimals, the rest to ``digits`` significant
    digits."""
    return pd.DataFrame(
        {c: [_format(c, v, digits) for v in table[c]] for c in table.columns}, index=table.index
    )


def flagged(table: pd.DataFrame) -> pd.Series:
    """Rows whose R-hat is above the threshold."""
    if "r_hat" not in table:
        return pd.Series(False, index=table.index)
    return table["r_hat"].fillna(0) > RHAT_MAX


def checks(tree: xr.DataTree) -> list[Diagnostic]:
    """The diagnostics of a result (computed by `pytensor_blackjax.results`), R-hat and ESS from ArviZ's
    summary so that they agree with the table.

    Example:
        >>> [c.name for c in checks(tree) if not c.ok]
    """
    posterior = tree["posterior"]
    convergence = None
    # approximations: no R-hat/ESS columns, and diagnostics() says they are not meaningful
    if posterior.sizes["chain"] >= 2 and posterior.sizes["draw"] >= 4 and not is_approximate(tree):
        table = summary_table(tree)
        convergence = Convergence(
            [str(label) for label in table.index],
            table["r_hat"].to_numpy(float),
            table["ess_bulk"].to_numpy(float),
            table["ess_tail"].to_numpy(float),
        )
    return diagnostics(tree, convergence)


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:70rem;
 color:#1d2330;padding:0 1rem;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #d8dde6;padding-bottom:.2rem;margin-top:2rem}
.sub{color:#5b6475;margin-top:0}
table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}
th,td{padding:.25rem .6rem;border-bottom:1px solid #e6e9ef;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{background:#f3f5f9;position:sticky;top:0}
.checks td,.checks th{text-align:left;vertical-align:top}
.ok{color:#17803d;font-weight:600}.bad{color:#b42318;font-weight:600}
.flag{background:#fde8e7}
.settings td{text-align:left}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #e6e9ef}
figcaption{color:#5b6475;font-size:.9rem}
.scroll{max-height:32rem;overflow:auto;display:inline-block}
"""


def _settings_rows(tree: xr.DataTree) -> str:
    attrs = tree.attrs
    keys = [
        ("model_file", "Model file"),
        ("sampler", "Sampler"),
        ("sampler_config", "Configuration"),
        ("chains", "Chains"),
        ("draws", "Draws per chain"),
        ("tune", "Warmup per chain"),
        ("thin", "Thinning"),
        ("seed", "Seed"),
        ("chain_method", "Chain method"),
        ("warmup_time", "Warmup time (s)"),
        ("sampling_time", "Sampling time (s)"),
        ("interrupted", "Interrupted"),
        ("created_at", "Created"),
    ]
    rows = []
    for key, label in keys:
        value = attrs.get(key, tree["posterior"].attrs.get(key))
        if value is None:
            continue
        if key == "interrupted":
            value = "yes" if value else "no"
        elif key == "draws" and "stop_reason" in attrs:  # an until-run: `draws` is its cap
            value = f"{attrs.get('num_draws_completed', '?')} (sampled until precise enough; cap {value})"
        elif isinstance(value, float | np.floating):
            value = f"{value:.2f}"
        rows.append(f"<tr><td>{label}</td><td>{html.escape(str(value))}</td></tr>")
        if key == "draws" and "stop_reason" in attrs:
            rows.append(f"<tr><td>Stopped</td><td>{html.escape(_stopped(attrs))}</td></tr>")
    versions = ", ".join(
        f"{k[len('version_') :]} {v}"
        for k, v in attrs.items()
        if isinstance(k, str) and k.startswith("version_")
    )
    if versions:
        rows.append(f"<tr><td>Versions</td><td>{html.escape(versions)}</td></tr>")
    return "\n".join(rows)


def _stopped(attrs) -> str:
    """Why an until-run stopped, with the figures of its last check."""
    figures = [
        f"{label} {attrs[key]:{spec}}"
        for key, label, spec in (
            ("until_ess_bulk", "lowest bulk ESS", ".0f"),
            ("until_ess_tail", "lowest tail ESS", ".0f"),  # at TAIL_PROB, as the summary's
            ("until_rhat", "highest R-hat", ".3f"),
        )
        if isinstance(attrs.get(key), float | int | np.number) and np.isfinite(attrs[key])
    ]
    text = str(attrs["stop_reason"]).replace("_", " ")
    if figures:
        text += "; " + ", ".join(figures)
    if attrs.get("until_worst_variable"):
        text += f"; furthest from its targets: {attrs['until_worst_variable']}"
    return text


def _summary_html(tree: xr.DataTree) -> str:
    table = summary_table(tree)
    note = ""
    if len(table) > MAX_TABLE_ROWS:
        note = f"<p>The first {MAX_TABLE_ROWS} of {len(table)} rows; summary.csv holds them all.</p>"
        table = table.iloc[:MAX_TABLE_ROWS]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in ["", *table.columns])
    body = []
    for (label, row), flag in zip(formatted(table).iterrows(), flagged(table), strict=True):
        cells = "".join(f"<td>{html.escape(v)}</td>" for v in row.values)
        css = ' class="flag"' if flag else ""
        body.append(f"<tr{css}><td>{html.escape(str(label))}</td>{cells}</tr>")
    return (
        f'<div class="scroll"><table class="summary"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{note}"
    )


def _checks_html(found: list[Diagnostic]) -> str:
    rows = [
        f'<tr><td class="{"ok" if c.ok else "bad"}">{"OK" if c.ok else "Check"}</td>'
        f"<td>{html.escape(c.name)}</td><td>{html.escape(c.shown)}</td><td>{html.escape(c.words)}</td></tr>"
        for c in found
    ]
    return (
        '<table class="checks"><thead><tr><th></th><th>Diagnostic</th><th>Value</th><th>Meaning</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _figure_html(fig, title: str, caption: str) -> str:
    data = base64.b64encode(fig.data).decode("ascii")
    text = " ".join(t for t in (caption, fig.note) if t)
    return (
        f'<figure id="{fig.kind}"><h3>{html.escape(title)}</h3>'
        f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(text)}</figcaption></figure>"
    )


_CAPTIONS = {
    "trace": (
        "Trace and marginal densities",
        "Left: the posterior density per chain; right: the draws in "
        "order. Chains should overlap and look like stationary noise.",
    ),
    "rank": (
        "Rank plots",
        "Distribution of each chain's ranks among all draws; well-mixed chains stay inside the envelope.",
    ),
    "pair": ("Pair plot", "Joint draws of pairs of quantities; divergences, if any, are marked."),
}


def build_report(tree: xr.DataTree, *, trace=None) -> str:
    """One self-contained HTML page: settings, summary, diagnostics in words, trace/rank/pair plots.

    Args:
        tree: a sampling result.
        trace: an already drawn trace `Figure` to reuse (it is drawn otherwise).

    Returns:
        The HTML text; images are inline PNGs, so the file can be mailed or archived alone.

    Example:
        >>> Path("report.html").write_text(build_report(tree))
    """
    from pytensor_blackjax.cli._plots import draw

    found = checks(tree)
    bad = [c for c in found if not c.ok]
    verdict = "All diagnostics look fine." if not bad else "Look at: " + ", ".join(c.name for c in bad) + "."
    figures = [trace or draw(tree, "trace"), draw(tree, "rank"), draw(tree, "pair")]
    figures_html = "\n".join(_figure_html(f, *_CAPTIONS[f.kind]) for f in figures)
    name = html.escape(str(tree.attrs.get("model", "model")))
    post = tree["posterior"]
    sub = (
        f"{post.sizes['chain']} chains x {post.sizes['draw']} draws with "
        f"{html.escape(str(tree.attrs.get('sampler', 'an unknown sampler')))}"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{name} - pytensor-blackjax report</title>
<style>{_CSS}</style></head><body>
<h1>{name}</h1><p class="sub">{sub}</p>
<h2>Diagnostics</h2><p><strong>{html.escape(verdict)}</strong></p>
{_checks_html(found)}
<h2>Settings</h2><table class="settings"><tbody>{_settings_rows(tree)}</tbody></table>
<h2>Summary</h2>{_summary_html(tree)}
<h2>Figures</h2>{figures_html}
<p class="sub">Made by pytensor-blackjax.</p>
</body></html>
"""
