"""Small helpers the experiments share: stacking pytrees and inits, JSON-safe lists, a random
split."""
from __future__ import annotations

import jax
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


def finite_or_none(values) -> list:
    """A list with non-finite numbers replaced by None (how results.json records them)."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, np.float64).ravel()]


def split_off(x, y, n: int, seed: int):
    """A stratified-free random subset of ``n`` rows and the rest: ((x_a, y_a), (x_b, y_b))."""
    order = np.random.RandomState(seed).permutation(len(x))
    return (x[order[:n]], y[order[:n]]), (x[order[n:]], y[order[n:]])
