"""Small helpers the experiments share: stacking pytrees and inits, counting parameters,
accuracy, JSON-safe lists, a random split."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def stack(trees):
    """Stack equally structured pytrees along a new leading axis (NumPy arrays)."""
    return jax.tree.map(lambda *leaves: np.stack([np.asarray(a) for a in leaves]), *trees)


def stack_init(net, keys, input_shape):
    """``net.init`` for each key, stacked along a new leading axis: (params, state).

    Runs eagerly, one key at a time: compiling a vmapped init of a deep net costs seconds,
    while the eager random ops are compiled once per shape and reused.
    """
    return stack([net.init(k, input_shape) for k in keys])


def n_params(params) -> int:
    return int(sum(np.size(a) for a in jax.tree.leaves(params)))


def accuracy(net, params, x, y) -> float:
    logits = net(params, jnp.asarray(x))
    return float(np.mean(np.asarray(logits).argmax(axis=-1) == np.asarray(y)))


def finite_or_none(values) -> list:
    """A list with non-finite numbers replaced by None (how results.json records them)."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, np.float64).ravel()]


def split_off(x, y, n: int, seed: int):
    """A stratified-free random subset of ``n`` rows and the rest: ((x_a, y_a), (x_b, y_b))."""
    order = np.random.RandomState(seed).permutation(len(x))
    return (x[order[:n]], y[order[:n]]), (x[order[n:]], y[order[n:]])
