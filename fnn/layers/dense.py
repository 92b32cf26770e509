"""The fully connected (affine) layer."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from fnn import initializers
from fnn.core import Layer, ParamsError, batch_hint, require_params
from fnn.validation import flag, positive_int

__all__ = ["Dense"]


def Dense(units: int, *, use_bias: bool = True, w_init=initializers.lecun_normal(),
          b_init=initializers.zeros, dtype=jnp.float32, name: str = "dense") -> Layer:
    """Affine map on the last axis: y = x W + b (the notes' H = X W1 + b1).

    Args:
      units: output features (n_out), a positive int.
      use_bias: add ``b``; without it y = x W.
      w_init, b_init: initialisers ``(key, shape, dtype) -> array`` or names
        (default w ~ N(0, 1/n_in), i.e. randn/sqrt(n_in); b = 0).
      dtype: parameter dtype.

    Shapes: x (..., n_in) -> y (..., units); params ``w`` (n_in, units), ``b`` (units,).
    """
    units = positive_int(name, "units", units)
    use_bias = flag(name, "use_bias", use_bias)
    w_init, b_init = initializers.get(w_init), initializers.get(b_init)

    def init_fn(key, input_shape):
        if len(input_shape) < 1 or not isinstance(input_shape[-1], int):
            raise ValueError(f"{name}: expected input_shape (..., features), got {input_shape}")
        kw, kb = jax.random.split(key)
        params = {"w": w_init(kw, (input_shape[-1], units), dtype)}
        if use_bias:
            params["b"] = b_init(kb, (units,), dtype)
        return (*input_shape[:-1], units), params, {}

    def apply_fn(params, state, x, key, train):
        require_params(name, params, ("w", "b") if use_bias else ("w",))
        w = params["w"]
        if w.ndim != 2 or w.shape[1] != units or (use_bias and params["b"].shape != (units,)):
            got = f"w {tuple(w.shape)}" + (f", b {tuple(params['b'].shape)}" if use_bias else "")
            raise ParamsError(f"{name}: params hold {got}, but this layer has units={units}: "
                              f"expected w (n_in, {units})" + (f", b ({units},)" if use_bias else "")
                              + "; were they made by another network's init?")
        if x.ndim < 2 or x.shape[-1] != w.shape[0]:
            raise ValueError(f"{name}: expected input of shape (batch, ..., {w.shape[0]}), "
                             f"got {tuple(x.shape)}{batch_hint(x, 2)}")
        y = x @ w
        if use_bias:
            y = y + jnp.expand_dims(params["b"], tuple(range(y.ndim - 1)))
        return y, state

    return Layer(name, init_fn, apply_fn)
