"""Where chains start: the one place that decides a chain's starting point.

A chain starts at a point drawn uniformly from ``(-init_radius, init_radius)`` in every unconstrained
coordinate (Stan's ``init``; 2 by default), redrawn until the log-density and its gradient are finite
(`first_finite`; the driver evaluates the attempts, see ``run/_start.py``). Samplers with
``init="pathfinder"`` then move it, inside their warmup, to one draw of a Pathfinder fit started there
(`pathfinder_point`, `ensemble_points`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.samplers._options import check_choice, check_positive

__all__ = [
    "DEFAULT_RADIUS",
    "INITS",
    "MAX_TRIES",
    "check_start",
    "ensemble_points",
    "first_finite",
    "no_finite_start",
    "pathfinder_point",
    "uniform_attempt",
    "uniform_point",
]

DEFAULT_RADIUS = 2.0  # Stan's default: uniform(-2, 2) in unconstrained space
INITS = ("random", "pathfinder")
MAX_TRIES = 100
PATHFINDER_DRAWS = 50  # Monte Carlo draws per Pathfinder ELBO estimate


def check_start(owner: str, init_radius: Any, init: str | None = None) -> None:
    """Validate a sampler's start options; ``init`` is None for samplers without that option."""
    check_positive(owner, "init_radius", init_radius)
    if init is not None:
        check_choice(owner, "init", init, INITS)


def uniform_point(key: jax.Array, num_dims: int, radius: float = DEFAULT_RADIUS) -> jax.Array:
    """A point drawn uniformly from ``(-radius, radius)`` in every unconstrained coordinate."""
    r = float(radius)
    return jax.random.uniform(key, (num_dims,), minval=-r, maxval=r, dtype=jnp.float64)


def uniform_attempt(key: jax.Array, num_dims: int, radius: float, logdensity_fn: Callable):
    """One attempt: ``(point, log-density, whether the log-density and gradient are finite)``."""
    x = uniform_point(key, num_dims, radius)
    lp, grad = jax.value_and_grad(logdensity_fn)(x)
    return x, lp, jnp.isfinite(lp) & jnp.all(jnp.isfinite(grad))


def first_finite(
    attempts: Callable[[int], tuple],
    radius: float = DEFAULT_RADIUS,
    explain: Callable[[np.ndarray], str] | None = None,
) -> np.ndarray:
    """One finite starting point per chain, shape ``(chains, dims)``.

    ``attempts(a)`` evaluates attempt ``a`` of every chain (`uniform_attempt`, vectorised). A chain's
    attempts are drawn from its own keys, so its start does not depend on the other chains; attempt
    ``a`` is asked for only while some chain still needs one (almost never), up to `MAX_TRIES`.
    ``explain(point)``, if given, describes the log-density at a failed point (its terms) for the error.

    Raises:
        ValueError: no finite point in ``MAX_TRIES`` draws for some chain; says what the log-density was.
    """
    xs, lp0, ok = (np.array(v) for v in attempts(0))
    for attempt in range(1, MAX_TRIES):
        if ok.all():
            break
        x, _, fine = (np.asarray(v) for v in attempts(attempt))
        redo = ~ok & fine
        xs[redo], ok = x[redo], ok | fine
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        raise no_finite_start(bad, radius, float(lp0[bad]), explain(xs[bad]) if explain is not None else "")
    return xs


def no_finite_start(chain: int, radius: float, logdensity: float, explained: str = "") -> ValueError:
    """The error for a chain that found no finite start in `MAX_TRIES` attempts; ``logdensity`` at
    one of them, ``explained`` what its terms were."""
    r = f"{float(radius):g}"
    return ValueError(
        f"the log-density or its gradient is not finite at any of {MAX_TRIES} random starting points "
        f"(uniform(-{r}, {r}) in unconstrained space) for chain {chain}; e.g. log-density = "
        f"{logdensity}. Check the model's support (a -inf everywhere means an impossible constraint; "
        "NaN usually means log of a negative number) and the data." + explained
    )


def pathfinder_point(key: jax.Array, position: jax.Array, logdensity_fn: Callable) -> jax.Array:
    """One draw from a Pathfinder approximation started at ``position``; ``position`` if it fails."""
    import blackjax

    fit_key, draw_key = jax.random.split(key)
    state, _ = blackjax.vi.pathfinder.approximate(
        fit_key, logdensity_fn, position, num_samples=PATHFINDER_DRAWS
    )
    draw, _ = blackjax.vi.pathfinder.sample(draw_key, state)
    ok = jnp.all(jnp.isfinite(draw)) & jnp.isfinite(logdensity_fn(draw))
    return jnp.where(ok, draw, position)


def ensemble_points(key: jax.Array, positions: jax.Array, logdensity_fn: Callable, init: str) -> jax.Array:
    """The chains' starting points: the driver's (``init="random"``), or one draw per chain from a
    Pathfinder fit started at each of them (``"pathfinder"``; a chain keeps its point if its fit fails).

    Ensemble tuners pool statistics over all chains, so a few chains that start far out, where every
    proposal is rejected, drag every chain's parameters; Pathfinder puts the chains near the bulk.
    """
    if init != "pathfinder":
        return positions
    keys = jax.random.split(key, positions.shape[0])
    return jax.vmap(lambda k, x: pathfinder_point(k, x, logdensity_fn))(keys, positions)
