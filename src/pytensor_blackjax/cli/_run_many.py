"""`pytensor-blackjax run-many`: one model, many data sets (a folder of .npz files or a table), on this
machine or a Dask cluster, through `pbj.sample_many`."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from pytensor_blackjax.cli._console import out_console
from pytensor_blackjax.cli._io import display_path, load_model_file
from pytensor_blackjax.cli._options import Chains, Draws, ProgressFlag, Seed, Tune
from pytensor_blackjax.cli._options import user_errors as _user_errors

__all__ = ["run_many"]


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
