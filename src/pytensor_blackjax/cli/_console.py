"""Terminal output: the summary table, warnings and one-line errors."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # imported where used: a command pays for xarray only when it needs it
    import xarray as xr

__all__ = ["err_console", "out_console", "print_error", "print_summary", "print_warning"]

# Piped output (files, CI logs, tests) gets a wide fixed width so that columns are never cut.
_WIDE = 160


def _console(file) -> Console:
    # No markup anywhere: labels such as a[c0] and paths are text, never Rich tags; styles come as Text.
    console = Console(file=file, highlight=False, markup=False)
    return console if console.is_terminal else Console(file=file, width=_WIDE, highlight=False, markup=False)


def out_console() -> Console:
    return _console(sys.stdout)


def err_console() -> Console:
    return _console(sys.stderr)


def print_error(message: str) -> None:
    # soft_wrap keeps the message one line whatever the terminal width.
    err_console().print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)


def print_warning(message: str) -> None:
    err_console().print(Text.assemble(("warning:", "bold yellow"), " ", message), soft_wrap=True)


# Columns given up, in this order, when the table is wider than the terminal.
_DROPPABLE = ("mcse_sd", "mcse_mean", "ess_tail")


def _fitted(table_df, labels_width: int, width: int):
    """(display strings, digits) of the summary that fit ``width`` columns: 3 significant digits, then
    fewer columns (mcse_sd first)."""
    from pytensor_blackjax.cli._report import formatted

    def needed(shown) -> int:
        # each column: its widest cell and 3 characters of padding and border
        cells = [max([len(str(c)), *(len(v) for v in shown[c])]) for c in shown.columns]
        return labels_width + 4 + sum(w + 3 for w in cells)

    shown = formatted(table_df)
    if needed(shown) <= width:
        return shown
    shown = formatted(table_df, digits=3)
    for column in _DROPPABLE:
        if needed(shown) <= width:
            break
        shown = shown.drop(columns=[column], errors="ignore")
    return shown


def print_summary(
    tree: xr.DataTree, *, max_rows: int | None = None, console: Console | None = None, hint: bool = True
) -> None:
    """The ArviZ summary as a table fitted to the terminal's width; R-hat above ``RHAT_MAX`` in red; long
    tables cut to ``max_rows``; ``hint`` says how to see every row."""
    from pytensor_blackjax.cli._report import flagged, summary_table

    console = console or out_console()
    table_df = summary_table(tree)
    shown = table_df if max_rows is None or len(table_df) <= max_rows else table_df.iloc[:max_rows]
    title = (
        f"{tree.attrs.get('model', 'model')}: {tree['posterior'].sizes['chain']} chains x "
        f"{tree['posterior'].sizes['draw']} draws"
    )
    labels_width = max((len(str(i)) for i in shown.index), default=1)
    cells = _fitted(shown, labels_width, console.width)
    table = Table(title=Text(title), title_justify="left", header_style="bold")
    table.add_column("", no_wrap=True, min_width=labels_width)
    for column in cells.columns:
        table.add_column(str(column), justify="right", no_wrap=True)
    for (label, row), flag in zip(cells.iterrows(), flagged(shown), strict=True):
        table.add_row(Text(str(label)), *(Text(v) for v in row.values), style="red" if flag else None)
    console.print(table)
    if len(shown) < len(table_df):
        more = f"... {len(table_df) - len(shown)} more rows"
        console.print(
            more + f" (all {len(table_df)} are in summary.csv with --out, or use `pytensor-blackjax summary "
            "RESULTS`)."
            if hint
            else more + " (raise --max-rows to see them)."
        )
