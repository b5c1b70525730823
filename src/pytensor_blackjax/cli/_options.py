"""What the commands share: option types, turning input mistakes into one line, sampling with the
warnings printed readably, and the summary and files written after a run."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from pytensor_blackjax.cli._console import out_console, print_error, print_summary, print_warning
from pytensor_blackjax.cli._io import UserError, display_path, write_results
from pytensor_blackjax.run._until_config import Until

__all__ = [
    "Chains",
    "Draws",
    "Ess",
    "MaxDraws",
    "MaxRows",
    "OpenBrowser",
    "Out",
    "ProgressFlag",
    "Seed",
    "Tune",
    "WatchPort",
    "finish",
    "sample_with_warnings",
    "user_errors",
    "warnings_as_lines",
]


@contextmanager
def user_errors(ctx: typer.Context) -> Iterator[None]:
    """Mistakes in the input (from this module or the public API) -> one line on stderr, exit 1."""
    try:
        yield
    except typer.Exit:
        raise
    except (UserError, ValueError, TypeError, FileNotFoundError, ImportError, NotImplementedError) as exc:
        if ctx.obj and ctx.obj.get("traceback"):
            raise
        print_error(str(exc))
        raise typer.Exit(code=1) from None
    except KeyboardInterrupt as exc:
        # said here, not left to click: it would drop the message that tells what was kept and how to resume
        print_error(str(exc) or "interrupted (Ctrl-C).")
        raise typer.Exit(code=130) from None


# Options shared by `demo` and `run`; annotated aliases keep the command signatures short.
Draws = Annotated[int, typer.Option(min=1, help="Draws kept per chain.")]
Tune = Annotated[int, typer.Option(min=0, help="Warmup (adaptation) steps per chain.")]
Chains = Annotated[int, typer.Option(min=1, help="Independent chains.")]
Seed = Annotated[int | None, typer.Option(min=0, help="Random seed; the same seed gives the same draws.")]
Out = Annotated[
    str | None,
    typer.Option(
        "--out", "-o", help="Folder to write results.zarr, summary.csv, trace.png and report.html into."
    ),
]
ProgressFlag = Annotated[bool, typer.Option("--progress/--no-progress", help="Live progress bar.")]
MaxRows = Annotated[int | None, typer.Option(min=1, help="Show at most this many rows of the summary.")]
Ess = Annotated[
    float | None,
    typer.Option(
        min=1,
        help="Sample until every scalar has bulk and tail ESS >= this and R-hat <= 1.01 (not with --draws).",
    ),
]
MAX_DRAWS = Until.max_draws  # the cap `pbj.Until` applies when none is given (draws per chain)
MaxDraws = Annotated[
    int | None, typer.Option(min=1, help=f"With --ess: draws per chain at most (default {MAX_DRAWS}).")
]
WatchPort = Annotated[
    int | None, typer.Option("--port", min=1, max=65535, help="Port of the live page (default: a free one).")
]
OpenBrowser = Annotated[bool, typer.Option("--open", help="Open the live page in the default web browser.")]


def warnings_as_lines(call, *args, **kwargs):
    """``call(*args, **kwargs)`` with the warnings it raises printed as one readable line each (the
    driver's diagnostics, interrupts) instead of Python's warning format."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call(*args, **kwargs)
    for w in caught:
        print_warning(str(w.message))
    return result


def sample_with_warnings(model, *, progress: bool, **options):
    """``pbj.sample`` with its warnings as lines; what printing the summary then imports (~0.7 s) is
    imported in the background while the run compiles and samples."""
    import pytensor_blackjax as pbj
    from pytensor_blackjax._preload import also

    also(_summary_ready)
    return warnings_as_lines(pbj.sample, model, progressbar=progress, **options)


def _summary_ready() -> None:
    from pytensor_blackjax.cli._report import warm_up

    warm_up()


def finish(tree, *, out: str | None, max_rows: int | None) -> None:
    print_summary(tree, max_rows=max_rows)
    console = out_console()
    if tree.attrs.get("interrupted"):
        console.print(f"Interrupted: kept the first {tree.attrs.get('num_draws_completed')} draws per chain.")
    if "stop_reason" in tree.attrs:  # an until-run
        console.print(
            f"stopped: {tree.attrs['stop_reason']} after {tree.attrs.get('num_draws_completed')}"
            f" draws per chain (worst: {tree.attrs.get('until_worst_variable')})"
        )
    if "seed" in tree.attrs:
        console.print(f"seed: {tree.attrs['seed']} (pass --seed {tree.attrs['seed']} to repeat this run)")
    if out is not None:
        paths = write_results(tree, out, console=console)
        console.print("Wrote " + ", ".join(display_path(p) for p in paths))
