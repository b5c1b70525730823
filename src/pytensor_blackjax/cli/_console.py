"""Terminal output: the summary table, warnings and one-line errors."""

from __future__ import annotations

import sys

import xarray as xr
from rich.console import Console
from rich.table import Table

__all__ = ["err_console", "out_console", "print_error", "print_summary", "print_warning"]

# Piped output (files, CI logs, tests) gets a wide fixed width so that columns are never cut.
_WIDE = 160


def out_console() -> Console:
    console = Console(file=sys.stdout, highlight=False)
    return console if console.is_terminal else Console(file=sys.stdout, width=_WIDE, highlight=False)


def err_console() -> Console:
    console = Console(file=sys.stderr, highlight=False)
    return console if console.is_terminal else Console(file=sys.stderr, width=_WIDE, highlight=False)


def print_error(message: str) -> None:
    # soft_wrap keeps the message one line whatever the terminal width.
    err_console().print(f"[bold red]error:[/] {message}", soft_wrap=True, markup=True)


def print_warning(message: str) -> None:
    err_console().print(f"[bold yellow]warning:[/] {message}", soft_wrap=True, markup=True)


def print_summary(tree: xr.DataTree, *, max_rows: int | None = None, console: Console | None = None) -> None:
    """The ArviZ summary as a table; R-hat above ``RHAT_MAX`` in red; long tables cut to ``max_rows``."""
    from pytensor_blackjax.cli._report import flagged, formatted, summary_table

    console = console or out_console()
    table_df = summary_table(tree)
    shown = table_df if max_rows is None or len(table_df) <= max_rows else table_df.iloc[:max_rows]
    title = (
        f"{tree.attrs.get('model', 'model')}: {tree['posterior'].sizes['chain']} chains x "
        f"{tree['posterior'].sizes['draw']} draws"
    )
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("", no_wrap=True, min_width=max((len(str(i)) for i in shown.index), default=1))
    for column in shown.columns:
        table.add_column(str(column), justify="right", no_wrap=True)
    for (label, row), flag in zip(formatted(shown).iterrows(), flagged(shown), strict=True):
        table.add_row(str(label), *row.values, style="red" if flag else None)
    console.print(table)
    if len(shown) < len(table_df):
        console.print(
            f"... {len(table_df) - len(shown)} more rows (all {len(table_df)} are in summary.csv "
            "with --out, or use `pytensor-blackjax summary RESULTS`)."
        )
