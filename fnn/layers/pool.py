"""Pooling over the spatial axes (channels last): max, average, Lp, and global pooling."""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from fnn.core import Layer
from fnn.layers._args import int_tuple, padding_arg, window_output
from fnn.validation import number

__all__ = ["MaxPool", "AvgPool", "LPPool", "GlobalAvgPool", "GlobalMaxPool"]


def _pool(name, window, strides, padding, reduce):
    """A window pooling layer; ``reduce(x, dims, strides, pads) -> y`` does the arithmetic.

    The spatial rank n is len(window) for a tuple window, else input rank - 1 (channels last).
    """
    int_tuple(name, "window", window)
    int_tuple(name, "strides", window if strides is None else strides)
    padding_arg(name, padding)

    def settings(n, in_sizes):
        w = int_tuple(name, "window", window, n)
        s = w if strides is None else int_tuple(name, "strides", strides, n)
        out, pads = window_output(name, in_sizes, w, s, padding_arg(name, padding, n))
        return w, s, out, pads

    def rank(shape):
        """The number of spatial dims of an example of ``shape`` (no batch axis)."""
        fixed = isinstance(window, (tuple, list))
        n = len(window) if fixed else len(shape) - 1
        if n < 1 or len(shape) != n + 1:
            raise ValueError(f"{name}: expected examples of shape (*spatial, channels) with "
                             f"{n if fixed else 'at least 1'} spatial dim(s), got "
                             f"{tuple(shape)}")
        return n

    def init_fn(key, input_shape):
        n = rank(input_shape)
        _, _, out, _ = settings(n, input_shape[:-1])
        return (*out, input_shape[-1]), {}, {}

    def apply_fn(params, state, x, key, train):
        n = rank(x.shape[1:])
        w, s, _, pads = settings(n, x.shape[1:-1])
        return reduce(x, (1, *w, 1), (1, *s, 1), ((0, 0), *pads, (0, 0))), state

    return Layer(name, init_fn, apply_fn)


def _const(value, dtype):
    """A concrete (NumPy) init value: lax.reduce_window only picks its differentiable
    max/sum kernels for a concrete identity, also under jit."""
    return np.array(value, dtype)


def _lowest(dtype):
    return -np.inf if jnp.issubdtype(dtype, jnp.floating) else jnp.iinfo(dtype).min


def MaxPool(window, strides=None, padding="VALID", *, name: str = "max_pool") -> Layer:
    """Max pooling: y[b, i, c] = max_{t < k} x_pad[b, s*i + t, c] (per spatial dim).

    Args:
      window: an int or a tuple (k_1, ..., k_n); an int pools every spatial dim of the input
        (n = input rank - 2), a tuple fixes n.
      strides: int or n-tuple; default ``window`` (non-overlapping windows).
      padding: 'VALID' (default), 'SAME', an int, a tuple of ints or ((lo, hi), ...) pairs;
        padded cells hold -inf, so they never win (as PyTorch).

    Shapes: x (batch, *spatial, C) -> (batch, *out, C), out = floor((in + lo + hi - k)/s) + 1.
    The gradient flows to the (first) maximum of each window.
    """
    def reduce(x, dims, strides_, pads):
        return lax.reduce_window(x, _const(_lowest(x.dtype), x.dtype), lax.max, dims,
                                 strides_, pads)
    return _pool(name, window, strides, padding, reduce)


def AvgPool(window, strides=None, padding="VALID", *, count_include_pad: bool = True,
            name: str = "avg_pool") -> Layer:
    """Average pooling: y[b, i, c] = (1/m) sum_{t < k} x_pad[b, s*i + t, c] (per spatial dim).

    m = k_1*...*k_n, counting padded zeros (``count_include_pad=True``, PyTorch's default), or
    the number of real (unpadded) cells in the window (``count_include_pad=False``).
    Arguments and shapes as :func:`MaxPool`; padded cells hold 0.
    """
    def reduce(x, dims, strides_, pads):
        total = lax.reduce_window(x, _const(0, x.dtype), lax.add, dims, strides_, pads)
        if count_include_pad:
            return total / math.prod(dims)
        ones = jnp.ones((1, *x.shape[1:-1], 1), x.dtype)
        count = lax.reduce_window(ones, _const(0, x.dtype), lax.add, dims, strides_, pads)
        return total / count
    return _pool(name, window, strides, padding, reduce)


def LPPool(p: float, window, strides=None, padding="VALID", *, name: str = "lp_pool") -> Layer:
    """Lp pooling: y[b, i, c] = (sum_{t < k} |x_pad[b, s*i + t, c]|^p)^(1/p) (per spatial dim).

    p = 2 is the notes' L2 pooling (square root of the sum of squares over each 2x2 region);
    p = 1 sums |x|; p -> inf tends to max pooling of |x|. Arguments and shapes as
    :func:`MaxPool`; padded cells hold 0. Where a window is all zeros, y = 0 with gradient 0
    (the norm's subgradient) instead of NaN.

    Differs from PyTorch's LPPool: torch raises x (not |x|) to the p-th power, so the two
    agree for even p or non-negative inputs; for odd p and negative inputs torch gives NaN.
    """
    p = number(name, "p", p, low=1)

    def reduce(x, dims, strides_, pads):
        total = lax.reduce_window(jnp.abs(x) ** p, _const(0, x.dtype), lax.add, dims,
                                  strides_, pads)
        positive = total > 0
        return jnp.where(positive, jnp.where(positive, total, 1) ** (1 / p), 0)
    return _pool(name, window, strides, padding, reduce)


def _global(name, reduce):
    def init_fn(key, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"{name}: expected input_shape (*spatial, channels) with at least "
                             f"1 spatial dim, got {input_shape}")
        return (input_shape[-1],), {}, {}

    def apply_fn(params, state, x, key, train):
        if x.ndim < 3:
            raise ValueError(f"{name}: expected input of shape (batch, *spatial, channels), "
                             f"got {tuple(x.shape)}")
        return reduce(x, axis=tuple(range(1, x.ndim - 1))), state

    return Layer(name, init_fn, apply_fn)


def GlobalAvgPool(*, name: str = "global_avg_pool") -> Layer:
    """y[b, c] = mean of x[b, ..., c] over all spatial positions.

    Shapes: x (batch, *spatial, C) -> (batch, C).
    """
    return _global(name, jnp.mean)


def GlobalMaxPool(*, name: str = "global_max_pool") -> Layer:
    """y[b, c] = max of x[b, ..., c] over all spatial positions.

    Shapes: x (batch, *spatial, C) -> (batch, C).
    """
    return _global(name, jnp.max)
