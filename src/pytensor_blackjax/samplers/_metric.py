"""Mass matrices for the HMC family: a dense metric whose factors are computed once per adaptation
window (not once per draw), and the low-rank-plus-diagonal estimate from draws and gradients.

The estimates and factors take JAX or NumPy arrays and compute with the library of their input
(`array_module`): a window's end runs on the host in NumPy for chains on this host (no program to
compile or load, and no LAPACK kernels for XLA to bind), and traced in JAX for chains sharded over
devices.

References:
    Seyboldt, Carlson & Carpenter (2026), Preconditioning Hamiltonian Monte Carlo by minimizing
    Fisher divergence (the low-rank estimate; the algorithm nutpie uses).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from blackjax.mcmc.metrics import LowRankInverseMassMatrix, Metric

__all__ = [
    "DenseFactors",
    "DenseMass",
    "array_module",
    "diagonal_factors",
    "LowRankBuffer",
    "dense_factors",
    "dense_metric",
    "fisher_dense_estimate",
    "gradient_nonlinearity",
    "low_rank_estimate",
    "low_rank_matrix",
    "low_rank_parts",
    "low_rank_buffer_init",
    "low_rank_buffer_push",
]


class DenseFactors(NamedTuple):
    """``chol`` is the Cholesky factor L of the inverse mass matrix; ``mass_sqrt`` is L^-T, so that
    ``mass_sqrt @ mass_sqrt.T`` is the mass matrix."""

    chol: jax.Array | np.ndarray
    mass_sqrt: jax.Array | np.ndarray


class DenseMass(NamedTuple):
    """A dense inverse mass matrix with its factors, for kernels that apply it themselves (NUTS keeps
    each state's velocity ``M^-1 p``, `samplers._nuts_kernel`) instead of through Blackjax's `Metric`."""

    inverse_mass_matrix: jax.Array
    factors: DenseFactors


def array_module(x):
    """NumPy for NumPy arrays and scalars, else ``jax.numpy`` (JAX arrays and tracers)."""
    return np if isinstance(x, (np.ndarray, np.generic)) else jnp


def dense_factors(inverse_mass_matrix: jax.Array) -> DenseFactors:
    xp = array_module(inverse_mass_matrix)
    chol = xp.linalg.cholesky(inverse_mass_matrix)
    if xp is np:  # NumPy has no triangular solve (SciPy's costs an import of scipy.linalg)
        return DenseFactors(chol, np.linalg.inv(chol).T)
    from jax.scipy.linalg import solve_triangular

    eye = jnp.eye(inverse_mass_matrix.shape[0], dtype=inverse_mass_matrix.dtype)
    return DenseFactors(chol, solve_triangular(chol, eye, lower=True).T)


def diagonal_factors(variances: jax.Array) -> DenseFactors:
    """`dense_factors` of ``diag(variances)`` without a factorisation (the same numbers: Cholesky's
    factor of a diagonal matrix is the square root of its diagonal, the inverse its reciprocal), so
    the warmup's first program calls no LAPACK kernel."""
    root = jnp.sqrt(variances)
    return DenseFactors(jnp.diag(root), jnp.diag(1.0 / root))


def dense_metric(inverse_mass_matrix: jax.Array, factors: DenseFactors) -> Metric:
    """A Gaussian Euclidean metric over flat positions from precomputed factors.

    Blackjax builds its dense metric inside every transition, which factorises the matrix each draw;
    with the factors carried in the parameters a transition only does matrix-vector products.
    """
    from blackjax.mcmc.metrics import Metric

    imm = inverse_mass_matrix

    def sample_momentum(key, position):
        return factors.mass_sqrt @ jax.random.normal(key, position.shape, position.dtype)

    @jax.custom_jvp
    def energy(momentum):
        # 0.5 p' M^-1 p as a sum of squares, 0.5 |L' p|^2: never negative. Far out in the tails the
        # momentum overflows, and the quadratic form's terms of both signs can sum to -inf, which
        # makes the total energy -inf and an impossible proposal certain to be accepted.
        # p' L, not L' p: XLA fuses the transpose into a loop that reads L column-wise at every
        # leapfrog step (rat tumors 4.0 -> 3.3 us per gradient inside NUTS).
        return 0.5 * jnp.sum(jnp.square(momentum @ factors.chol))

    @energy.defjvp
    def _energy_jvp(primals, tangents):
        # the integrator asks for the gradient M^-1 p alone (the energy is dropped): one
        # matrix-vector product instead of the two of differentiating the sum of squares
        (momentum,), (tangent,) = primals, tangents
        return energy(momentum), jnp.dot(imm @ momentum, tangent)

    def kinetic_energy(momentum, position=None):
        del position
        return energy(momentum)

    def check_turning(momentum_left, momentum_right, momentum_sum, position_left=None, position_right=None):
        del position_left, position_right
        rho = momentum_sum - (momentum_right + momentum_left) / 2
        # (M^-1 p)' rho = p' (M^-1 rho) as M^-1 is symmetric: one matrix-vector product, not two.
        # The checks run several times per leapfrog step, so this is most of the metric's cost.
        velocity_rho = imm @ rho
        return (jnp.dot(momentum_left, velocity_rho) <= 0) | (jnp.dot(momentum_right, velocity_rho) <= 0)

    def scale(position, element, *, inv, trans):
        del position
        # M^(1/2) = L^-T and M^(-1/2) = L^T
        matrix = factors.chol.T if inv else factors.mass_sqrt
        return (matrix.T if trans else matrix) @ element

    return Metric(sample_momentum, kinetic_energy, check_turning, scale)


class LowRankBuffer(NamedTuple):
    """The last ``capacity`` draws of the current window and their log-density gradients (a ring)."""

    draws: jax.Array
    grads: jax.Array
    # draws pushed since the window started (may exceed capacity); shadows tuple.count
    count: jax.Array  # type: ignore[assignment]


def low_rank_buffer_init(capacity: int, num_dims: int, dtype, xp=jnp) -> LowRankBuffer:
    zeros = xp.zeros((capacity, num_dims), dtype)
    return LowRankBuffer(zeros, zeros, xp.asarray(0, np.int32))


def low_rank_buffer_push(buffer: LowRankBuffer, position: jax.Array, grad: jax.Array) -> LowRankBuffer:
    i = buffer.count % buffer.draws.shape[0]
    return LowRankBuffer(buffer.draws.at[i].set(position), buffer.grads.at[i].set(grad), buffer.count + 1)


def _sqrtm(matrix):
    xp = array_module(matrix)
    vals, vecs = xp.linalg.eigh(matrix)
    root = xp.sqrt(xp.maximum(vals, 1e-300))
    return (vecs * root) @ vecs.T, (vecs / root) @ vecs.T


def _geometric_mean(a, b):
    """The SPD geometric mean a # b = a^1/2 (a^-1/2 b a^-1/2)^1/2 a^1/2."""
    a_half, a_inv_half = _sqrtm(a)
    middle, _ = _sqrtm(a_inv_half @ b @ a_inv_half)
    return a_half @ middle @ a_half


def _scaled_window(buffer: LowRankBuffer):
    """The window's centred draws and gradients in the coordinates of the diagonal
    ``sigma = (Var[x] / Var[grad])^(1/4)`` (draws divided by it, gradients multiplied), and ``sigma``.
    Rows past ``count`` are zero."""
    xp = array_module(buffer.draws)
    capacity, dtype = buffer.draws.shape[0], buffer.draws.dtype
    n = xp.minimum(buffer.count, capacity)
    valid = (xp.arange(capacity) < n)[:, None]
    weight = (valid / xp.maximum(n, 1)).astype(dtype)
    mean_x, mean_g = xp.sum(weight * buffer.draws, 0), xp.sum(weight * buffer.grads, 0)
    dx = xp.where(valid, buffer.draws - mean_x, 0.0)
    dg = xp.where(valid, buffer.grads - mean_g, 0.0)
    var_x, var_g = xp.sum(weight * dx**2, 0), xp.sum(weight * dg**2, 0)
    sigma = xp.clip((var_x / xp.maximum(var_g, 1e-10)) ** 0.25, 1e-20, 1e20)
    sigma = xp.where(var_x > 0, sigma, 1.0)
    return dx / sigma, dg * sigma, sigma


def fisher_dense_estimate(buffer: LowRankBuffer, *, gamma: float = 1e-5) -> jax.Array:
    """Dense inverse mass matrix minimising the sample Fisher divergence: the geometric mean of the
    draw covariance and the inverse gradient covariance (exact for a Gaussian target from d + 1 draws),
    in the coordinates of `_scaled_window`'s diagonal.

    Both covariances get ``gamma`` times the identity: directions that no draw has explored (fewer
    draws than dimensions) keep the diagonal's scale. Scale-free, unlike Stan's shrinkage of the
    sample covariance towards 1e-3 times the identity.
    """
    xp = array_module(buffer.draws)
    x, a, sigma = _scaled_window(buffer)
    eye = xp.eye(x.shape[1], dtype=x.dtype)
    middle = _geometric_mean(x.T @ x + gamma * eye, xp.linalg.inv(a.T @ a + gamma * eye))
    middle = 0.5 * (middle + middle.T)
    return sigma[:, None] * middle * sigma[None, :]


def gradient_nonlinearity(buffer: LowRankBuffer, *, gamma: float = 1e-5) -> jax.Array:
    """How far the window's gradients are from a linear function of its draws, in the worst direction:
    ``1 - rho_min**2`` for the smallest canonical correlation ``rho_min`` between draws and gradients,
    scaled by ``(n - 1) / (n - d - 1)`` for the degrees of freedom a linear fit of ``n`` rows uses up,
    at most 1.

    A Gaussian's log-density gradient is linear in the position, so the statistic is 0 for one whatever
    the draws (to rounding), and the dynamics under an exact metric are a harmonic oscillator with one
    period in every direction. A skewed or heavy-tailed posterior's gradient bends: a 2-parameter normal
    model (mean and log sd, 6 observations) measures about 0.4. Affine invariant; 1 when the window
    holds no more rows than ``d + 1`` (nothing to measure).
    """
    xp = array_module(buffer.draws)
    x, a, _ = _scaled_window(buffer)
    capacity, num_dims = x.shape
    n = xp.minimum(buffer.count, capacity).astype(x.dtype)
    eye = xp.eye(num_dims, dtype=x.dtype)
    root_x = xp.linalg.cholesky(x.T @ x + gamma * eye)
    root_a = xp.linalg.cholesky(a.T @ a + gamma * eye)
    # the canonical correlations: singular values of L_x^-1 (X^T A) L_a^-T
    k = xp.linalg.solve(root_x, x.T @ a)
    k = xp.linalg.solve(root_a, k.T).T
    rho_min = xp.min(xp.linalg.svd(k, compute_uv=False))
    raw = xp.clip(1.0 - rho_min**2, 0.0, 1.0)
    dof = n - num_dims - 1.0
    corrected = xp.minimum(raw * (n - 1.0) / xp.maximum(dof, 1.0), 1.0)
    return xp.where(dof > 0, corrected, 1.0).astype(x.dtype)


def low_rank_estimate(buffer: LowRankBuffer, max_rank: int) -> LowRankInverseMassMatrix:
    """`low_rank_parts` as Blackjax's low-rank inverse mass matrix."""
    from blackjax.mcmc.metrics import LowRankInverseMassMatrix

    return LowRankInverseMassMatrix(*low_rank_parts(buffer, max_rank))


def low_rank_parts(
    buffer: LowRankBuffer, max_rank: int, *, gamma: float = 1e-5, cutoff: float = 2.0
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Low-rank-plus-diagonal inverse mass matrix minimising the sample Fisher divergence, as
    ``(sigma, U, lam)`` (the fields of Blackjax's `LowRankInverseMassMatrix`, whose import a window's
    end on the host does without).

    The diagonal is ``(Var[x] / Var[grad])^(1/4)``; in the coordinates it scales, the correction lives
    in the span of the leading singular vectors of the draws and of the gradients, where the
    covariance is the geometric mean of the draw covariance and the inverse gradient covariance.
    Eigenvalues within ``[1/cutoff, cutoff]`` are left at one. Rows past ``count`` are ignored.
    """
    xp = array_module(buffer.draws)
    num_dims = buffer.draws.shape[1]
    x, a, sigma = _scaled_window(buffer)
    # zero rows (unused buffer slots) change neither the right singular vectors nor the covariances
    rank = min(max_rank, num_dims)
    vx = xp.linalg.svd(x, full_matrices=False)[2][:rank].T
    va = xp.linalg.svd(a, full_matrices=False)[2][:rank].T
    basis, _ = xp.linalg.qr(xp.concatenate([vx, va], axis=1))
    px, pa = x @ basis, a @ basis
    eye = xp.eye(basis.shape[1], dtype=x.dtype)
    cov_x, cov_a = px.T @ px / gamma + eye, pa.T @ pa / gamma + eye
    vals, vecs = xp.linalg.eigh(_geometric_mean(cov_x, xp.linalg.inv(cov_a)))
    vals = xp.maximum(vals, 1e-10 * xp.max(vals))
    order = xp.argsort(-xp.abs(xp.log(vals)))[:rank]
    vals, vecs = vals[order], basis @ vecs[:, order]
    informative = (vals > cutoff) | (vals < 1.0 / cutoff)
    return sigma, vecs, xp.where(informative, vals, 1.0)


def low_rank_matrix(sigma: jax.Array, U: jax.Array, lam: jax.Array) -> jax.Array:  # noqa: N803 - Blackjax's name
    """The dense d x d matrix ``diag(sigma) (I + U (diag(lam) - I) U^T) diag(sigma)``."""
    xp = array_module(sigma)
    scaled = xp.eye(sigma.shape[0], dtype=sigma.dtype) + (U * (lam - 1.0)) @ U.T
    return sigma[:, None] * scaled * sigma[None, :]
