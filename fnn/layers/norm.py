"""Normalisation layers: BatchNorm (with running statistics in ``state``) and LayerNorm."""
from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp

from fnn.core import Layer, require_params

__all__ = ["BatchNorm", "LayerNorm"]


def _check_number(name, what, value, lo, hi, hi_open):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and lo <= value and (value < hi if hi_open else value <= hi)):
        bound = f"[{lo}, {hi})" if hi_open else f"[{lo}, {hi}]"
        raise ValueError(f"{name}: {what} must be a number in {bound}, got {value!r}")


def _check_eps(name, eps):
    if not (isinstance(eps, numbers.Real) and not isinstance(eps, bool) and 0 < eps < math.inf):
        raise ValueError(f"{name}: eps must be a positive number, got {eps!r}")


def _along(v, ndim, axis):
    """Reshape a (C,) vector to broadcast along ``axis`` of an ndim array (explicit rank)."""
    shape = [1] * ndim
    shape[axis] = v.shape[0]
    return v.reshape(shape)


def BatchNorm(momentum: float = 0.9, eps: float = 1e-5, *, axis: int = -1,
              name: str = "batchnorm") -> Layer:
    """Batch normalisation with running statistics (Ioffe & Szegedy 2015).

    Per channel c (``axis``), over every other axis including the batch (n values)::

        train:  mu = mean(x), var = mean((x - mu)^2)              (batch statistics)
                y = scale * (x - mu) / sqrt(var + eps) + b
                mean' = momentum * mean + (1 - momentum) * mu
                var'  = momentum * var  + (1 - momentum) * var * n / (n - 1)   (unbiased)
        eval:   y = scale * (x - mean) / sqrt(var + eps) + b     (running statistics only)

    PyTorch's ``momentum`` weighs the new batch, fnn's (like Keras/Flax) the old average:
    torch ``BatchNorm2d(momentum=0.1)`` is fnn ``BatchNorm(momentum=0.9)``. As in PyTorch,
    the unbiased batch variance goes into the running var and the biased one normalises.

    Args:
      momentum: in [0, 1]; eps: > 0, added to the variance.
      axis: the channel axis of the input shape without the batch axis (default -1: NHWC,
        or features for (batch, features) inputs).

    Shapes: x (batch, ..., C, ...) -> y of the same shape; params ``scale`` (C,) = 1,
    ``b`` (C,) = 0; state ``mean`` (C,) = 0, ``var`` (C,) = 1. Use
    ``y, state = net.apply(params, state, x, train=True)`` and keep the returned state.
    """
    _check_number(name, "momentum", momentum, 0, 1, hi_open=False)
    _check_eps(name, eps)
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise ValueError(f"{name}: axis must be an int, got {axis!r}")

    def channel_axis(rank):
        """The channel axis among ``rank`` non-batch axes, counted without the batch axis."""
        if not -rank <= axis < rank:
            raise ValueError(f"{name}: axis {axis} is out of range for inputs with {rank} "
                             f"non-batch axes")
        return axis % rank

    def init_fn(key, input_shape):
        c = input_shape[channel_axis(len(input_shape))]
        params = {"scale": jnp.ones((c,), jnp.float32), "b": jnp.zeros((c,), jnp.float32)}
        state = {"mean": jnp.zeros((c,), jnp.float32), "var": jnp.ones((c,), jnp.float32)}
        return input_shape, params, state

    def apply_fn(params, state, x, key, train):
        require_params(name, params, ("scale", "b"))
        ax = channel_axis(x.ndim - 1) + 1
        c = params["scale"].shape[0]
        if x.shape[ax] != c:
            raise ValueError(f"{name}: expected {c} channels on axis {ax} of the input "
                             f"(batch axis included), got shape {tuple(x.shape)}")
        along = lambda v: _along(v, x.ndim, ax)
        if train:
            reduce = tuple(i for i in range(x.ndim) if i != ax)
            n = x.size // c
            if n < 2:
                raise ValueError(f"{name}: training needs more than one value per channel to "
                                 f"estimate the variance, got input of shape {tuple(x.shape)}")
            mean = jnp.mean(x, axis=reduce)
            var = jnp.mean(jnp.square(x - along(mean)), axis=reduce)
            batch = {"mean": mean, "var": var * (n / (n - 1))}
            state = {k: (momentum * state[k] + (1 - momentum) * jax.lax.stop_gradient(
                batch[k]).astype(state[k].dtype)) for k in ("mean", "var")}
        else:
            mean, var = state["mean"], state["var"]
        y = (x - along(mean)) * along(jax.lax.rsqrt(var + eps) * params["scale"])
        return y + along(params["b"]), state

    return Layer(name, init_fn, apply_fn, stateful=True)


def LayerNorm(eps: float = 1e-5, *, name: str = "layernorm") -> Layer:
    """Layer normalisation over the last axis (Ba et al. 2016), per example::

        mu = mean(x[..., :]), var = mean((x - mu)^2),  y = scale * (x - mu) / sqrt(var + eps) + b

    Same in training and eval (no batch statistics). Matches PyTorch ``LayerNorm(C)``.

    Shapes: x (batch, ..., C) -> y of the same shape; params ``scale`` (C,) = 1, ``b`` (C,) = 0.
    """
    _check_eps(name, eps)

    def init_fn(key, input_shape):
        if len(input_shape) < 1:
            raise ValueError(f"{name}: expected input_shape (..., features), got {input_shape}")
        c = input_shape[-1]
        return input_shape, {"scale": jnp.ones((c,), jnp.float32),
                             "b": jnp.zeros((c,), jnp.float32)}, {}

    def apply_fn(params, state, x, key, train):
        require_params(name, params, ("scale", "b"))
        c = params["scale"].shape[0]
        if x.ndim < 2 or x.shape[-1] != c:
            raise ValueError(f"{name}: expected input of shape (batch, ..., {c}), "
                             f"got {tuple(x.shape)}")
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
        along = lambda v: _along(v, x.ndim, x.ndim - 1)
        return (x - mean) * jax.lax.rsqrt(var + eps) * along(params["scale"]) \
            + along(params["b"]), state

    return Layer(name, init_fn, apply_fn)
