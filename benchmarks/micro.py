"""Per-gradient costs on the rat-tumor model: our compiled log-density+gradient against a hand-written
JAX version, and the time per gradient inside NUTS against the bare gradient. Prints one JSON line."""

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
    return (-2.5 * jnp.log(a + b) + la + lb + jnp.sum(lth + l1th)
            + jnp.sum(gammaln(a + b) - gammaln(a) - gammaln(b) + (a - 1) * lth + (b - 1) * l1th)
            + jnp.sum(y * lth + (n - y) * l1th))


def per_gradient_loop(fn, x, reps=20000):
    """Seconds per value-and-gradient inside one compiled loop (no dispatch cost)."""
    vg = jax.value_and_grad(fn)

    @jax.jit
    def loop(x):
        return jax.lax.fori_loop(0, reps, lambda i, x: x + 1e-12 * vg(x)[1], x)

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
    config = pbj.samplers.NUTS(adaptation=os.environ.get("PBJ_MICRO_ADAPTATION", "auto"))
    kernel = config.build(ours, compiled.num_dims)
    chain, params = adapted(kernel, config.schedule(1000), x)

    @jax.jit
    def draws(key, chain):
        def body(c, k):
            c, stats = kernel.step(k, c, params)
            return c, stats["n_steps"]
        return jax.lax.scan(body, chain, jax.random.split(key, 2000))

    jax.block_until_ready(draws(jax.random.key(1), chain))
    t = time.perf_counter()
    _, steps = jax.block_until_ready(draws(jax.random.key(2), chain))
    per_grad_nuts = (time.perf_counter() - t) / float(np.sum(steps))
    bare = float(np.median(ours_t))
    print(json.dumps({"logp_grad_ours_us": bare * 1e6, "logp_grad_hand_us": float(np.median(hand_t)) * 1e6,
                      "logp_grad_ratio": float(np.median(ratios)), "nuts_per_grad_us": per_grad_nuts * 1e6,
                      "nuts_overhead_ratio": per_grad_nuts / bare,
                      "nuts_grads_per_draw": float(np.mean(steps)), "blackjax": blackjax.__version__}))


if __name__ == "__main__":
    main()
