"""Bijections from unconstrained real space to a parameter's support, each with its exact log-Jacobian.

A transform maps an unconstrained value ``x`` (what the sampler moves) to the constrained parameter
``y = forward(x)``. The log-density of ``x`` is the log-density of ``y`` plus ``log_jacobian(x)``,
the log of the absolute determinant of ``dy/dx`` summed over all elements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pytensor.tensor as pt
from pytensor.tensor.variable import TensorVariable

__all__ = [
    "CholeskyCorr",
    "Interval",
    "LowerBound",
    "Ordered",
    "Positive",
    "Real",
    "Simplex",
    "Transform",
    "Unit",
    "UpperBound",
    "resolve",
]


@runtime_checkable
class Transform(Protocol):
    """What every transform provides; ``suffix`` names the unconstrained value (``alpha_log__``)."""

    @property
    def suffix(self) -> str: ...

    def forward(self, x: TensorVariable) -> TensorVariable: ...

    def backward(self, y: TensorVariable) -> TensorVariable: ...

    def log_jacobian(self, x: TensorVariable) -> TensorVariable: ...

    def value_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]: ...


@dataclass(frozen=True)
class Real:
    """The identity: the parameter lives on the whole real line."""

    suffix: str = ""

    def forward(self, x):
        return x

    def backward(self, y):
        return y

    def log_jacobian(self, x):
        return pt.constant(0.0)

    def value_shape(self, shape):
        return shape


Bound = float | tuple[float, ...]


def _bound(value, *, what: str) -> Bound:
    """A finite number, or a 1-d sequence of them (one bound per entry of the last axis)."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{what}={value!r} must be a number or a 1-d sequence of numbers.") from None
    if array.ndim > 1 or not np.all(np.isfinite(array)):
        raise ValueError(
            f"{what}={value!r} must be a finite number or a 1-d sequence of finite numbers (one per entry "
            "of the parameter's last axis)."
        )
    return float(array) if array.ndim == 0 else tuple(float(v) for v in array)


def _fits(bound: Bound, shape: tuple[int, ...], *, what: str) -> None:
    if isinstance(bound, tuple) and (len(shape) == 0 or shape[-1] != len(bound)):
        raise ValueError(
            f"{what} has {len(bound)} bounds but the parameter's shape is {shape}; give one bound per entry "
            "of the last axis, or a single number."
        )


@dataclass(frozen=True)
class Positive:
    """``y = exp(x)`` onto (0, inf); log-Jacobian ``sum(x)``."""

    suffix: str = "log"

    def forward(self, x):
        return pt.exp(x)

    def backward(self, y):
        return pt.log(y)

    def log_jacobian(self, x):
        return pt.sum(x)

    def value_shape(self, shape):
        return shape


@dataclass(frozen=True)
class LowerBound:
    """``y = lower + exp(x)`` onto (lower, inf)."""

    lower: Bound
    suffix: str = "lowerbound"

    def __post_init__(self):
        object.__setattr__(self, "lower", _bound(self.lower, what="LowerBound(lower)"))

    def forward(self, x):
        return np.asarray(self.lower) + pt.exp(x)

    def backward(self, y):
        return pt.log(y - np.asarray(self.lower))

    def log_jacobian(self, x):
        return pt.sum(x)

    def value_shape(self, shape):
        _fits(self.lower, shape, what=f"LowerBound(lower={self.lower})")
        return shape


@dataclass(frozen=True)
class UpperBound:
    """``y = upper - exp(x)`` onto (-inf, upper)."""

    upper: Bound
    suffix: str = "upperbound"

    def __post_init__(self):
        object.__setattr__(self, "upper", _bound(self.upper, what="UpperBound(upper)"))

    def forward(self, x):
        return np.asarray(self.upper) - pt.exp(x)

    def backward(self, y):
        return pt.log(np.asarray(self.upper) - y)

    def log_jacobian(self, x):
        return pt.sum(x)

    def value_shape(self, shape):
        _fits(self.upper, shape, what=f"UpperBound(upper={self.upper})")
        return shape


def _log_sigmoid(x):
    return -pt.softplus(-x)


@dataclass(frozen=True)
class Interval:
    """``y = lower + (upper - lower) * sigmoid(x)`` onto (lower, upper).

    Args:
        lower: the lower end, finite; a number or one per entry of the parameter's last axis.
        upper: the upper end, finite and greater than ``lower``; same form.

    Raises:
        ValueError: an end that is not finite, or ``lower >= upper``.

    Example:
        >>> from pytensor_blackjax import transforms
        >>> t = transforms.Interval(-1.0, 1.0)
        >>> per_entry = transforms.Interval([0.0, -1.0], [1.0, 5.0])
    """

    lower: Bound
    upper: Bound
    suffix: str = "interval"

    def __post_init__(self):
        what = f"Interval(lower={self.lower!r}, upper={self.upper!r})"
        try:
            lower, upper = _bound(self.lower, what="lower"), _bound(self.upper, what="upper")
            ok = bool(np.all(np.asarray(lower) < np.asarray(upper)))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(
                f"{what}: both ends must be finite with lower < upper; for a one-sided bound use "
                "LowerBound or UpperBound (or 'positive')."
            )
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    def forward(self, x):
        lower, upper = np.asarray(self.lower), np.asarray(self.upper)
        return lower + (upper - lower) * pt.sigmoid(x)

    def backward(self, y):
        return pt.log(y - np.asarray(self.lower)) - pt.log(np.asarray(self.upper) - y)

    def log_jacobian(self, x):
        width = np.asarray(self.upper) - np.asarray(self.lower)
        return pt.sum(np.log(width) + _log_sigmoid(x) + _log_sigmoid(-x))

    def value_shape(self, shape):
        _fits(self.lower, shape, what=f"Interval(lower={self.lower})")
        _fits(self.upper, shape, what=f"Interval(upper={self.upper})")
        return shape


@dataclass(frozen=True)
class Unit:
    """``y = sigmoid(x)`` onto (0, 1)."""

    suffix: str = "logodds"

    def forward(self, x):
        return pt.sigmoid(x)

    def backward(self, y):
        return pt.log(y) - pt.log1p(-y)

    def log_jacobian(self, x):
        return pt.sum(_log_sigmoid(x) + _log_sigmoid(-x))

    def value_shape(self, shape):
        return shape


@dataclass(frozen=True)
class Simplex:
    """Additive log-ratio: ``y = softmax([x, 0])`` maps K-1 free values onto the K-simplex.

    The log-Jacobian of the first K-1 coordinates is ``sum(log y)`` over all K components.
    """

    suffix: str = "simplex"

    def _padded(self, x):
        zeros = pt.zeros_like(x[..., :1])
        return pt.concatenate([x, zeros], axis=-1)

    def forward(self, x):
        return pt.special.softmax(self._padded(x), axis=-1)

    def backward(self, y):
        return pt.log(y[..., :-1]) - pt.log(y[..., -1:])

    def log_jacobian(self, x):
        return pt.sum(pt.special.log_softmax(self._padded(x), axis=-1))

    def value_shape(self, shape):
        if len(shape) == 0 or shape[-1] < 2:
            raise ValueError(
                f"transform='simplex' needs a shape whose last axis has at least 2 entries, got {shape}; "
                "give shape=(K,) with K >= 2."
            )
        return (*shape[:-1], shape[-1] - 1)


@dataclass(frozen=True)
class Ordered:
    """``y[0] = x[0]``, ``y[k] = y[k-1] + exp(x[k])``: increasing along the last axis."""

    suffix: str = "ordered"

    def forward(self, x):
        return pt.concatenate([x[..., :1], x[..., :1] + pt.cumsum(pt.exp(x[..., 1:]), axis=-1)], axis=-1)

    def backward(self, y):
        return pt.concatenate([y[..., :1], pt.log(pt.diff(y, axis=-1))], axis=-1)

    def log_jacobian(self, x):
        return pt.sum(x[..., 1:])

    def value_shape(self, shape):
        if len(shape) == 0:
            raise ValueError("transform='ordered' needs a vector: give shape=(K,) with K >= 1.")
        return shape


def _log1m_tanh_sq(x):
    """``log(1 - tanh(x)**2)``, stable for large ``|x|``."""
    return 2.0 * (np.log(2.0) - x - pt.softplus(-2.0 * x))


def _corr_size(free: int, *, where: str) -> int:
    n = int(round((1 + np.sqrt(1 + 8 * free)) / 2))
    if n * (n - 1) // 2 != free:
        raise ValueError(f"{where}: {free} free values is not n(n-1)/2 for any matrix size n.")
    return n


@dataclass(frozen=True)
class CholeskyCorr:
    """Cholesky factor ``L`` of an n x n correlation matrix from n(n-1)/2 free values.

    Row ``i`` of ``L`` is built from ``z = tanh(x)`` (canonical partial correlations, row-major over the
    strict lower triangle): ``L[i, j] = z[i, j] * sqrt(1 - sum_{k<j} L[i, k]**2)`` and the diagonal takes
    what remains, so every row has unit length and ``L @ L.T`` is a correlation matrix. The
    log-Jacobian is that of the map from ``x`` to the strict lower triangle of ``L`` (the convention of
    LKJ densities on Cholesky factors). Use ``shape=(n, n)``.

    Example:
        >>> import pytensor_blackjax as pbj
        >>> m = pbj.ModelBuilder()
        >>> chol = m.param("chol", shape=(3, 3), transform=pbj.transforms.CholeskyCorr())
    """

    suffix: str = "cholcorr"

    def _rows(self, x):
        """The entries of ``L`` row by row, and the log-Jacobian terms."""
        n = _corr_size(int(x.type.shape[-1]), where="CholeskyCorr")
        zero = pt.zeros_like(x[..., 0])
        rows, log_jac, k = [pt.stack([zero + 1.0] + [zero] * (n - 1), axis=-1)], [], 0
        for i in range(1, n):
            log_rest = zero  # log of the squared length the row still has to fill
            row = []
            for _ in range(i):
                z = pt.tanh(x[..., k])
                row.append(z * pt.exp(0.5 * log_rest))
                log_jac.append(0.5 * log_rest + _log1m_tanh_sq(x[..., k]))
                log_rest = log_rest + _log1m_tanh_sq(x[..., k])
                k += 1
            row.append(pt.exp(0.5 * log_rest))
            rows.append(pt.stack(row + [zero] * (n - 1 - i), axis=-1))
        return pt.stack(rows, axis=-2), log_jac

    def forward(self, x):
        return self._rows(x)[0]

    def backward(self, y):
        n = int(y.type.shape[-1])
        free = []
        for i in range(1, n):
            used = pt.zeros_like(y[..., i, 0])
            for j in range(i):
                free.append(pt.arctanh(y[..., i, j] / pt.sqrt(1.0 - used)))
                used = used + y[..., i, j] ** 2
        return pt.stack(free, axis=-1)

    def log_jacobian(self, x):
        terms = self._rows(x)[1]
        return pt.sum(pt.stack(terms, axis=-1)) if terms else pt.constant(0.0)

    def value_shape(self, shape):
        if len(shape) < 2 or shape[-1] != shape[-2] or shape[-1] < 2:
            raise ValueError(
                f"transform=CholeskyCorr() needs a square shape (n, n) with n >= 2, got {shape}; "
                "give shape=(n, n)."
            )
        n = shape[-1]
        return (*shape[:-2], n * (n - 1) // 2)


_NAMED: dict[str | None, Callable[[], Transform]] = {
    None: Real,
    "real": Real,
    "positive": Positive,
    "unit": Unit,
    "simplex": Simplex,
    "ordered": Ordered,
    "cholesky_corr": CholeskyCorr,
}


def resolve(transform: str | Transform | None, *, param: str) -> Transform:
    """Turn a transform name or object into a transform; unknown names raise a clear error."""
    if isinstance(transform, str) or transform is None:
        try:
            return _NAMED[transform]()
        except KeyError:
            known = ", ".join(repr(k) for k in _NAMED if k is not None)
            raise ValueError(
                f"param {param!r}: unknown transform={transform!r}. Use one of None, {known}, "
                "or an object such as pbj.transforms.Interval(lower, upper)."
            ) from None
    if isinstance(transform, Transform):
        return transform
    raise TypeError(
        f"param {param!r}: transform={transform!r} is neither a name nor a Transform object; "
        "use e.g. 'positive' or pbj.transforms.Interval(0, 1)."
    )
