"""Gradient clipping: element-wise (``clip``) and by the global norm."""
import functools

import jax
import jax.numpy as jnp

from fnn.optim import _validate
from fnn.optim._numerics import add
from fnn.optim.base import GradientTransformation, init_empty_state
from fnn.optim.hyperparams import HyperparamFunction


def clip(max_delta):
    """Clip every coordinate to [-max_delta, max_delta]: u = min(max(g, -max_delta), max_delta).

    Args:
      max_delta: >= 0 (the hyperparameter ``{'max_delta': max_delta}``).

    Differs from: nothing; torch.nn.utils.clip_grad_value_ and Keras ``clipvalue`` are the
    same rule (applied in place / inside the optimizer).
    """
    _validate.nonnegative("clip", max_delta=max_delta)

    def update(h, updates, state, params=None):
        del params
        max_delta = h["max_delta"]
        return jax.tree.map(lambda g: jnp.clip(g, -max_delta, max_delta), updates), state

    return GradientTransformation(init_empty_state,
                                  HyperparamFunction(update, {"max_delta": max_delta}))


def global_norm(updates):
    """Euclidean norm of all entries of a pytree: sqrt(sum over leaves of sum(x^2))."""
    squares = [jnp.sum(x ** 2) for x in jax.tree.leaves(updates)]
    return jnp.sqrt(functools.reduce(add, squares)) if squares else jnp.zeros([])


def clip_by_global_norm(max_norm):
    """Rescale all updates together so their global norm is at most max_norm.

    n = sqrt(sum_i |g_i|^2) over every leaf;  u = g if n < max_norm else g * max_norm / n

    Args:
      max_norm: > 0 (the hyperparameter ``{'max_norm': max_norm}``).

    Differs from: torch.nn.utils.clip_grad_norm_ multiplies by max_norm / (n + 1e-6) when
    n > max_norm; the results differ by a relative 1e-6 / n.
    """
    _validate.positive("clip_by_global_norm", max_norm=max_norm)

    def update(h, updates, state, params=None):
        del params
        max_norm = h["max_norm"]
        norm = global_norm(updates)
        small = norm < max_norm
        updates = jax.tree.map(
            lambda g: jnp.where(small, g, g / norm.astype(g.dtype) * max_norm), updates)
        return updates, state

    return GradientTransformation(init_empty_state,
                                  HyperparamFunction(update, {"max_norm": max_norm}))
