"""Microcanonical Langevin Monte Carlo (MCLMC), unadjusted and Metropolis-adjusted, with Blackjax's
automatic tuning of the step size and the momentum decoherence length L.

References:
    Robnik, De Luca, Silverstein & Seljak (2023), Microcanonical Hamiltonian Monte Carlo. JMLR 24.
    Robnik & Seljak (2024), Fluctuation without dissipation: Microcanonical Langevin Monte Carlo.
    Robnik, Cohn-Gordon & Seljak (2025), Metropolis adjusted microcanonical Hamiltonian Monte Carlo.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.samplers._base import Kernel, RunSize, rename_info
from pytensor_blackjax.samplers._options import check_bool, check_positive, check_probability
from pytensor_blackjax.samplers._start import DEFAULT_RADIUS, check_start
from pytensor_blackjax.samplers._tuned import one_call_kernel, one_call_schedule

__all__ = ["MCLMC", "AdjustedMCLMC", "TunedMCLMC"]

MIN_TUNE = 50  # each of the tuner's phases needs a few dozen steps for its averages
# The most integration steps of one adjusted MCLMC proposal, as NUTS's default maximum tree depth of 10.
# Blackjax's tuner keeps L / step_size near 2 where proposals are accepted, but a chain where every
# proposal is rejected (arma-arma11 started at |theta| > 1, log-density -7.6e111) drives it to about
# 16,000 steps per proposal: 8.0 million integration steps in 500 tuner steps instead of 5,000, and a
# validation run of over 30 minutes. The number of steps is drawn independently of the state, so
# capping it keeps the kernel exact.
MAX_INTEGRATION_STEPS = 1023


class MCLMCParams(NamedTuple):
    L: jax.Array
    step_size: jax.Array
    inverse_mass_matrix: jax.Array


class TunedMCLMC:
    """What both MCLMC samplers share: Blackjax's one-call tuner of L and the step size over about
    ``tune`` steps (so their programs depend on ``tune``), a diagonal mass matrix, per-chain runs.

    A subclass names its Blackjax kernel `module` and `tuner`, and gives their options
    (`kernel_options`, `tuner_share`, `tuner_options`) and how a step is called (`kernel_args`, `stats`).
    """

    module: ClassVar[str]  # the Blackjax kernel module: ``init`` and ``build_kernel``
    tuner: ClassVar[str]  # the name of Blackjax's tuner, a function of ``blackjax``
    tuner_share: float  # the share of the tuner's ``num_steps`` its phases take (``tune`` steps)

    ensemble: ClassVar[bool] = False
    approximate: ClassVar[bool] = False
    size_fields: ClassVar[tuple[str, ...]] = ("tune",)
    diagonal_preconditioning: bool

    def check_options(self) -> None:
        owner = type(self).__name__
        check_bool(owner, "diagonal_preconditioning", self.diagonal_preconditioning)
        check_start(owner, self.init_radius)  # type: ignore[attr-defined]

    def schedule(self, tune: int) -> np.ndarray:
        return one_call_schedule(tune)

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        owner = type(self).__name__
        if tune < MIN_TUNE:
            raise ValueError(
                f"{owner} tunes its step size and L during warmup: tune={tune} is too short; "
                f"give tune >= {MIN_TUNE} (the default 1000 is a good start)."
            )
        if num_dims < 2:
            raise ValueError(
                f"{owner} needs at least 2 unconstrained dimensions; the model has {num_dims}. "
                "Use sampler='nuts' for one-dimensional posteriors."
            )

    def kernel_options(self) -> dict[str, Any]:
        """Options of the kernel module's ``build_kernel`` besides the integrator."""
        raise NotImplementedError

    def tuner_options(self) -> dict[str, Any]:
        """The options of Blackjax's tuner (``tuner``, a ``blackjax`` function) besides the common ones."""
        raise NotImplementedError

    def kernel_args(self, params: MCLMCParams) -> tuple[tuple, dict[str, Any]]:
        """The kernel's arguments after ``(key, state, logdensity_fn)``: positional and keyword."""
        raise NotImplementedError

    def stats(self, state, info, params: MCLMCParams) -> dict[str, jax.Array]:
        return rename_info(info, lp=state.logdensity, step_size=params.step_size)

    def build(self, logdensity_fn, num_dims: int, size: RunSize) -> Kernel:
        import blackjax
        from blackjax.mcmc.integrators import isokinetic_mclachlan

        module = importlib.import_module(self.module)
        kernel = module.build_kernel(integrator=isokinetic_mclachlan, **self.kernel_options())
        num_steps = max(1, round(size.tune / self.tuner_share))

        def init(key, position):
            return module.init(position, logdensity_fn, key)

        def tune(key, state):
            state, params, _ = getattr(blackjax, self.tuner)(
                mclmc_kernel=kernel,
                logdensity_fn=logdensity_fn,
                num_steps=num_steps,
                state=state,
                rng_key=key,
                diagonal_preconditioning=self.diagonal_preconditioning,
                **self.tuner_options(),
            )
            imm = jnp.broadcast_to(jnp.asarray(params.inverse_mass_matrix), (num_dims,))
            return state, MCLMCParams(jnp.asarray(params.L), jnp.asarray(params.step_size), imm)

        def step(key, state, params):
            args, kwargs = self.kernel_args(params)
            state, info = kernel(key, state, logdensity_fn, *args, **kwargs)
            return state, self.stats(state, info, params)

        return one_call_kernel(init=init, tune=tune, step=step, position=lambda s: s.position)


@dataclass(frozen=True)
class MCLMC(TunedMCLMC):
    """Unadjusted MCLMC: one gradient per draw, no Metropolis step.

    Often an order of magnitude fewer gradient evaluations per effective sample than NUTS on
    smooth, high-dimensional posteriors. It has no accept/reject step, so draws carry a small bias
    controlled by the step size (tuned to ``desired_energy_var`` per dimension); use
    `AdjustedMCLMC` when that bias matters.

    The warmup runs Blackjax's ``mclmc_find_L_and_step_size`` with its phase proportions, scaled so
    the tuner takes about ``tune`` steps in all.

    Args:
        desired_energy_var: target variance of the energy error per dimension; smaller is more
            accurate and slower.
        diagonal_preconditioning: tune a diagonal mass matrix.
        init_radius: the chains start uniformly in (-init_radius, init_radius) in unconstrained space.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.MCLMC(desired_energy_var=1e-4)
        >>> sampler.size_fields  # its programs are built for the number of warmup steps
        ('tune',)
    """

    desired_energy_var: float = 5e-4
    diagonal_preconditioning: bool = True
    init_radius: float = DEFAULT_RADIUS
    name: ClassVar[str] = "mclmc"
    module = "blackjax.mcmc.mclmc"
    tuner = "mclmc_find_L_and_step_size"

    def __post_init__(self):
        check_positive("MCLMC", "desired_energy_var", self.desired_energy_var)
        self.check_options()

    def kernel_options(self):
        return {"desired_energy_var": self.desired_energy_var}

    @property
    def tuner_share(self) -> float:  # type: ignore[override]  # a property here, a constant elsewhere
        # Blackjax's default phases take 0.1, 0.1 (+1/3 of it with preconditioning) and 0.1 of num_steps
        return 0.1 + 0.1 * (4 / 3 if self.diagonal_preconditioning else 1) + 0.1

    def tuner_options(self):
        return {"desired_energy_var": self.desired_energy_var}

    def kernel_args(self, params):
        imm = params.inverse_mass_matrix
        return (), {"inverse_mass_matrix": imm, "L": params.L, "step_size": params.step_size}

    def stats(self, state, info, params):
        # one integration step per draw (two gradient evaluations with the McLachlan integrator)
        return rename_info(
            info,
            lp=state.logdensity,
            step_size=params.step_size,
            diverging=jnp.logical_not(info.nonans),
            n_steps=jnp.ones((), jnp.int32),
        )


@dataclass(frozen=True)
class AdjustedMCLMC(TunedMCLMC):
    """Metropolis-adjusted MCLMC (MAMS): MCLMC trajectories with an accept/reject step, so no bias.

    Trajectory lengths are drawn at random around ``L / step_size`` integration steps. The warmup
    runs Blackjax's ``adjusted_mclmc_find_L_and_step_size`` (dual averaging of the step size to
    ``target_accept``, then L from the posterior scales), scaled to about ``tune`` steps.

    Args:
        target_accept: the acceptance rate the step size is tuned to.
        diagonal_preconditioning: tune a diagonal mass matrix.
        init_radius: the chains start uniformly in (-init_radius, init_radius) in unconstrained space.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.AdjustedMCLMC(target_accept=0.9)
        >>> sampler.size_fields  # its programs are built for the number of warmup steps
        ('tune',)
    """

    name: ClassVar[str] = "adjusted_mclmc"
    module = "blackjax.mcmc.adjusted_mclmc_dynamic"
    tuner = "adjusted_mclmc_find_L_and_step_size"
    tuner_share = 0.2  # the tuner's two dual-averaging phases take 0.1 of num_steps each by default

    target_accept: float = 0.9
    diagonal_preconditioning: bool = True
    init_radius: float = DEFAULT_RADIUS

    def __post_init__(self):
        check_probability("AdjustedMCLMC", "target_accept", self.target_accept)
        self.check_options()

    def kernel_options(self):
        from blackjax.mcmc import adjusted_mclmc_dynamic

        draw = adjusted_mclmc_dynamic.make_random_trajectory_length_fn(True)

        def integration_steps_fn(key, avg_num_integration_steps):
            return jnp.minimum(draw(key, avg_num_integration_steps), MAX_INTEGRATION_STEPS)

        return {"integration_steps_fn": integration_steps_fn}

    def tuner_options(self):
        return {"target": self.target_accept}

    def kernel_args(self, params):
        steps = (params.L / params.step_size,)
        imm = params.inverse_mass_matrix
        return (params.step_size,), {"inverse_mass_matrix": imm, "integration_steps_params": steps}
