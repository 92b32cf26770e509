"""Activation functions, usable as functions and as layers.

Every function here maps arrays to arrays elementwise (softmax/log_softmax along the last
axis) and can be dropped straight into :func:`fnn.serial`, which wraps it as a layer::

    net = fnn.serial(fnn.Dense(50), fnn.relu, fnn.Dense(4))
    fnn.Activation("leaky_relu", alpha=0.2)          # a layer by name, with arguments

Their hand-derived derivatives live in :mod:`fnn.manual` and are tested against ``jax.grad``.
"""
from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp

from fnn import initializers
from fnn._names import did_you_mean
from fnn.core import Lambda, Layer, ParamsError, check_shape, require_params
from fnn.precision import at_least_float32
from fnn.validation import number_or_array, positive_int

__all__ = [
    "step", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "softplus", "swish",
    "softmax", "log_softmax", "Activation", "Maxout", "get",
]


def step(x):
    """Heaviside step: 1 if x > 0 else 0 (the perceptron's threshold). Its gradient is 0."""
    return jnp.where(x > 0, 1.0, 0.0).astype(x.dtype)


def sigmoid(x):
    """sigma(x) = 1 / (1 + exp(-x)); sigma' = sigma (1 - sigma)."""
    return jax.nn.sigmoid(x)


def tanh(x):
    """tanh(x) = (e^x - e^-x) / (e^x + e^-x); tanh' = 1 - tanh^2."""
    return jnp.tanh(x)


def relu(x):
    """max(0, x); relu' = 1 if x > 0 else 0 (0 at x = 0, as in the notes' ``dh[h <= 0] = 0``)."""
    return jax.nn.relu(x)


def leaky_relu(x, alpha: float = 0.01):
    """x if x > 0 else alpha x."""
    number_or_array("leaky_relu", "alpha", alpha)
    return jnp.where(x > 0, x, alpha * x)


def elu(x, alpha: float = 1.0):
    """x if x > 0 else alpha (exp(x) - 1)."""
    number_or_array("elu", "alpha", alpha)
    return jax.nn.elu(x, alpha)


def selu(x):
    """lambda * elu(x, alpha) with lambda = 1.0507..., alpha = 1.6732... (self-normalising)."""
    return jax.nn.selu(x)


def gelu(x, approximate: bool = False):
    """x Phi(x), Phi the standard normal CDF (exact, as PyTorch's default); with
    ``approximate=True`` the tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return jax.nn.gelu(x, approximate=approximate)


def softplus(x):
    """log(1 + exp(x)), computed stably; softplus' = sigmoid."""
    return jax.nn.softplus(x)


def swish(x):
    """x sigmoid(x) (also called SiLU)."""
    return jax.nn.swish(x)


def softmax(x):
    """softmax(x)_i = exp(x_i) / sum_j exp(x_j) along the last axis (max-shifted for stability;
    float16/bfloat16 inputs are computed in float32 and returned in their own dtype)."""
    wide = at_least_float32(x)
    y = jax.nn.softmax(wide, axis=-1)
    return y if wide is x else y.astype(x.dtype)


def log_softmax(x):
    """log softmax(x)_i = x_i - logsumexp(x) along the last axis (float16/bfloat16 inputs are
    computed in float32 and returned in their own dtype)."""
    wide = at_least_float32(x)
    y = jax.nn.log_softmax(wide, axis=-1)
    return y if wide is x else y.astype(x.dtype)


_BY_NAME = {f.__name__: f for f in (step, sigmoid, tanh, relu, leaky_relu, elu, selu, gelu,
                                     softplus, swish, softmax, log_softmax)}


def get(name_or_fn, **kwargs):
    """The activation function called ``name`` (or ``fn`` itself), with ``kwargs`` bound."""
    if callable(name_or_fn):
        fn = name_or_fn
    elif name_or_fn in _BY_NAME:
        fn = _BY_NAME[name_or_fn]
    else:
        raise ValueError(f"unknown activation {name_or_fn!r}{did_you_mean(name_or_fn, _BY_NAME)}; "
                         f"expected one of {sorted(_BY_NAME)}")
    if not kwargs:
        return fn
    try:
        inspect.signature(fn).bind(None, **kwargs)
    except TypeError:
        raise ValueError(f"activation {getattr(fn, '__name__', fn)!r} takes no argument(s) "
                         f"{sorted(kwargs)}; its signature is {inspect.signature(fn)}") from None
    return functools.wraps(fn)(functools.partial(fn, **kwargs))


def Activation(name_or_fn, **kwargs) -> Layer:
    """An activation as a layer, by name (``Activation('elu', alpha=0.5)``) or function."""
    fn = get(name_or_fn, **kwargs)
    return Lambda(fn, name=getattr(fn, "__name__", "activation"))


def Maxout(units: int, pieces: int, *, w_init=None, b_init=initializers.zeros,
           dtype=jnp.float32, name: str = "maxout") -> Layer:
    """Maxout (Goodfellow et al. 2013): y_j = max_k (x . w[:, j, k] + b[j, k]).

    Args: ``units`` outputs, each the max over ``pieces`` affine pieces. The default
    ``w_init`` is fan-in scaling per piece, w ~ N(0, 1/n_in) (each piece is a Dense layer).
    Shapes: x (batch, n_in) -> y (batch, units); params w (n_in, units, pieces), b (units, pieces).
    """
    units, pieces = positive_int(name, "units", units), positive_int(name, "pieces", pieces)
    if w_init is None:  # fan_in = n_in: the pieces axis is a batch of Dense kernels
        w_init = jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=0,
                                                      out_axis=1, batch_axis=(2,))
    w_init, b_init = initializers.get(w_init), initializers.get(b_init)

    def init_fn(key, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"{name}: expected input of shape (batch, features), got "
                             f"input_shape {input_shape} (flatten first)")
        kw, kb = jax.random.split(key)
        params = {"w": w_init(kw, (input_shape[0], units, pieces), dtype),
                  "b": b_init(kb, (units, pieces), dtype)}
        return (units,), params, {}

    def apply_fn(params, state, x, key, train):
        require_params(name, params, ("w", "b"))
        if params["w"].ndim != 3 or params["w"].shape[1:] != (units, pieces):
            raise ParamsError(f"{name}: params hold w {tuple(params['w'].shape)}, but this layer "
                              f"expects (n_in, {units}, {pieces}) for units={units}, "
                              f"pieces={pieces}; were they made by another network's init?")
        check_shape(name, x, params["w"].shape[:1])
        z = jnp.einsum("ni,ijk->njk", x, params["w"]) + params["b"][None]
        return jnp.max(z, axis=-1), state

    return Layer(name, init_fn, apply_fn)
