"""Normalisation layers: BatchNorm (with running statistics in ``state``) and LayerNorm."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from fnn.core import Layer, ParamsError, batch_hint, require_params, require_state
from fnn.precision import at_least_float32
from fnn.validation import integer, number

__all__ = ["BatchNorm", "LayerNorm"]


def _scale_and_bias(name, params) -> int:
    """The channel count C of params ``scale`` (C,) and ``b`` (C,); raises if they disagree."""
    require_params(name, params, ("scale", "b"))
    scale, b = params["scale"], params["b"]
    if scale.ndim != 1 or b.shape != scale.shape:
        raise ParamsError(f"{name}: params scale {tuple(scale.shape)} and b {tuple(b.shape)} "
                          f"must both be (channels,); were they made by another network's init?")
    return scale.shape[0]


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

    Mixed precision: a float16/bfloat16 input is normalised in float32 (statistics and
    arithmetic, :func:`fnn.precision.at_least_float32`) and returned in its own dtype; the
    running statistics stay in their dtype (float32).
    """
    momentum = number(name, "momentum", momentum, low=0, high=1)
    eps = number(name, "eps", eps, low=0, low_open=True)
    axis = integer(name, "axis", axis)

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
        c = _scale_and_bias(name, params)
        require_state(name, state, ("mean", "var"))
        ax = channel_axis(x.ndim - 1) + 1
        if x.shape[ax] != c:
            raise ValueError(f"{name}: expected {c} channels on axis {ax} of the input "
                             f"(batch axis included), got shape {tuple(x.shape)}")
        along = lambda v: _along(v, x.ndim, ax)
        narrow, x = x, at_least_float32(x)
        scale, bias = at_least_float32(params["scale"]), at_least_float32(params["b"])
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
        y = (x - along(mean)) * along(jax.lax.rsqrt(var + eps) * scale)
        y = y + along(bias)
        return (y if x is narrow else y.astype(narrow.dtype)), state

    return Layer(name, init_fn, apply_fn, stateful=True)


def LayerNorm(eps: float = 1e-5, *, name: str = "layernorm") -> Layer:
    """Layer normalisation over the last axis (Ba et al. 2016), per example::

        mu = mean(x[..., :]), var = mean((x - mu)^2),  y = scale * (x - mu) / sqrt(var + eps) + b

    Same in training and eval (no batch statistics). Matches PyTorch ``LayerNorm(C)``.
    A float16/bfloat16 input is normalised in float32 and returned in its own dtype.

    Shapes: x (batch, ..., C) -> y of the same shape; params ``scale`` (C,) = 1, ``b`` (C,) = 0.
    """
    eps = number(name, "eps", eps, low=0, low_open=True)

    def init_fn(key, input_shape):
        if len(input_shape) < 1:
            raise ValueError(f"{name}: expected input_shape (..., features), got {input_shape}")
        c = input_shape[-1]
        return input_shape, {"scale": jnp.ones((c,), jnp.float32),
                             "b": jnp.zeros((c,), jnp.float32)}, {}

    def apply_fn(params, state, x, key, train):
        c = _scale_and_bias(name, params)
        if x.ndim < 2 or x.shape[-1] != c:
            raise ValueError(f"{name}: expected input of shape (batch, ..., {c}), "
                             f"got {tuple(x.shape)}{batch_hint(x, 2)}")
        narrow, x = x, at_least_float32(x)
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
        along = lambda v: _along(at_least_float32(v), x.ndim, x.ndim - 1)
        y = (x - mean) * jax.lax.rsqrt(var + eps) * along(params["scale"]) + along(params["b"])
        return (y if x is narrow else y.astype(narrow.dtype)), state

    return Layer(name, init_fn, apply_fn)
