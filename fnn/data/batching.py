"""Minibatches as device arrays with a leading step axis, ready for ``jax.lax.scan``::

    xs = batches((x, y), 32, key=jax.random.key(0))       # ((steps, 32, ...), (steps, 32))
    params, losses = jax.lax.scan(step, params, xs)

    xs = epochs((x, y), 32, num_epochs=10, seed=0)        # ((10, steps, 32, ...), ...)

``data`` is any pytree of arrays sharing a leading example axis of length n (a tuple
``(x, y)``, a dict, a single array). The remainder policy says what happens to the last
``n % batch_size`` examples:

* ``'drop'``  (default) they are left out; steps = n // batch_size.
* ``'pad'``   the last batch is filled up by repeating examples from the start of the
  (shuffled) order, and a boolean ``mask`` (steps, batch_size) marks the real examples:
  the call returns ``(batched, mask)``; steps = ceil(n / batch_size). Weight per-example
  losses with the mask so repeats do not count twice.
* ``'error'`` raise ``ValueError`` unless batch_size divides n.

``fnn.train.fit`` shuffles on the device itself; these helpers are for hand-written scans.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from fnn.train.engine import epoch_keys, epoch_order
from fnn.validation import integer, num_examples, one_of, positive_int, prng_key

__all__ = ["batches", "epochs", "REMAINDER_POLICIES"]

REMAINDER_POLICIES = ("drop", "pad", "error")


def _plan(data, batch_size, remainder, who: str) -> tuple[int, int]:
    """Validate and return (n, steps)."""
    n = num_examples(who, data)
    batch_size = positive_int(who, "batch_size", batch_size)
    one_of(who, "remainder", remainder, REMAINDER_POLICIES)
    if remainder == "drop" and batch_size > n:
        raise ValueError(f"{who}: batch_size ({batch_size}) is larger than the dataset ({n} "
                         f"examples), so remainder='drop' would leave no batch; use a smaller "
                         f"batch_size or remainder='pad'")
    if remainder == "error" and n % batch_size:
        raise ValueError(f"{who}: batch_size ({batch_size}) does not divide the number of "
                         f"examples ({n}), remainder {n % batch_size}; use remainder='drop' or 'pad'")
    steps = n // batch_size if remainder == "drop" else math.ceil(n / batch_size)
    return n, steps


def _index(order: jax.Array, n: int, steps: int, batch_size: int, remainder: str):
    """Example indices (steps, batch_size) and the real-example mask, from one order of 0..n-1."""
    positions = jnp.arange(steps * batch_size)
    if remainder == "pad":
        positions = positions % n  # wrap around: the pad repeats the order's first examples
    idx = order[positions].reshape(steps, batch_size)
    mask = (jnp.arange(steps * batch_size) < n).reshape(steps, batch_size)
    return idx, mask


def _gather(data, idx):
    return jax.tree.map(lambda a: jnp.take(jnp.asarray(a), idx, axis=0), data)


def batches(data, batch_size: int, *, key: jax.Array | None = None, remainder: str = "drop"):
    """Split ``data`` into minibatches stacked along a new leading step axis.

    Every leaf of shape (n, *s) becomes a device array of shape (steps, batch_size, *s):
    ``out[t, j] = a[order[t * batch_size + j]]`` where ``order`` is
    ``jax.random.permutation(key, n)`` when ``key`` is given, else 0..n-1 (data order).

    Returns the batched pytree, or ``(batched, mask)`` with ``mask`` (steps, batch_size)
    bool when ``remainder='pad'`` (see the module docstring for the policies).
    """
    n, steps = _plan(data, batch_size, remainder, "batches")
    if key is None:
        order = jnp.arange(n)
    else:
        prng_key("batches", "key", key, hint="; for reproducible epochs use epochs(..., seed=...)")
        order = jax.random.permutation(key, n)
    idx, mask = _index(order, n, steps, batch_size, remainder)
    out = _gather(data, idx)
    return (out, mask) if remainder == "pad" else out


def epochs(data, batch_size: int, num_epochs: int, *, seed: int, remainder: str = "drop"):
    """``num_epochs`` shuffled passes over ``data``, stacked along leading epoch and step axes.

    Every leaf of shape (n, *s) becomes (num_epochs, steps, batch_size, *s); epoch e is
    ``batches(data, batch_size, key=fold_in(fold_in(jax.random.key(seed), 0), e))``: the
    engine's shuffle (``fnn.train.engine.epoch_keys`` and ``epoch_order``), so with
    ``remainder='drop'`` these are exactly the minibatches ``fnn.fit(..., seed=seed,
    batch_size=batch_size)`` trains on for ``batch_size < n`` (a full-batch epoch of ``fit``
    is not shuffled), and any epoch can be regenerated on its own. With ``remainder='pad'``
    returns ``(batched, mask)``, mask (num_epochs, steps, batch_size). This materialises
    num_epochs copies of the data on the device; for large sets shuffle inside the scan
    instead (as ``fnn.train.fit`` does).
    """
    n, steps = _plan(data, batch_size, remainder, "epochs")
    num_epochs = positive_int("epochs", "num_epochs", num_epochs)
    seed = integer("epochs", "seed", seed)
    shuffle_key, _ = epoch_keys(jax.random.key(seed))  # fit's shuffle key
    orders = jax.vmap(lambda e: epoch_order(shuffle_key, e, n))(jnp.arange(num_epochs))
    idx, mask = jax.vmap(lambda o: _index(o, n, steps, batch_size, remainder))(orders)
    out = _gather(data, idx)
    return (out, mask) if remainder == "pad" else out
