"""The ``validate`` command: posteriordb validation, its table, its exit code, and the docs tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pytensor_blackjax.cli._console import err_console, out_console
from pytensor_blackjax.cli._io import UserError
from pytensor_blackjax.cli._options import user_errors

__all__ = ["validate"]


def validate(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A posteriordb folder (or one of its posteriors).")],
    sampler: Annotated[
        list[str] | None, typer.Option(help="Sampler to validate (repeatable); 'all' for every one.")
    ] = None,
    only: Annotated[list[str] | None, typer.Option(help="Only this posterior (repeatable).")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per posterior: first-seed, first-seed+1, ...")] = 3,
    first_seed: Annotated[int, typer.Option(min=0, help="The first seed.")] = 0,
    draws: Annotated[int, typer.Option(min=4, help="Draws kept per chain.")] = 1000,
    tune: Annotated[int, typer.Option(min=0, help="Warmup steps per chain.")] = 1000,
    chains: Annotated[
        int | None, typer.Option(min=1, help="Chains per run (default: 4; 32 for chees and meads).")
    ] = None,
    alpha: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Family-wise false-alarm rate per posterior and run.")
    ] = 0.001,
    write_docs: Annotated[
        bool,
        typer.Option("--write-docs", help="Rewrite the tables in docs/validation.md and docs/samplers.md."),
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="One line per run.")] = True,
) -> None:
    """Compare posterior draws with reference draws; exit 0 only if no counted posterior FAILs.

    Every scalar's mean, sd and 5%/95% quantiles are compared by z-scores against a Bonferroni
    threshold; the table says, per posterior, the smallest errors detected with 90% probability.

    Example: pytensor-blackjax validate ../posteriordb --only eight_schools-eight_schools_noncentered
    """
    with user_errors(ctx):
        if not path.exists():
            raise UserError(f"'{path}' does not exist; give the path of a posteriordb folder.")
        try:
            from pytensor_blackjax.validate import run_validation
        except ImportError as exc:
            raise UserError(f"validation is not available in this installation ({exc}).") from exc
        docs = _docs_folder() if write_docs else None
        if docs is not None:
            from pytensor_blackjax.validate._docs import provenance

            ran_on = provenance(docs.parent)  # the code as it is now, before the (long) run
        result = run_validation(
            path,
            sampler=sampler or ["nuts"],
            seeds=range(first_seed, first_seed + seeds),
            only=only or None,
            draws=draws,
            tune=tune,
            chains=chains,
            alpha=alpha,
            progress=progress,
        )
        out_console().print(result.table(), markup=False, highlight=False, soft_wrap=True)
        if docs is not None:
            from pytensor_blackjax.validate._docs import write_docs as write

            command = _command(path, sampler, only, seeds, first_seed, draws, tune, chains, alpha)
            for written in write(result, docs, command=command, ran_on=ran_on):
                err_console().print(f"wrote {written}", markup=False, highlight=False)
    raise typer.Exit(code=0 if result.passed else 1)


def _docs_folder() -> Path:
    import pytensor_blackjax

    docs = Path(pytensor_blackjax.__file__).resolve().parents[2] / "docs"
    if not (docs / "validation.md").is_file():
        raise UserError(
            f"--write-docs writes into the source checkout's docs/, but {docs} has no validation.md; "
            "run it from a checkout (./dev validate --write-docs)."
        )
    return docs


def _command(path, sampler, only, seeds, first_seed, draws, tune, chains, alpha) -> str:
    parts = ["pytensor-blackjax validate", str(path)]
    parts += [f"--sampler {s}" for s in sampler or []]
    parts += [f"--only {o}" for o in only or []]
    defaults = {"seeds": 3, "first-seed": 0, "draws": 1000, "tune": 1000, "chains": None, "alpha": 0.001}
    given = {"seeds": seeds, "first-seed": first_seed, "draws": draws, "tune": tune, "chains": chains}
    given["alpha"] = alpha
    parts += [
        f"--{k} {v:g}" if isinstance(v, float) else f"--{k} {v}" for k, v in given.items() if v != defaults[k]
    ]
    return " ".join(parts) + " --write-docs"
