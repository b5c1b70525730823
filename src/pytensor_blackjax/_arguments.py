"""PyMC habits in ``sample``: the model of a ``with pm.Model():`` block, ``target_accept=``, ``var_names=``,
and unknown keywords turned into errors that name the nearest valid one (and PyMC's equivalent here).
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from pytensor_blackjax.compile import CompiledModel
from pytensor_blackjax.model import Model, ModelBuilder
from pytensor_blackjax.samplers import Sampler

__all__ = ["PYMC_EQUIVALENTS", "check_var_names", "reject_unknown", "resolve_model", "with_target_accept"]

# pm.sample's keywords -> what to write here (None: no equivalent yet).
PYMC_EQUIVALENTS: Mapping[str, str | None] = {
    "random_seed": "seed=",
    "nuts_sampler": "sampler= (e.g. sampler='nuts' or pbj.samplers.NUTS(...))",
    "step": "sampler= (a config such as pbj.samplers.NUTS(...))",
    "cores": "chain_method= (chains run in parallel by default)",
    "progressbar_theme": "progressbar=",
    "return_inferencedata": "nothing: the result is always an xarray.DataTree",
    "idata_kwargs": "log_likelihood=True for the log_likelihood group (log_prior=True for log_prior)",
    "compute_convergence_checks": "nothing: the checks always run (a SamplingWarning names problems)",
    "discard_tuned_samples": "keep_warmup= (discard_tuned_samples=False is keep_warmup=True)",
    "nuts_sampler_kwargs": "a sampler config such as pbj.samplers.NUTS(max_tree_depth=12)",
    "store_unconstrained": "include_unconstrained=True (nutpie's name)",
    "initval": "initvals=",
    "model": "the first argument",
}


def _nearest(name: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_keyword(owner: str, name: str, valid: Collection[str]) -> str:
    """The message for ``name`` unknown to ``owner``: the nearest valid name, PyMC's equivalent, the list."""
    hint = _nearest(name, valid)
    if name in PYMC_EQUIVALENTS:
        equivalent = PYMC_EQUIVALENTS[name]
        hint = (
            f"; PyMC's {name!r} is not supported yet"
            if equivalent is None
            else f"; instead of PyMC's {name}=, use {equivalent}"
        )
    return f"{owner} got an unexpected keyword {name!r}{hint}. Its keywords are {sorted(valid)}."


def reject_unknown(owner: str, given: Mapping[str, Any], valid: Collection[str]) -> None:
    """Raise TypeError for the first keyword of ``given`` (the unknown ones) with a suggestion."""
    for name in given:
        raise TypeError(unknown_keyword(owner, name, valid))


def resolve_model(model: Any) -> Model | CompiledModel:
    """The model to sample: ours as given, a ``pm.Model`` converted once (kept on it), or the model of
    the enclosing ``with pm.Model():`` block when ``model`` is None."""
    if isinstance(model, Model | CompiledModel):
        return model
    if model is None:
        model = _context_model()
    elif not _is_pymc_model(model):
        fix = (
            "pass the model it builds, m.build()"
            if isinstance(model, ModelBuilder)
            else "build one with pbj.ModelBuilder(...).build(), Model.from_logp or PyMC"
        )
        raise TypeError(
            f"sample(model): expected a pbj.Model, a CompiledModel or a pymc.Model, got "
            f"{type(model).__name__}; {fix}."
        )
    # A pm.Model can grow after a call; the cached translation is reused only while it is unchanged.
    key = (tuple(model.named_vars), _data_key(model))
    cached = getattr(model, "_pytensor_blackjax_model", None)
    if cached is None or cached[0] != key:
        cached = (key, Model.from_pymc(model))
        model._pytensor_blackjax_model = cached
    return cached[1]


def _is_pymc_model(obj: Any) -> bool:
    # a pm.Model exists only once PyMC is imported; never import it just to say no
    pymc = sys.modules.get("pymc")
    return pymc is not None and isinstance(obj, pymc.Model)


def _data_key(pm_model: Any) -> tuple:
    # pm.set_data changes the defaults the translation captured: compare every data value cheaply by id
    # and a checksum of its bytes.
    import numpy as np

    out = []
    for var in pm_model.data_vars:
        value = np.asarray(var.get_value(borrow=True) if hasattr(var, "get_value") else var.data)
        out.append((var.name, value.shape, str(value.dtype), hash(np.ascontiguousarray(value).tobytes())))
    return tuple(out)


def _context_model() -> Any:
    message = (
        "sample() needs a model: pass one (pbj.sample(model)), a pymc.Model, or call it inside "
        "`with pm.Model():`"
    )
    try:
        import pymc
    except ImportError:
        raise TypeError(message + " (PyMC is not installed).") from None
    try:
        return pymc.modelcontext(None)
    except TypeError:
        raise TypeError(message + "; no PyMC model context is active here.") from None


def with_target_accept(sampler: Sampler, target_accept: float | None) -> Sampler:
    """``sampler`` with ``target_accept`` set; samplers without that field refuse it."""
    if target_accept is None:
        return sampler
    names: set[str] = set()
    if dataclasses.is_dataclass(sampler) and not isinstance(sampler, type):
        names = {f.name for f in dataclasses.fields(sampler)}
    if "target_accept" not in names:
        raise ValueError(
            f"target_accept={target_accept!r}: the {sampler.name!r} sampler has no target acceptance; use it "
            "with a NUTS-family sampler ('nuts', 'hmc', 'mala', 'chees', ...) or drop it."
        )
    return dataclasses.replace(sampler, target_accept=target_accept)  # type: ignore[type-var]  # a dataclass, checked above


def check_var_names(var_names: Sequence[str] | str | None, compiled: CompiledModel) -> tuple[str, ...] | None:
    """The posterior variables to keep, checked against the model (with the nearest name on a typo)."""
    if var_names is None:
        return None
    names = (var_names,) if isinstance(var_names, str) else tuple(var_names)
    known = list(compiled.output_shapes)
    for name in names:
        if name not in known:
            raise ValueError(
                f"var_names: {name!r} is not a variable of the model{_nearest(name, known) or '.'} "
                f"Its variables are {known}."
            )
    if not names:
        raise ValueError(f"var_names=[] keeps nothing; name some of {known}, or leave it None for all.")
    return names
