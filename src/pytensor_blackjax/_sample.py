"""``sample``: validate, compile, run the driver, build the DataTree, warn on problems."""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pytensor_blackjax._arguments import check_var_names, reject_unknown, resolve_model, with_target_accept
from pytensor_blackjax._initvals import check_initvals, start_points
from pytensor_blackjax._preload import preload, results
from pytensor_blackjax._validate import check_count, check_data, check_seed
from pytensor_blackjax._watching import WatchOptions, check_watch, start_watch
from pytensor_blackjax.compile import CompiledModel, compile
from pytensor_blackjax.compile._prior import has_log_prior, log_prior_draws
from pytensor_blackjax.model import Model
from pytensor_blackjax.run import RunOutput, RunSettings, run
from pytensor_blackjax.run._interrupt import interrupted_before_draws
from pytensor_blackjax.run._keys import chain_keys
from pytensor_blackjax.run._programs import has_warmup_draws
from pytensor_blackjax.run._start import initial_points
from pytensor_blackjax.run._until import Until, check_until, until_attrs
from pytensor_blackjax.samplers import RunSize, Sampler, resolve

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["build_result", "in_order", "model_order", "sample", "with_log_prior"]

CHAIN_METHODS = ("auto", "vectorized", "parallel")


def sample(
    model: Model | CompiledModel | Any = None,
    *,
    draws: int | None = None,
    tune: int = 1000,
    chains: int = 4,
    sampler: str | Sampler = "nuts",
    seed: int | None = None,
    data: Mapping[str, Any] | None = None,
    progressbar: bool = True,
    chain_method: str = "auto",
    thin: int = 1,
    chunk_size: int = 100,
    precision: str = "float64",
    log_likelihood: bool = False,
    log_prior: bool = False,
    store: str | None = None,
    watch: bool | WatchOptions = False,
    until: Until | None = None,
    target_accept: float | None = None,
    var_names: Sequence[str] | None = None,
    initvals: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    keep_warmup: bool = False,
    include_unconstrained: bool = False,
    **unknown: Any,
) -> xr.DataTree:
    """Draw from the posterior of ``model`` and return an ArviZ DataTree.

    Args:
        model: a `Model` (from ``Model.from_logp``, `ModelBuilder` or ``Model.from_pymc``), its
            `CompiledModel`, or a ``pymc.Model`` (translated once and kept on it); None: the model of the
            enclosing ``with pm.Model():`` block.
        draws: draws kept per chain after warmup (default 1000); not with ``until``.
        tune: warmup (adaptation) steps per chain; not kept.
        chains: independent chains.
        sampler: a name ("nuts", ...) or a config object such as ``pbj.samplers.NUTS(...)``.
        seed: non-negative integer; the same seed gives the same draws. None picks one (stored in attrs).
        data: new values for declared data, same shapes; no recompilation.
        progressbar: show a live progress bar.
        chain_method: "auto" (one chain per thread on a CPU, sharded over several devices, vmapped on
            one accelerator), "vectorized" (one vmapped program) or "parallel" (sharded over several
            devices, else one chain per thread). See docs/scale.md.
        thin: keep every ``thin``-th draw (``draws`` counts the kept ones).
        chunk_size: draws per chunk: what a store writes (and checkpoints) at a time and where an
            ``until`` run checks. Without either, a call of the compiled programs holds several
            chunks while calls are quick (up to 1000 draws, about 0.1 s a call: Ctrl-C and the
            progress bar answer within that). Never changes the draws.
        precision: "float64" or "float32": the dtype of positions, data, log-density and draws
            ("float32" runs the sampler with 32-bit JAX; model constants are truncated to float32).
        log_likelihood: add a pointwise ``log_likelihood`` group (models that declare one).
        log_prior: add a pointwise ``log_prior`` group, each free variable's prior log-density at each
            draw (PyMC models, or priors declared with ``ModelBuilder.add_logp(term, prior=name)``), as
            PyMC's ``compute_log_prior`` makes it; with ``log_likelihood=True`` it is what
            ``arviz_stats.psense_summary`` (power-scaling sensitivity) needs.
        store: path of a Zarr store to stream draws to; see ``resume``.
        watch: serve a live page of the run (read from ``store``, which it needs) and open it in a web
            browser; ``pbj.WatchOptions(port=..., open_browser=False)`` to choose. Needs the ``watch`` extra.
        until: ``pbj.Until(ess_bulk=..., ess_tail=..., rhat=...)``: sample in chunks until every scalar
            meets the targets or a cap is reached, instead of a fixed ``draws``; ``attrs["stop_reason"]``
            says why it stopped. See docs/until.md.
        target_accept: shortcut for the ``target_accept`` of a NUTS-family sampler (NUTS, HMC, MALA,
            ChEES); refused by samplers without one.
        var_names: the variables kept in the ``posterior`` group (default: all).
        initvals: starting values on the constrained scale, as PyMC's: one dict ``{name: value}`` for
            every chain, or a list of dicts, one per chain, naming free variables (PyMC's names for a
            PyMC model). Variables left out start at random as usual. Converted through the model's
            transforms; a value outside the support, a wrong shape or a start where the log-density is
            not finite is an error. Ensemble samplers given one dict jitter it per chain by
            uniform(-1, 1) in unconstrained space; SMC refuses it. A store records the start, so a
            ``resume`` that repeats the warmup starts there again.
        keep_warmup: add ``warmup_posterior`` and ``warmup_sample_stats`` groups (PyMC's names) with
            every warmup step (``draw`` 0..tune-1; ``thin`` does not apply). For samplers whose warmup
            moves the chains step by step (NUTS, HMC, MALA); not with ``store``.
        include_unconstrained: add an ``unconstrained_posterior`` group: the draws in the space the
            sampler moves in, one variable per unconstrained value (PyMC's value names such as
            ``sigma_log__``; `ModelBuilder` names them ``<name>_<transform>__`` likewise, untransformed
            parameters keep their name), dims ``(chain, draw, <value>_dim_0, ...)``.
        **unknown: refused; the error names the nearest keyword (and PyMC's equivalent, e.g.
            ``random_seed`` -> ``seed``).

    Returns:
        ``xarray.DataTree`` with ``posterior`` and ``sample_stats`` (and data groups, and those asked
        for above), dims ``(chain, draw, ...)``.

    Raises:
        ValueError, TypeError: invalid arguments, with the offending value and the fix.
        KeyboardInterrupt: Ctrl-C before the first draw (during compilation or warmup); a Ctrl-C
            during sampling returns the draws made so far instead, with a ``RuntimeWarning``.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> idata = pbj.sample(pbj.examples.rat_tumors(), draws=500, chains=2, seed=1, progressbar=False)
    """
    reject_unknown("sample()", unknown, KEYWORDS)
    preload()
    if until is not None and draws is not None:
        raise ValueError(
            f"draws={draws!r} and until= were both given: until= samples until its targets are met (cap "
            "it with Until(max_draws=...)); draws= samples a fixed number. Give one of them."
        )
    settings = RunSettings(
        draws=_until_draws(until)
        if until is not None
        else check_count("draws", 1000 if draws is None else draws),
        tune=check_count("tune", tune, minimum=0),
        chains=check_count("chains", chains),
        seed=check_seed(seed),
        thin=check_count("thin", thin),
        chunk_size=check_count("chunk_size", chunk_size),
        chain_method=_check_method(chain_method),
        precision=_check_precision(precision),
        keep_warmup=_check_flag("keep_warmup", keep_warmup),
        include_unconstrained=_check_flag("include_unconstrained", include_unconstrained),
    )
    watching = check_watch(watch, store)
    sampler = with_target_accept(resolve(sampler), target_accept)
    model = resolve_model(model)
    compiled = model if isinstance(model, CompiledModel) else compile(model)
    keep = check_var_names(var_names, compiled)
    sampler.check(chains=settings.chains, tune=settings.tune, num_dims=compiled.num_dims)
    if until is not None:
        check_until(until, sampler=sampler, chunk=settings.chunk, chains=settings.chains,
                    names=compiled.output_shapes)  # fmt: skip
    new_data = check_data(compiled.default_data, data, compiled.index_limits)
    if keep_warmup:
        _check_keep_warmup(sampler, settings, compiled.num_dims, store)
    start = None if initvals is None else _start(initvals, compiled, sampler, settings, new_data)
    if log_likelihood and not compiled.loglik_shapes:
        raise ValueError(
            "log_likelihood=True but the model declares no pointwise log-likelihood: use a PyMC model with "
            "observed variables, or ModelBuilder.log_likelihood(name, pointwise)."
        )
    if log_prior and not has_log_prior(compiled):
        raise ValueError(_no_log_prior(compiled.model))
    sink = None
    if store is not None:
        from pytensor_blackjax.store import open_new

        sink = open_new(
            store,
            compiled,
            sampler,
            settings,
            new_data,
            log_likelihood=log_likelihood,
            log_prior=log_prior,
            until=until,
        )
        if watching is not None:
            start_watch(sink.path, watching)
    t0 = time.perf_counter()
    output = run(
        compiled,
        sampler,
        settings,
        compiled.data_tuple(new_data),
        progressbar=progressbar,
        sink=sink,
        log_likelihood=log_likelihood,
        until=until,
        start=start,
    )
    if sink is not None:
        sink.close(output)
    if output.interrupted and not output.num_draws:
        raise interrupted_before_draws(None if sink is None else sink.path)
    if log_prior:  # before var_names drops any of the variables the priors take
        output = with_log_prior(compiled, output, new_data)
    if keep is not None:
        kept: dict[str, dict[str, np.ndarray]] = {
            g: {k: v for k, v in output.groups[g].items() if k in keep}
            for g in ("posterior", "warmup_posterior")
            if g in output.groups
        }
        output = dataclasses.replace(output, groups={**output.groups, **kept})
    tree = build_result(
        compiled,
        sampler,
        settings,
        output,
        new_data,
        log_likelihood=log_likelihood,
        elapsed=time.perf_counter() - t0,
    )
    if sink is not None:
        tree.attrs["store"] = str(sink.path)  # pbj.extend(tree, ...) finds the store here
    return tree


def _until_draws(until: Any) -> int:
    """An until-run's draws setting: its cap, the most there may be."""
    if not isinstance(until, Until):
        raise TypeError(f"until={until!r} is not valid: give pbj.Until(ess_bulk=..., ...).")
    return until.max_draws


KEYWORDS = tuple(p for p in inspect.signature(sample).parameters if p != "unknown")


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}={value!r} must be True or False.")
    return bool(value)


def _check_keep_warmup(sampler: Sampler, settings: RunSettings, num_dims: int, store: str | None) -> None:
    if store is not None:
        raise ValueError(
            "keep_warmup=True with store=: a store keeps the sampling draws only; drop one of them (sample "
            "without store= to see the warmup draws)."
        )
    size = RunSize(draws=settings.draws * settings.thin, tune=settings.tune, chains=settings.chains)
    if not has_warmup_draws(sampler, num_dims, size):
        raise ValueError(
            f"keep_warmup=True: the warmup of {type(sampler).__name__} makes no draws of its own (it tunes "
            "in one call, by tempering or by optimisation); use a sampler whose warmup moves the chains "
            "step by step (NUTS, HMC, MALA), or drop keep_warmup."
        )


def _start(
    initvals, compiled: CompiledModel, sampler: Sampler, settings: RunSettings, new_data
) -> np.ndarray:
    """The chains' starting points with ``initvals`` written over the default ones."""
    if not getattr(type(sampler), "uses_start_points", True):
        raise ValueError(
            f"initvals: {type(sampler).__name__} does not start from given points (its particles are drawn "
            "from its reference distribution); drop initvals, or use another sampler."
        )
    given, shared = check_initvals(initvals, compiled, settings.chains)
    data = compiled.data_tuple(new_data)
    keys = chain_keys(settings.seed, settings.chains)
    default = initial_points(compiled, keys, data, sampler.init_radius)
    jitter = settings.seed if shared and sampler.ensemble and settings.chains > 1 else None
    return start_points(given, compiled, default, data, shared=shared, jitter_seed=jitter)


def _check_method(method: Any) -> str:
    if method not in CHAIN_METHODS:
        raise ValueError(f"chain_method={method!r} is not known; use one of {list(CHAIN_METHODS)}.")
    return method


def _check_precision(precision: Any) -> str:
    if precision not in ("float64", "float32"):
        raise ValueError(f"precision={precision!r} is not known; use 'float64' (the default) or 'float32'.")
    return precision


def build_result(compiled, sampler, settings, output, new_data, *, log_likelihood, elapsed) -> xr.DataTree:
    res = results()
    model = compiled.model
    order = model_order(compiled)
    groups = {
        "posterior": in_order(output.groups.get("posterior", {}), order["posterior"]),
        "sample_stats": output.groups.get("sample_stats", {}),
    }
    if log_likelihood:
        groups["log_likelihood"] = in_order(output.groups.get("log_likelihood", {}), order["log_likelihood"])
    if "log_prior" in output.groups:
        groups["log_prior"] = output.groups["log_prior"]
    for extra in ("unconstrained_posterior", "warmup_posterior", "warmup_sample_stats"):
        if output.groups.get(extra):
            groups[extra] = in_order(output.groups[extra], order.get(extra, ()))
    data_now = {**compiled.default_data, **new_data}
    observed = {k: data_now[k] for k, d in model.data.items() if d.kind == "observed"}
    constant = {k: data_now[k] for k, d in model.data.items() if d.kind == "constant"}
    attrs = {
        "model": model.name,
        "sampler": sampler.name,
        "sampler_config": repr(sampler),
        "approximate": int(bool(sampler.approximate)),
        "seed": settings.seed,
        "draws": settings.draws,
        "tune": settings.tune,
        "chains": settings.chains,
        "thin": settings.thin,
        "chain_method": output.chain_method,
        "precision": settings.precision,
        "num_draws_completed": output.num_draws,
        "interrupted": int(output.interrupted),
        "sampling_time": output.timings.get("sampling", np.nan),
        "warmup_time": output.timings.get("warmup", np.nan),
        "total_time": elapsed,
        "warmup_divergences": output.warmup_divergences,
        **until_attrs(output.extra),
        **{f"version_{k}": v for k, v in res.library_versions().items()},
    }
    tree = res.make_datatree(
        groups, dims=model.dims, coords=model.coords, observed=observed, constant=constant, attrs=attrs
    )
    if output.num_draws > 0:
        res.warn_on_problems(tree)
    return tree


def with_log_prior(compiled: CompiledModel, output: RunOutput, new_data: Mapping[str, Any]) -> RunOutput:
    """``output`` with a ``log_prior`` group computed from its posterior draws (it is never stored: a
    store's run gets it again when read back)."""
    data = compiled.data_tuple(new_data)
    prior = log_prior_draws(compiled, output.groups.get("posterior", {}), data)
    return dataclasses.replace(output, groups={**output.groups, "log_prior": prior})


def _no_log_prior(model: Model) -> str:
    from pytensor_blackjax.model._pymc import initval_names

    with_initval = initval_names(model.source)
    if with_initval:
        return (
            "log_prior=True but PyMC cannot copy a model whose variables have initval= set "
            f"({with_initval}), which the log prior needs: remove initval= from the model and pass "
            "initvals={...} to sample."
        )
    return (
        "log_prior=True but the model declares no prior terms: use a PyMC model (each free variable's "
        "prior), or declare them with ModelBuilder.add_logp(term, prior='name')."
    )


def model_order(compiled: CompiledModel) -> dict[str, tuple[str, ...]]:
    """Each draw group's variables in the model's order: the posterior's free variables as declared (PyMC:
    ``free_RVs``), then deterministics; positions by value. Draws lose this order on the way (JAX
    flattens a dict output with its keys sorted, a store lists its arrays in any order), so results
    are rebuilt in it."""
    outputs = tuple(compiled.output_shapes)
    return {
        "posterior": outputs,
        "warmup_posterior": outputs,
        "log_likelihood": tuple(compiled.loglik_shapes),
        "unconstrained_posterior": compiled.value_names,
    }


def in_order(values: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """``values`` with the keys in ``names`` first, in that order, then any others as they came."""
    first = {k: values[k] for k in names if k in values}
    return {**first, **{k: v for k, v in values.items() if k not in first}}
