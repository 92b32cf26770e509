"""Input preprocessing fitted on the training set and applied unchanged to any other set.

The notes' steps: zero-centre, normalise (standardise, or min-max scale to [0.01, 0.99]),
and for vector data decorrelate with PCA, optionally whitening ("press it into a circle").
Each ``fit_*`` function computes statistics from the training data once and returns a
small immutable value with two methods::

    s = fit_standardize(x_train)
    z_train, z_test = s.apply(x_train), s.apply(x_test)   # test uses the *train* statistics
    x_back = s.invert(z_test)

* :class:`Scaler` (``fit_center``, ``fit_standardize``, ``fit_minmax``): a per-feature
  affine map ``z = (x - loc) * scale + offset``.
* :class:`PCA` (``fit_pca``, ``fit_pca_whiten``, ``fit_zca_whiten``): a linear map on
  centred rows, ``z = (x - mean) @ w``.

Statistics are computed and stored in float64. ``apply``/``invert`` return the input's
float dtype (float32 stays float32; integer input gives float32). They accept NumPy arrays
(NumPy out) or JAX arrays (JAX out; usable inside ``jit``). Variances are population
variances (divide by n), as in ``np.var`` and scikit-learn's ``StandardScaler``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fnn.validation import is_int, number

__all__ = ["Scaler", "PCA", "fit_center", "fit_standardize", "fit_minmax", "fit_pca",
           "fit_pca_whiten", "fit_zca_whiten"]

DEFAULT_RANGE = (0.01, 0.99)  # the notes' input range: small, but never exactly 0 or 1


# ----------------------------------------------------------------------------- helpers

def _is_jax(x) -> bool:
    try:
        import jax
    except ImportError:  # pragma: no cover - jax is a dependency
        return False
    return isinstance(x, jax.Array)


def _as_data(x, who: str, *, min_ndim: int = 2, exact_ndim: int | None = None) -> np.ndarray:
    """Validate training data: a finite numeric array with a leading example axis."""
    try:
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"{who}: x must be an array of numbers, got {type(x).__name__} ({e})") from None
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)
            or a.dtype == np.bool_):
        raise ValueError(f"{who}: x must hold real numbers, got dtype {a.dtype}")
    if exact_ndim is not None and a.ndim != exact_ndim:
        raise ValueError(f"{who}: x must have shape (n_examples, n_features), got shape {a.shape}"
                         + ("; reshape images with x.reshape(len(x), -1)" if a.ndim > 2 else ""))
    if a.ndim < min_ndim:
        raise ValueError(f"{who}: x must have shape (n_examples, *features) with at least "
                         f"{min_ndim} axes, got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{who}: x has 0 examples (shape {a.shape})")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{who}: x contains NaN or infinite values")
    return a


def _axes(axis, ndim: int, who: str) -> tuple[int, ...]:
    axes = (axis,) if is_int(axis) else axis
    try:
        axes = tuple(int(a) for a in axes)
    except TypeError:
        raise ValueError(f"{who}: axis must be an int or a tuple of ints, got {axis!r}") from None
    if not axes or any(not -ndim <= a < ndim for a in axes):
        raise ValueError(f"{who}: axis {axis!r} is out of range for data with {ndim} axes")
    axes = tuple(sorted({a % ndim for a in axes}))
    return axes


def _out_dtype(x):
    dt = np.dtype(x.dtype)
    return dt if np.issubdtype(dt, np.floating) else np.dtype(np.float32)


def _affine(x, a, b, c, who: str, expect_shape):
    """``(x - a) * b + c`` with a, b, c keepdims-shaped float64 statistics, checked shapes."""
    shape = tuple(np.shape(x))
    if len(shape) != len(expect_shape) or any(e != 1 and e != s for e, s in zip(expect_shape, shape)):
        want = "(" + ", ".join("*" if e == 1 else str(e) for e in expect_shape) + ")"
        raise ValueError(f"{who}: x must have shape {want} (the shape the scaler was fit on, "
                         f"'*' = any size), got shape {shape}")
    if _is_jax(x):
        import jax.numpy as jnp
        dt = _out_dtype(x)
        x = x.astype(dt)
        return (x - jnp.asarray(a, dt)) * jnp.asarray(b, dt) + jnp.asarray(c, dt)
    x = np.asarray(x)
    dt = _out_dtype(x)
    return ((x.astype(np.float64) - a) * b + c).astype(dt)


def _linear(x, shift, w, add, who: str, side: str):
    """``(x - shift) @ w + add`` for 2-D x with ``w.shape[0]`` columns (shift, add 1-D)."""
    shape = tuple(np.shape(x))
    if len(shape) != 2 or shape[1] != w.shape[0]:
        raise ValueError(f"{who}: {side} must have shape (n, {w.shape[0]}), got shape {shape}")
    if _is_jax(x):
        import jax.numpy as jnp
        dt = _out_dtype(x)
        x = x.astype(dt)
        return ((x - jnp.asarray(shift, dt)[None, :]) @ jnp.asarray(w, dt)
                + jnp.asarray(add, dt)[None, :])
    x = np.asarray(x)
    return ((x.astype(np.float64) - shift) @ w + add).astype(_out_dtype(x))


# ----------------------------------------------------------------------------- scalers

class Scaler(NamedTuple):
    """A fitted per-feature affine map (from ``fit_center``, ``fit_standardize`` or
    ``fit_minmax``)::

        apply:   z = (x - loc) * scale + offset
        invert:  x = (z - offset) / scale + loc

    ``loc``, ``scale``, ``offset`` are float64 with the training data's shape, the fitted
    (reduced) axes set to 1, so they broadcast against data of the same rank. ``scale`` is
    never 0 (degenerate features are handled at fit time), so ``invert(apply(x)) == x`` up
    to rounding.
    """
    loc: np.ndarray
    scale: np.ndarray
    offset: np.ndarray

    def apply(self, x):
        """``z = (x - loc) * scale + offset``; x (n, *features) -> z of the same shape."""
        return _affine(x, self.loc, self.scale, self.offset, "Scaler.apply", self.loc.shape)

    def invert(self, z):
        """``x = (z - offset) / scale + loc``; z (n, *features) -> x of the same shape."""
        return _affine(z, self.offset, 1.0 / self.scale, self.loc, "Scaler.invert", self.loc.shape)

    __call__ = apply


def fit_center(x, *, axis=0) -> Scaler:
    """Zero-centring: ``z = x - mean(x_train)``, the mean taken over ``axis``.

    x: (n, *features). ``axis=0`` centres every feature (pixel) on its own;
    ``axis=(0, 1, 2)`` on NHWC images centres every channel.
    """
    a = _as_data(x, "fit_center")
    mean = a.mean(axis=_axes(axis, a.ndim, "fit_center"), keepdims=True)
    return Scaler(mean, np.ones_like(mean), np.zeros_like(mean))


def fit_standardize(x, *, axis=0, eps: float = 1e-8) -> Scaler:
    """Standardisation: ``z = (x - mean) / max(std, eps)``, statistics over ``axis``.

    ``std`` is the population standard deviation (divide by n). A feature whose std is below
    ``eps`` (e.g. constant on the training set) is divided by ``eps`` instead of by ~0: a
    constant feature maps to 0 and no NaN or inf appears.
    x: (n, *features) -> train columns with mean 0 and std 1.
    """
    eps = number("fit_standardize", "eps", eps, low=0, low_open=True)
    a = _as_data(x, "fit_standardize")
    axes = _axes(axis, a.ndim, "fit_standardize")
    mean = a.mean(axis=axes, keepdims=True)
    std = a.std(axis=axes, keepdims=True)
    return Scaler(mean, 1.0 / np.maximum(std, eps), np.zeros_like(mean))


def fit_minmax(x, feature_range: tuple[float, float] = DEFAULT_RANGE, *, axis=0,
               eps: float = 1e-8) -> Scaler:
    """Min-max scaling of the training data onto ``feature_range = (lo, hi)``:

        z = (x - min) * (hi - lo) / max(max - min, eps) + lo

    The default (0.01, 0.99) is the notes' input range (small, never exactly 0 or 1). On
    the training set every feature spans exactly [lo, hi]; other sets may fall outside. A
    feature with max - min < eps is divided by ``eps`` instead (a constant one maps to ``lo``,
    never to NaN).
    """
    eps = number("fit_minmax", "eps", eps, low=0, low_open=True)
    try:
        lo, hi = (float(v) for v in feature_range)
    except (TypeError, ValueError):
        raise ValueError(f"fit_minmax: feature_range must be a pair (lo, hi) of numbers, got "
                         f"{feature_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"fit_minmax: feature_range must be finite with lo < hi, got {feature_range!r}")
    a = _as_data(x, "fit_minmax")
    axes = _axes(axis, a.ndim, "fit_minmax")
    low = a.min(axis=axes, keepdims=True)
    span = a.max(axis=axes, keepdims=True) - low
    return Scaler(low, (hi - lo) / np.maximum(span, eps), np.full_like(low, lo))


# ----------------------------------------------------------------------------- PCA

class PCA(NamedTuple):
    """A fitted linear map on centred rows (from ``fit_pca``, ``fit_pca_whiten`` or
    ``fit_zca_whiten``)::

        apply:   z = (x - mean) @ w          x (n, d) -> z (n, m)
        invert:  x = z @ w_inv + mean         z (n, m) -> x (n, d)

    With C = (x_train - mean)^T (x_train - mean) / n = U diag(l) U^T (eigenvalues
    descending), ``components`` = U_k^T (k, d) has orthonormal rows (the principal axes) and
    ``explained_variance`` = l_1 >= ... >= l_k; ``explained_variance_ratio`` = l / sum(l_all).

    * PCA:         w = U_k                          (m = k)
    * PCA whiten:  w = U_k diag(1 / sqrt(l + eps))  (m = k)
    * ZCA whiten:  w = U_k diag(1 / sqrt(l + eps)) U_k^T   (m = d)

    ``invert`` is exact when all components are kept (k = d, any eps); with k < d it returns
    the reconstruction from the kept components (the projection onto their span).
    """
    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    w: np.ndarray
    w_inv: np.ndarray

    def apply(self, x):
        """``z = (x - mean) @ w``: x (n, d) -> z (n, m)."""
        return _linear(x, self.mean, self.w, np.zeros(self.w.shape[1]), "PCA.apply", "x")

    def invert(self, z):
        """``x = z @ w_inv + mean``: z (n, m) -> x (n, d)."""
        return _linear(z, np.zeros(self.w_inv.shape[0]), self.w_inv, self.mean, "PCA.invert", "z")

    __call__ = apply


def _eig(x, who: str):
    """Mean, eigenvalues (descending, >= 0) and eigenvectors (columns, sign-fixed) of the
    population covariance of x (n, d)."""
    a = _as_data(x, who, exact_ndim=2)
    mean = a.mean(axis=0)
    xc = a - mean
    cov = xc.T @ xc / len(a)
    lam, vec = np.linalg.eigh(cov)
    lam, vec = np.clip(lam[::-1], 0.0, None), vec[:, ::-1]
    # Deterministic signs: the largest-magnitude entry of every axis is positive.
    big = np.argmax(np.abs(vec), axis=0)
    vec = vec * np.sign(vec[big, np.arange(vec.shape[1])])
    return mean, lam, vec


def _n_kept(n_components, lam: np.ndarray, who: str) -> int:
    d = len(lam)
    if n_components is None:
        return d
    if is_int(n_components):
        if not 1 <= n_components <= d:
            raise ValueError(f"{who}: n_components must be in 1..{d} (the number of features) "
                             f"or a variance fraction in (0, 1], got {n_components!r}")
        return int(n_components)
    if isinstance(n_components, (float, np.floating)) and 0.0 < n_components <= 1.0:
        total = lam.sum()
        if total == 0:
            return d
        cum = np.cumsum(lam) / total
        return int(min(d, np.searchsorted(cum, n_components - 1e-12) + 1))
    raise ValueError(f"{who}: n_components must be None (all), an int in 1..{d}, or a float "
                     f"variance fraction in (0, 1], got {n_components!r}")


def _fit(x, n_components, eps, mode: str, who: str) -> PCA:
    mean, lam, vec = _eig(x, who)
    k = _n_kept(n_components, lam, who)
    total = lam.sum()
    ratio = lam / total if total > 0 else np.zeros_like(lam)
    u, l = vec[:, :k], lam[:k]
    if mode == "pca":
        w, w_inv = u, u.T
    else:
        s = np.sqrt(l + eps)
        w, w_inv = u / s, s[:, None] * u.T
        if mode == "zca":
            w, w_inv = w @ u.T, u @ w_inv
    return PCA(mean, u.T.copy(), l.copy(), ratio[:k].copy(), w, w_inv)


def fit_pca(x, n_components: int | float | None = None) -> PCA:
    """Principal component analysis: ``z = (x - mean) @ U_k``, the coordinates of the centred
    data along the k leading eigenvectors of its covariance (decorrelated, variance l_i).

    x: (n, d). ``n_components``: an int k in 1..d, a float f in (0, 1] (the smallest k whose
    explained-variance ratios sum to >= f), or None (all d). Returns a :class:`PCA`; its
    ``apply`` maps (n, d) -> (n, k). Differs from scikit-learn: variances divide by n, not n-1.
    """
    return _fit(x, n_components, 0.0, "pca", "fit_pca")


def fit_pca_whiten(x, n_components: int | float | None = None, *, eps: float = 1e-5) -> PCA:
    """PCA whitening: ``z = (x - mean) @ U_k diag(1 / sqrt(l + eps))``.

    The output is decorrelated with unit variance (covariance I, up to l / (l + eps)).
    ``eps`` > 0 keeps directions of (near) zero variance finite: they are scaled by at most
    1/sqrt(eps) instead of divided by 0. x: (n, d) -> z (n, k); ``n_components`` as in
    :func:`fit_pca`.
    """
    eps = number("fit_pca_whiten", "eps", eps, low=0, low_open=True)
    return _fit(x, n_components, eps, "pca_whiten", "fit_pca_whiten")


def fit_zca_whiten(x, n_components: int | float | None = None, *, eps: float = 1e-5) -> PCA:
    """ZCA (zero-phase, Mahalanobis) whitening: PCA whitening rotated back to the input axes,

        z = (x - mean) @ U diag(1 / sqrt(l + eps)) U^T        = C^(-1/2) (x - mean) for eps -> 0

    Covariance of z is I (up to l / (l + eps)), and among all whitening maps z is the closest
    to the centred input (least squares), so images still look like images. x: (n, d) ->
    z (n, d). ``n_components`` (default all) whitens within the leading k-dim subspace only.
    """
    eps = number("fit_zca_whiten", "eps", eps, low=0, low_open=True)
    return _fit(x, n_components, eps, "zca", "fit_zca_whiten")
