"""The log-density term by term at one point, to say which term is -inf or NaN (as PyMC's
``point_logps`` does): each PyMC variable's log-density, or each ``add_logp`` term and Jacobian."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.compile._compiled import CompiledModel, _split
from pytensor_blackjax.compile._jaxify import jaxify

__all__ = ["describe_terms", "logp_terms"]

MOST_SHOWN = 12


def logp_terms(compiled: CompiledModel, flat: np.ndarray, data: tuple) -> dict[str, float]:
    """Each term of the model's log-density at the unconstrained point ``flat``; empty if it has none."""
    model = compiled.model
    terms = getattr(model, "terms", None) or {}  # models pickled before terms existed have none
    if not terms:
        return {}
    inputs = [*model.values, *(d.variable for d in model.data.values())]
    values = jaxify(inputs, list(terms.values()))(*_split(compiled, jnp.asarray(flat)), *data)
    return {name: float(np.sum(np.asarray(v))) for name, v in zip(terms, values, strict=True)}


def describe_terms(compiled: CompiledModel, flat: np.ndarray, data: tuple) -> str:
    """`logp_terms` in words, the non-finite terms first: ``"y: -inf, mu: -0.92"``; empty if none."""
    try:
        terms = logp_terms(compiled, flat, data)
    except Exception as exc:  # an explanation must never hide the error it explains
        return f" (the per-term breakdown failed: {type(exc).__name__}: {exc})"
    if not terms:
        return ""
    bad = [k for k, v in terms.items() if not np.isfinite(v)]
    shown = bad + [k for k in terms if k not in bad]
    text = ", ".join(f"{k}: {terms[k]:.4g}" for k in shown[:MOST_SHOWN])
    more = f" and {len(shown) - MOST_SHOWN} more" if len(shown) > MOST_SHOWN else ""
    culprit = f"; not finite: {bad}" if bad else ""
    return f" Term by term at that point: {text}{more}{culprit}."
