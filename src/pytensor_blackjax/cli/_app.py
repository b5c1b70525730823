"""The ``pytensor-blackjax`` commands: thin wrappers over the public API that read and write files."""

from __future__ import annotations

import dataclasses
import gc
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from pytensor_blackjax.cli._console import err_console, out_console, print_error, print_summary
from pytensor_blackjax.cli._io import UserError, load_model_file, read_results
from pytensor_blackjax.cli._options import (
    MAX_DRAWS,
    Chains,
    Draws,
    Ess,
    MaxDraws,
    MaxRows,
    OpenBrowser,
    Out,
    ProgressFlag,
    Seed,
    Tune,
    WatchPort,
    warnings_as_lines,
)
from pytensor_blackjax.cli._options import finish as _finish
from pytensor_blackjax.cli._options import sample_with_warnings as _sample
from pytensor_blackjax.cli._options import user_errors as _user_errors
from pytensor_blackjax.cli._run_many import run_many
from pytensor_blackjax.cli._validation import validate

__all__ = ["app", "main"]

PROG = "pytensor-blackjax"

app = typer.Typer(
    name=PROG,
    help="Sample PyTensor models with Blackjax and look at the results.\n\n"
    "Example: pytensor-blackjax demo --out demo_out",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class Kind(StrEnum):
    trace = "trace"
    rank = "rank"
    pair = "pair"
    forest = "forest"
    energy = "energy"


@app.callback()
def _root(
    ctx: typer.Context,
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show full Python tracebacks on errors (for reporting bugs).")
    ] = False,
) -> None:
    ctx.obj = {"traceback": traceback}


@app.command()
def demo(
    ctx: typer.Context,
    out: Out = None,
    draws: Draws = 1000,
    tune: Tune = 1000,
    chains: Chains = 4,
    seed: Seed = None,
    progress: ProgressFlag = True,
    max_rows: MaxRows = 12,
) -> None:
    """Sample the built-in rat-tumour model (71 groups, Beta-Binomial) and print its summary.

    Example: pytensor-blackjax demo --out demo_out
    """
    import pytensor_blackjax as pbj

    with _user_errors(ctx):
        err_console().print(
            "Rat tumours (Gelman et al., BDA3 ch. 5): tumour rates in 71 groups of rats, "
            "pooled through a Beta(alpha, beta) prior."
        )
        tree = _sample(
            pbj.examples.rat_tumors(), progress=progress, draws=draws, tune=tune, chains=chains, seed=seed
        )
        _finish(tree, out=out, max_rows=max_rows)


@app.command()
def run(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL.py[:NAME]",
            help="A Python file defining a pbj.Model (or PyMC model) named `model`, or NAME.",
        ),
    ],
    draws: Annotated[int | None, typer.Option(min=1, help="Draws kept per chain (default 1000).")] = None,
    tune: Tune = 1000,
    chains: Chains = 4,
    sampler: Annotated[str, typer.Option(help="Sampler name, e.g. nuts.")] = "nuts",
    seed: Seed = None,
    store: Annotated[str | None, typer.Option(help="Zarr store to stream draws to (resumable).")] = None,
    out: Out = None,
    progress: ProgressFlag = True,
    max_rows: MaxRows = 25,
    watch: Annotated[
        bool, typer.Option("--watch", help="Serve a live page of the run while it samples (needs --store).")
    ] = False,
    port: WatchPort = None,
    open_browser: OpenBrowser = False,
    ess: Ess = None,
    max_draws: MaxDraws = None,
    keep_warmup: Annotated[
        bool,
        typer.Option("--keep-warmup", help="Keep the warmup draws (warmup_posterior, warmup_sample_stats)."),
    ] = False,
    include_unconstrained: Annotated[
        bool,
        typer.Option(
            "--include-unconstrained", help="Keep the unconstrained draws (unconstrained_posterior)."
        ),
    ] = False,
) -> None:
    """Sample the model defined in a Python file and print its summary.

    Example: pytensor-blackjax run my_model.py --draws 2000 --chains 4 --seed 1 --out results/

    Example: pytensor-blackjax run my_model.py --ess 400 --store run.zarr   (sample until ESS >= 400)
    """
    from pytensor_blackjax._watching import WatchOptions

    with _user_errors(ctx):
        if watch and store is None:
            raise UserError("--watch follows the run through its store; add --store run.zarr (a new path).")
        _check_length_options(draws, ess, max_draws)
        loaded = load_model_file(model)
        tree = _sample(
            loaded,
            progress=progress,
            draws=draws,
            tune=tune,
            chains=chains,
            sampler=sampler,
            seed=seed,
            store=store,
            watch=WatchOptions(port=port, open_browser=open_browser) if watch else False,
            keep_warmup=keep_warmup,
            include_unconstrained=include_unconstrained,
            **_until_option(ess, max_draws),
        )
        tree.attrs["model_file"] = model
        _finish(tree, out=out, max_rows=max_rows)


Results = Annotated[str, typer.Argument(metavar="RESULTS", help="A results.zarr folder written with --out.")]


@app.command()
def summary(ctx: typer.Context, results: Results, max_rows: MaxRows = None) -> None:
    """Print the summary table (mean, sd, interval, ESS, R-hat) of stored results.

    Example: pytensor-blackjax summary demo_out/results.zarr
    """
    with _user_errors(ctx):
        print_summary(read_results(results), max_rows=max_rows, hint=False)


@app.command()
def plot(
    ctx: typer.Context,
    results: Results,
    output: Annotated[Path, typer.Option("--output", "-o", help="Image file to write (.png, .svg or .pdf).")],
    kind: Annotated[Kind, typer.Option(help="Which plot.")] = Kind.trace,
    var: Annotated[
        list[str] | None,
        typer.Option(help="Variable to show (repeatable); default: all, trimmed to a readable subset."),
    ] = None,
) -> None:
    """Draw a trace, rank, pair, forest or energy plot of stored results.

    Example: pytensor-blackjax plot demo_out/results.zarr --kind rank -o rank.png
    """
    from pytensor_blackjax.cli._plots import FORMATS, draw

    with _user_errors(ctx):
        fmt = output.suffix.lstrip(".").lower()
        if fmt not in FORMATS:
            raise UserError(
                f"-o '{output}' has an unsupported extension; use one of "
                f"{['.' + f for f in FORMATS]}, e.g. -o {kind.value}.png"
            )
        figure = draw(read_results(results), kind.value, var_names=var, fmt=fmt)
        figure.save(str(output))
        out_console().print(f"Wrote {output}" + (f". {figure.note}" if figure.note else ""))


@app.command()
def report(
    ctx: typer.Context,
    results: Results,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path("report.html"),
) -> None:
    """Write a one-page HTML report: settings, summary, diagnostics in words, trace/rank/pair plots.

    Example: pytensor-blackjax report demo_out/results.zarr -o report.html
    """
    from pytensor_blackjax.cli._report import build_report

    with _user_errors(ctx):
        page = build_report(read_results(results))
        output.write_text(page, encoding="utf-8")
        out_console().print(f"Wrote {output}")


# `resume` and `extend`: the model file of a stored run
StoredModel = Annotated[
    str | None,
    typer.Option(
        metavar="MODEL.py[:NAME]",
        help="The model file that started the run; by default the copy kept in the store.",
    ),
]


@app.command()
def resume(
    ctx: typer.Context,
    store: Annotated[str, typer.Argument(metavar="STORE", help="The --store of an interrupted run.")],
    model: StoredModel = None,
    out: Out = None,
    progress: ProgressFlag = True,
    max_rows: MaxRows = 25,
) -> None:
    """Finish an interrupted run from its Zarr store and print its summary.

    Example: pytensor-blackjax resume run.zarr --out results/
    """
    import pytensor_blackjax as pbj

    with _user_errors(ctx):
        if not Path(store).exists():
            raise UserError(f"store '{store}' does not exist; give the --store path of an earlier run.")
        resume_fn = getattr(pbj, "resume", None)
        if resume_fn is None:
            raise UserError(
                "resuming is not available in this version of pytensor-blackjax "
                "(pytensor_blackjax.resume is missing)."
            )
        loaded = load_model_file(model) if model is not None else None
        tree = warnings_as_lines(resume_fn, store, model=loaded, progressbar=progress)
        _finish(tree, out=out, max_rows=max_rows)


def _check_length_options(draws: int | None, ess: float | None, max_draws: int | None) -> None:
    """--draws (a fixed length) or --ess (until precise enough, capped by --max-draws)."""
    if draws is not None and ess is not None:
        raise UserError(
            f"--draws {draws} and --ess {ess:g} were both given: --draws samples that many draws per chain, "
            "--ess samples until every scalar's bulk and tail ESS reach it (cap it with --max-draws); give "
            "one of them."
        )
    if ess is None and max_draws is not None:
        raise UserError(
            f"--max-draws {max_draws} caps a run that samples until precise enough; add --ess N (e.g. --ess "
            "400), or give --draws N for a fixed number of draws per chain."
        )


def _until_option(ess: float | None, max_draws: int | None) -> dict:
    import pytensor_blackjax as pbj

    if ess is None:
        return {}
    until = pbj.Until(ess_bulk=ess, ess_tail=ess, rhat=1.01)  # with Until's own cap unless one is given
    return {"until": until if max_draws is None else dataclasses.replace(until, max_draws=max_draws)}


@app.command()
def extend(
    ctx: typer.Context,
    store: Annotated[str, typer.Argument(metavar="STORE", help="The --store of a complete run.")],
    draws: Annotated[int | None, typer.Option(min=1, help="Draws more per chain.")] = None,
    ess: Ess = None,
    max_draws: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=f"With --ess: draws per chain at most, the earlier ones included (default {MAX_DRAWS}).",
        ),
    ] = None,
    model: StoredModel = None,
    out: Out = None,
    progress: ProgressFlag = True,
    max_rows: MaxRows = 25,
) -> None:
    """Continue a complete run from its store without warming up again (the draws equal those of one
    longer run) and print the summary of all its draws.

    Example: pytensor-blackjax extend run.zarr --draws 1000    or    extend run.zarr --ess 400
    """
    import pytensor_blackjax as pbj

    with _user_errors(ctx):
        if (draws is None) == (ess is None):
            raise UserError(
                "give one of --draws N (that many more draws per chain) or --ess N (until ESS >= N)."
            )
        _check_length_options(draws, ess, max_draws)
        loaded = load_model_file(model) if model is not None else None
        until = _until_option(ess, max_draws)
        tree = warnings_as_lines(pbj.extend, store, draws=draws, model=loaded, progressbar=progress, **until)
        _finish(tree, out=out, max_rows=max_rows)


@app.command()
def watch(
    ctx: typer.Context,
    store: Annotated[str, typer.Argument(metavar="STORE", help="The store of a run (--store / store=).")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve the page on.")] = 5006,
    host: Annotated[
        str, typer.Option(help="Address to listen on; the default serves this machine only.")
    ] = "127.0.0.1",
    open_browser: OpenBrowser = False,
    stop_with: Annotated[int | None, typer.Option(hidden=True, help="Stop when this process ends.")] = None,
) -> None:
    """Serve a live page of a run - running, finished or interrupted - that follows its store.

    The page shows the phase and time left, per-chain step size, tree depth and acceptance, divergences
    in a pair plot, running R-hat and ESS, trace, rank and energy plots. It reads only committed draws
    and never writes to the store. For a run on another machine: ssh -L 5006:127.0.0.1:5006 HOST.

    Example: pytensor-blackjax watch run.zarr --port 5006
    """
    with _user_errors(ctx):
        from pytensor_blackjax.cli._watch import serve

        serve(Path(store), port=port, host=host, open_browser=open_browser, stop_with=stop_with)


def _is_click_error(exc: BaseException) -> bool:
    # Usage errors of the vendored or standalone click share this interface.
    return callable(getattr(exc, "format_message", None)) and isinstance(getattr(exc, "exit_code", None), int)


app.command("run-many")(run_many)
app.command("validate")(validate)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``pytensor-blackjax`` script: usage errors become one line on stderr.
    ``argv`` None: the process's own command line, and the process ends after this call."""
    try:
        sys.exit(_main(argv))
    finally:
        if argv is None:  # a caller passing arguments (a test, a notebook) keeps its process as it was
            _before_exit()


def _main(argv: list[str] | None) -> int:
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name=PROG, standalone_mode=False)
    except typer.Abort:
        print_error("aborted.")
        return 1
    except Exception as exc:
        if not _is_click_error(exc):
            raise
        context = getattr(exc, "ctx", None)
        where = context.command_path if context is not None else PROG
        usage: Any = exc  # a click usage error (checked above)
        print_error(f"{usage.format_message()} (see '{where} --help')")
        return usage.exit_code
    return code if isinstance(code, int) else 0


def _before_exit() -> None:
    """The command's work is done: spare the interpreter's shutdown its garbage collections.

    With JAX, PyTensor and xarray loaded and a model sampled, the collections Python runs while it
    tears its modules down took about 0.5 s of a 3 s command, after the results were printed and
    written. Frozen objects (``gc.freeze``) are skipped by them; every object is still released by
    reference counting, atexit handlers and non-daemon threads run as before, and every file this
    package writes is closed by then. What Python never promised at exit anyway - finalising objects
    left in reference cycles - is left undone.
    """
    gc.freeze()
