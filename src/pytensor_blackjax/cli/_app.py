"""The ``pytensor-blackjax`` commands: thin wrappers over the public API that read and write files."""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from pytensor_blackjax.cli._console import err_console, out_console, print_error, print_summary, print_warning
from pytensor_blackjax.cli._io import UserError, display_path, load_model_file, read_results, write_results

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


@contextmanager
def _user_errors(ctx: typer.Context):
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


def _sample(model, *, progress: bool, **options):
    import pytensor_blackjax as pbj

    # The driver's diagnostics warnings become one readable line each instead of Python's warning format.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tree = pbj.sample(model, progressbar=progress, **options)
    for w in caught:
        print_warning(str(w.message))
    return tree


def _finish(tree, *, out: str | None, max_rows: int | None) -> None:
    print_summary(tree, max_rows=max_rows)
    console = out_console()
    if tree.attrs.get("interrupted"):
        console.print(f"Interrupted: kept the first {tree.attrs.get('num_draws_completed')} draws per chain.")
    if "seed" in tree.attrs:
        console.print(f"seed: {tree.attrs['seed']} (pass --seed {tree.attrs['seed']} to repeat this run)")
    if out is not None:
        paths = write_results(tree, out, console=console)
        console.print("Wrote " + ", ".join(display_path(p) for p in paths))


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
    draws: Draws = 1000,
    tune: Tune = 1000,
    chains: Chains = 4,
    sampler: Annotated[str, typer.Option(help="Sampler name, e.g. nuts.")] = "nuts",
    seed: Seed = None,
    store: Annotated[str | None, typer.Option(help="Zarr store to stream draws to (resumable).")] = None,
    out: Out = None,
    progress: ProgressFlag = True,
    max_rows: MaxRows = 25,
) -> None:
    """Sample the model defined in a Python file and print its summary.

    Example: pytensor-blackjax run my_model.py --draws 2000 --chains 4 --seed 1 --out results/
    """
    with _user_errors(ctx):
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
        print_summary(read_results(results), max_rows=max_rows)


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


@app.command()
def resume(
    ctx: typer.Context,
    store: Annotated[str, typer.Argument(metavar="STORE", help="The --store of an interrupted run.")],
    model: Annotated[
        str | None,
        typer.Option(
            metavar="MODEL.py[:NAME]",
            help="The model file that started the run; by default the copy kept in the store.",
        ),
    ] = None,
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
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tree = resume_fn(store, model=loaded, progressbar=progress)
        for w in caught:
            print_warning(str(w.message))
        _finish(tree, out=out, max_rows=max_rows)


@app.command("run-many")
def run_many(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(metavar="MODEL.py[:NAME]", help="A Python file defining the model, as for `run`."),
    ],
    datasets: Annotated[
        str,
        typer.Argument(
            metavar="DATA_DIR_OR_TABLE",
            help="A folder of NAME.npz files (one per fit), or a .csv/.parquet table with a `fit` column.",
        ),
    ],
    out: Annotated[str, typer.Option(help="Folder for results.zarr (every fit) and fits.csv.")],
    scheduler: Annotated[
        str | None,
        typer.Option(metavar="ADDRESS", help="A Dask scheduler (tcp://host:8786); default: this machine."),
    ] = None,
    store_dir: Annotated[
        str | None,
        typer.Option(help="Folder for one resumable Zarr store per fit (reachable by every worker)."),
    ] = None,
    draws: Draws = 1000,
    tune: Tune = 1000,
    chains: Chains = 4,
    sampler: Annotated[str, typer.Option(help="Sampler name, e.g. nuts.")] = "nuts",
    seed: Seed = None,
    progress: ProgressFlag = True,
) -> None:
    """Fit one model to many data sets (on this machine, or on a Dask cluster) and write every fit.

    Example: pytensor-blackjax run-many model.py sets/ --scheduler tcp://10.0.0.5:8786 --out many/
    """
    import pytensor_blackjax as pbj
    from pytensor_blackjax.cli._datasets import read_datasets

    with _user_errors(ctx):
        compiled = pbj.compile(load_model_file(model))
        sets = read_datasets(datasets, compiled.default_data)
        client = None
        if scheduler is not None:
            from pytensor_blackjax.many._dask import connect

            client = connect(scheduler)
        try:
            with warnings.catch_warnings():
                # one line per fit would drown the table; each fit's problems are in its own draws
                warnings.simplefilter("ignore", pbj.SamplingWarning)
                tree = pbj.sample_many(
                    compiled,
                    sets,
                    seed=seed,
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    sampler=sampler,
                    client=client,
                    store_dir=store_dir,
                    progressbar=progress,
                )
        finally:
            if client is not None:
                client.close()
        tree.attrs["model_file"] = model
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        tree.to_zarr(folder / "results.zarr", mode="w", consolidated=False)
        table = _fits_table(tree)
        table.to_csv(folder / "fits.csv")
        console = out_console()
        failed = table[table["status"] != "ok"]
        console.print(f"{len(table) - len(failed)} of {len(table)} fits ok; seed {tree.attrs['seed']}.")
        for label, row in failed.iterrows():
            console.print(f"fit {label}: {row['status']}", markup=False, highlight=False)
        console.print(f"Wrote {display_path(folder / 'results.zarr')}, {display_path(folder / 'fits.csv')}")
    if len(failed):
        raise typer.Exit(code=1)


def _fits_table(tree):
    """One row per fit: its status and seed, and the posterior mean and sd of each scalar quantity."""
    table = tree["fits"].to_dataset().to_dataframe()
    if "posterior" in tree.children:
        post = tree["posterior"].to_dataset()
        for name, var in post.data_vars.items():
            if var.ndim == 3:  # (fit, chain, draw): a scalar quantity
                table[f"{name}_mean"] = var.mean(("chain", "draw")).values
                table[f"{name}_sd"] = var.std(("chain", "draw")).values
    return table


@app.command()
def validate(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A posteriordb folder (or one of its posteriors).")],
    sampler: Annotated[str, typer.Option(help="Sampler name to validate.")] = "nuts",
    only: Annotated[list[str] | None, typer.Option(help="Only this posterior (repeatable).")] = None,
) -> None:
    """Compare posterior draws against reference draws; exit 0 only if every comparison passes.

    Example: pytensor-blackjax validate ../posteriordb --only eight_schools-eight_schools_noncentered
    """
    with _user_errors(ctx):
        if not path.exists():
            raise UserError(f"'{path}' does not exist; give the path of a posteriordb folder.")
        try:
            from pytensor_blackjax.validate import run_validation
        except ImportError as exc:
            raise UserError(f"validation is not available in this installation ({exc}).") from exc
        result = run_validation(path, sampler=sampler, only=only or None)
        out_console().print(result.table(), markup=False, highlight=False)
    raise typer.Exit(code=0 if result.passed else 1)


def _is_click_error(exc: BaseException) -> bool:
    # Usage errors of the vendored or standalone click share this interface.
    return callable(getattr(exc, "format_message", None)) and isinstance(getattr(exc, "exit_code", None), int)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``pytensor-blackjax`` script: usage errors become one line on stderr."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name=PROG, standalone_mode=False)
    except typer.Abort:
        print_error("aborted.")
        sys.exit(1)
    except Exception as exc:
        if not _is_click_error(exc):
            raise
        context = getattr(exc, "ctx", None)
        where = context.command_path if context is not None else PROG
        print_error(f"{exc.format_message()} (see '{where} --help')")
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
