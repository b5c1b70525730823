"""Per-gradient costs: our compiled log-density+gradient against a hand-written JAX version (rat
tumors), and, per benchmark model, the time per gradient inside NUTS (default settings, after the
default warmup) against the bare gradient. Prints one JSON line."""

from __future__ import annotations

import json
import os
import time
from functools import partial

import jax
import jax.numpy as jnp
import models
import numpy as np
from jax.scipy.special import gammaln

jax.config.update("jax_enable_x64", True)


def hand_written(flat):
    la, lb, lt = flat[0], flat[1], flat[2:]
    a, b = jnp.exp(la), jnp.exp(lb)
    lth, l1th = jax.nn.log_sigmoid(lt), jax.nn.log_sigmoid(-lt)
    y, n = jnp.asarray(models.RATS_Y, float), jnp.asarray(models.RATS_N, float)
    return (
        -2.5 * jnp.log(a + b)
        + la
        + lb
        + jnp.sum(lth + l1th)
        + jnp.sum(gammaln(a + b) - gammaln(a) - gammaln(b) + (a - 1) * lth + (b - 1) * l1th)
        + jnp.sum(y * lth + (n - y) * l1th)
    )


def per_gradient_loop(fn, x, reps=20000):
    """Seconds per log-density and gradient (what every leapfrog step needs) inside one compiled loop
    (no dispatch cost). Both outputs are used: a loop on the gradient alone lets XLA drop the
    log-density's own terms (on the logistic regression half the cost: its log-sigmoids)."""
    vg = jax.value_and_grad(fn)

    def one(i, x):
        value, grad = vg(x)
        return x + 1e-12 * grad + 1e-30 * value

    @jax.jit
    def loop(x):
        return jax.lax.fori_loop(0, reps, one, x)

    jax.block_until_ready(loop(x))
    t = time.perf_counter()
    jax.block_until_ready(loop(x))
    return (time.perf_counter() - t) / reps


def adapted(kernel, rows, x):
    """The chain state and parameters after the default warmup (typical set, tuned step and metric):
    timing NUTS at the untuned start would measure one-leapfrog trajectories, i.e. per-draw cost."""

    @jax.jit
    def warm(key):
        def body(ws, xs):
            k, row = xs
            return kernel.warmup_step(k, ws, row)[0], None

        ws = kernel.warmup_init(key, x)
        ws, _ = jax.lax.scan(body, ws, (jax.random.split(key, len(rows)), jnp.asarray(rows)))
        return kernel.warmup_finish(ws)

    return warm(jax.random.key(0))


def nuts_overhead(name):
    """Seconds per gradient inside NUTS and of the bare gradient, and gradients per draw."""
    import pytensor_blackjax as pbj

    compiled = pbj.compile(models.ours(name))
    logdensity = partial(compiled.flat_logdensity, data=compiled.data_tuple())
    x = compiled.ravel(compiled.initial_position(jax.random.key(3)))
    config = pbj.samplers.NUTS(adaptation=os.environ.get("PBJ_MICRO_ADAPTATION", "auto"))
    kernel = config.build(logdensity, compiled.num_dims, pbj.samplers.RunSize(draws=0, tune=1000, chains=1))
    chain, params = adapted(kernel, config.schedule(1000), x)

    @jax.jit
    def draws(key, chain):
        def body(c, k):
            c, stats = kernel.step(k, c, params)
            return c, stats["n_steps"]

        return jax.lax.scan(body, chain, jax.random.split(key, 1000))

    jax.block_until_ready(draws(jax.random.key(1), chain))
    t = time.perf_counter()
    _, steps = jax.block_until_ready(draws(jax.random.key(2), chain))
    per_grad = (time.perf_counter() - t) / float(np.sum(steps))
    bare = per_gradient_loop(logdensity, x, reps=max(200, int(2000 / max(1, compiled.num_dims // 50))))
    return per_grad, bare, float(np.mean(steps))


def main():
    import blackjax

    import pytensor_blackjax as pbj

    compiled = pbj.compile(models.ours("rats"))
    ours = partial(compiled.flat_logdensity, data=compiled.data_tuple())
    x = jnp.concatenate([jnp.array([0.9, 2.7]), jnp.linspace(-2.0, -1.0, 71)])
    ratios, ours_t, hand_t = [], [], []
    for _ in range(5):
        o, h = per_gradient_loop(ours, x), per_gradient_loop(hand_written, x)
        ours_t.append(o)
        hand_t.append(h)
        ratios.append(o / h)
    out = {
        "logp_grad_ours_us": float(np.median(ours_t)) * 1e6,
        "logp_grad_hand_us": float(np.median(hand_t)) * 1e6,
        "logp_grad_ratio": float(np.median(ratios)),
        "blackjax": blackjax.__version__,
        "nuts": {},
    }
    for name in os.environ.get("PBJ_MICRO_MODELS", ",".join(models.MODELS)).split(","):
        if name == "diamonds" and not os.path.exists(models.DIAMONDS):
            continue
        per_grad, bare, steps = nuts_overhead(name)
        out["nuts"][name] = {
            "per_grad_us": per_grad * 1e6,
            "bare_grad_us": bare * 1e6,
            "ratio": per_grad / bare,
            "grads_per_draw": steps,
        }
    rats = out["nuts"].get("rats")
    if rats:  # the headline figures, as before
        out.update(
            nuts_per_grad_us=rats["per_grad_us"],
            nuts_overhead_ratio=rats["ratio"],
            nuts_grads_per_draw=rats["grads_per_draw"],
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
