"""Microcanonical Langevin Monte Carlo (MCLMC), unadjusted and Metropolis-adjusted, with Blackjax's
automatic tuning of the step size and the momentum decoherence length L.

References:
    Robnik, De Luca, Silverstein & Seljak (2023), Microcanonical Hamiltonian Monte Carlo. JMLR 24.
    Robnik & Seljak (2024), Fluctuation without dissipation: Microcanonical Langevin Monte Carlo.
    Robnik, Cohn-Gordon & Seljak (2025), Metropolis adjusted microcanonical Hamiltonian Monte Carlo.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pytensor_blackjax.samplers._base import Kernel, rename_info
from pytensor_blackjax.samplers._options import check_int, check_positive, check_probability
from pytensor_blackjax.samplers._tuned import one_call_kernel, one_call_schedule

__all__ = ["MCLMC", "AdjustedMCLMC"]

MIN_TUNE = 50  # each of the tuner's phases needs a few dozen steps for its averages


class MCLMCParams(NamedTuple):
    L: jax.Array
    step_size: jax.Array
    inverse_mass_matrix: jax.Array


def _check_mclmc(owner: str, tune: int, num_dims: int) -> None:
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


def _flag(owner: str, name: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}({name}={value!r}): give True or False.")


@dataclass(frozen=True)
class MCLMC:
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

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.MCLMC(desired_energy_var=1e-4)
    """

    desired_energy_var: float = 5e-4
    diagonal_preconditioning: bool = True
    tune_steps: int = field(default=0, repr=False)  # set by the driver from ``tune``
    name = "mclmc"
    ensemble = False
    approximate = False

    def __post_init__(self):
        check_positive("MCLMC", "desired_energy_var", self.desired_energy_var)
        _flag("MCLMC", "diagonal_preconditioning", self.diagonal_preconditioning)
        check_int("MCLMC", "tune_steps", self.tune_steps, 0)

    def sized(self, *, draws: int, tune: int, chains: int) -> MCLMC:
        return replace(self, tune_steps=tune)

    def schedule(self, tune: int) -> np.ndarray:
        return one_call_schedule(tune)

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        _check_mclmc("MCLMC", tune, num_dims)

    def build(self, logdensity_fn, num_dims: int) -> Kernel:
        import blackjax
        from blackjax.mcmc import mclmc as mclmc_kernel
        from blackjax.mcmc.integrators import isokinetic_mclachlan

        kernel = mclmc_kernel.build_kernel(
            integrator=isokinetic_mclachlan, desired_energy_var=self.desired_energy_var
        )
        # Blackjax's default phases take 0.1, 0.1 (+1/3 of it with preconditioning) and 0.1 of num_steps
        share = 0.1 + 0.1 * (4 / 3 if self.diagonal_preconditioning else 1) + 0.1
        num_steps = max(1, round(self.tune_steps / share))

        def init(key, position):
            return mclmc_kernel.init(position, logdensity_fn, key)

        def tune(key, state):
            state, params, _ = blackjax.mclmc_find_L_and_step_size(
                mclmc_kernel=kernel,
                num_steps=num_steps,
                state=state,
                rng_key=key,
                logdensity_fn=logdensity_fn,
                desired_energy_var=self.desired_energy_var,
                diagonal_preconditioning=self.diagonal_preconditioning,
            )
            imm = jnp.broadcast_to(jnp.asarray(params.inverse_mass_matrix), (num_dims,))
            return state, MCLMCParams(jnp.asarray(params.L), jnp.asarray(params.step_size), imm)

        def step(key, state, params):
            state, info = kernel(
                key,
                state,
                logdensity_fn,
                inverse_mass_matrix=params.inverse_mass_matrix,
                L=params.L,
                step_size=params.step_size,
            )
            # one integration step per draw (two gradient evaluations with the McLachlan integrator)
            return state, rename_info(
                info,
                lp=state.logdensity,
                step_size=params.step_size,
                diverging=jnp.logical_not(info.nonans),
                n_steps=jnp.ones((), jnp.int32),
            )

        return one_call_kernel(init=init, tune=tune, step=step, position=lambda s: s.position)


@dataclass(frozen=True)
class AdjustedMCLMC:
    """Metropolis-adjusted MCLMC (MAMS): MCLMC trajectories with an accept/reject step, so no bias.

    Trajectory lengths are drawn at random around ``L / step_size`` integration steps. The warmup
    runs Blackjax's ``adjusted_mclmc_find_L_and_step_size`` (dual averaging of the step size to
    ``target_accept``, then L from the posterior scales), scaled to about ``tune`` steps.

    Args:
        target_accept: the acceptance rate the step size is tuned to.
        diagonal_preconditioning: tune a diagonal mass matrix.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> sampler = pbj.samplers.AdjustedMCLMC(target_accept=0.9)
    """

    target_accept: float = 0.9
    diagonal_preconditioning: bool = True
    tune_steps: int = field(default=0, repr=False)  # set by the driver from ``tune``
    name = "adjusted_mclmc"
    ensemble = False
    approximate = False

    def __post_init__(self):
        check_probability("AdjustedMCLMC", "target_accept", self.target_accept)
        _flag("AdjustedMCLMC", "diagonal_preconditioning", self.diagonal_preconditioning)
        check_int("AdjustedMCLMC", "tune_steps", self.tune_steps, 0)

    def sized(self, *, draws: int, tune: int, chains: int) -> AdjustedMCLMC:
        return replace(self, tune_steps=tune)

    def schedule(self, tune: int) -> np.ndarray:
        return one_call_schedule(tune)

    def check(self, *, chains: int, tune: int, num_dims: int) -> None:
        _check_mclmc("AdjustedMCLMC", tune, num_dims)

    def build(self, logdensity_fn, num_dims: int) -> Kernel:
        import blackjax
        from blackjax.mcmc import adjusted_mclmc_dynamic
        from blackjax.mcmc.integrators import isokinetic_mclachlan

        kernel = adjusted_mclmc_dynamic.build_kernel(
            integration_steps_fn=adjusted_mclmc_dynamic.make_random_trajectory_length_fn(True),
            integrator=isokinetic_mclachlan,
        )
        # the tuner's two dual-averaging phases take 0.1 of num_steps each by default
        num_steps = max(1, round(self.tune_steps / 0.2))

        def init(key, position):
            return adjusted_mclmc_dynamic.init(position, logdensity_fn, key)

        def tune(key, state):
            state, params, _ = blackjax.adjusted_mclmc_find_L_and_step_size(
                mclmc_kernel=kernel,
                logdensity_fn=logdensity_fn,
                num_steps=num_steps,
                state=state,
                rng_key=key,
                target=self.target_accept,
                diagonal_preconditioning=self.diagonal_preconditioning,
            )
            imm = jnp.broadcast_to(jnp.asarray(params.inverse_mass_matrix), (num_dims,))
            return state, MCLMCParams(jnp.asarray(params.L), jnp.asarray(params.step_size), imm)

        def step(key, state, params):
            state, info = kernel(
                key,
                state,
                logdensity_fn,
                params.step_size,
                inverse_mass_matrix=params.inverse_mass_matrix,
                integration_steps_params=(params.L / params.step_size,),
            )
            return state, rename_info(info, lp=state.logdensity, step_size=params.step_size)

        return one_call_kernel(init=init, tune=tune, step=step, position=lambda s: s.position)
