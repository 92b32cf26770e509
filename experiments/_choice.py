"""A layer that picks its elementwise function by an index in its state, so networks that
differ only in their activation share one compiled program (used by the activations and
initialization experiments)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

import fnn


def Choice(fns: dict, name: str = "choice"):
    """An elementwise layer ``y = f_k(x)`` whose function ``f_k`` (one of ``fns``, by position) is
    picked by the integer ``state['index']``.

    Networks that differ only in their activation then share one compiled program: set the
    index in the state and ``vmap`` over it (``lax.switch`` becomes a select). Shapes: any x ->
    y of the same shape; no params.
    """
    branches = list(fns.values())

    def init_fn(key, shape):
        return shape, {}, {"index": jnp.zeros((), jnp.int32)}

    def apply_fn(params, state, x, key, train):
        return jax.lax.switch(state["index"], branches, x), state

    return fnn.Layer(name, init_fn, apply_fn, stateful=True)


def choose(state, index):
    """``state`` with every :func:`Choice` index set to ``index`` (an int or int32 array)."""
    return jax.tree.map(lambda a: jnp.asarray(index, jnp.int32) + jnp.zeros_like(a), state)
