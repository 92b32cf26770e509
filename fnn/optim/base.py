"""The optimizer protocol (optax-compatible), ``chain``, ``apply_updates`` and scaling pieces.

An optimizer is a ``GradientTransformation``: two pure functions ::

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)

It is a NamedTuple with the same two fields as ``optax.GradientTransformation``, so fnn
transforms work inside optax (``optax.chain``, ``optax.apply_updates``) and optax transforms
work wherever fnn expects one.
"""
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from fnn.optim import _validate
from fnn.optim._numerics import common_dtype, increment
from fnn.optim.hyperparams import HyperparamFunction, composed


class GradientTransformation(NamedTuple):
    """A pure gradient transformation.

    init(params) -> state
        Builds the initial state from the parameter pytree (moments start at zero, etc.).
    update(updates, state, params=None) -> (updates, state)
        Maps incoming updates (usually gradients) to outgoing updates and the next state.
        ``params`` is needed only by transforms that read the parameters (weight decay).
    """

    init: Callable[[Any], Any]
    update: Callable[..., tuple]


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none."""


def init_empty_state(params):
    """``init`` of a stateless transformation: returns EmptyState()."""
    del params
    return EmptyState()


def identity():
    """Pass updates through unchanged: u = g."""

    def update(updates, state, params=None):
        del params
        return updates, state

    return GradientTransformation(init_empty_state, update)


def chain(*args):
    """Apply the transforms in ``args`` one after the other: u = t_n(... t_2(t_1(g))).

    The state is a tuple with one entry per transform. Any object with ``init`` and
    ``update`` works as a piece, optax transforms included. The hyperparameters are the
    tuple of the pieces' (``{}`` for an optax piece).
    """
    transforms = args

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(transforms, updates, state, params=None):
        if len(state) != len(transforms):
            raise ValueError(
                f"chain: state must have one entry per transform ({len(transforms)}), "
                f"got {len(state)}; build it with init(params)")
        new_state = []
        for transform, inner_state in zip(transforms, state):
            updates, inner_state = transform.update(updates, inner_state, params)
            new_state.append(inner_state)
        return updates, tuple(new_state)

    return GradientTransformation(init, composed(update, transforms))


def apply_updates(params, updates):
    """New parameters p + u, leaf by leaf; each result keeps its parameter's dtype.

    The sum is computed in the promoted dtype of p and u (so float32 updates to bfloat16
    parameters are added in float32) and then cast back to p's dtype, as optax does.
    ``None`` leaves in ``params`` stay ``None``.
    """

    def add(p, u):
        if p is None:
            return None
        p, u = jnp.asarray(p), jnp.asarray(u)
        dtype = common_dtype(p, u)
        return (p.astype(dtype) + u.astype(dtype)).astype(p.dtype)

    return jax.tree.map(add, params, updates, is_leaf=lambda x: x is None)


def scale(step_size):
    """Multiply updates by a fixed number: u = step_size * g.  Hyperparameters:
    ``{'step_size': step_size}``."""

    def update(h, updates, state, params=None):
        del params
        return jax.tree.map(lambda g: h["step_size"] * g, updates), state

    return GradientTransformation(init_empty_state,
                                  HyperparamFunction(update, {"step_size": step_size}))


class ScaleByScheduleState(NamedTuple):
    """Number of updates done so far (the argument of the schedule)."""

    count: jax.Array  # int32 scalar


def scale_by_schedule(step_size_fn):
    """Multiply updates by a scheduled number: u_t = step_size_fn(t) * g_t, t = 0, 1, ...

    Args:
      step_size_fn: schedule, a function of the int32 step count t (0 at the first update).
        Its value is cast to each update's dtype before multiplying. Its hyperparameters
        (an fnn schedule's) are this transform's, as the 1-tuple ``(hyperparams_of(fn),)``.
    """

    def init(params):
        del params
        return ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(parts, updates, state, params=None):
        del params
        (schedule,) = parts
        step_size = schedule(state.count)
        updates = jax.tree.map(lambda g: jnp.asarray(step_size, dtype=g.dtype) * g, updates)
        return updates, ScaleByScheduleState(count=increment(state.count))

    return GradientTransformation(init, composed(update, [step_size_fn]))


def scale_by_learning_rate(learning_rate: Optional[Any] = None, *, flip_sign: bool = True):
    """Scale by the learning rate, turning a descent direction into a step: u = -lr * g.

    Args:
      learning_rate: a number, or a schedule (callable step count -> lr, evaluated at a
        counter kept in the state). None means no scaling (identity).
      flip_sign: when True (default) multiply by -lr, so ``apply_updates`` descends.
    """
    if learning_rate is None:
        return identity()
    _validate.nonnegative("scale_by_learning_rate", learning_rate=learning_rate)
    sign = -1 if flip_sign else 1
    if callable(learning_rate):
        signed = composed(lambda parts, count: sign * parts[0](count), [learning_rate])
        return scale_by_schedule(signed)
    return scale(sign * learning_rate)
