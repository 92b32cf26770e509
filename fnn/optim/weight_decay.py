"""Weight decay as a transformation: add weight_decay * params to the updates."""
from typing import NamedTuple

import jax
import jax.numpy as jnp

from fnn.optim import _validate
from fnn.optim._numerics import add, increment
from fnn.optim.base import EmptyState, GradientTransformation
from fnn.optim.wrappers import masked


class WeightDecayScheduleState(NamedTuple):
    """Step count, the argument of a scheduled weight decay."""

    count: jax.Array  # int32 scalar


def add_decayed_weights(weight_decay=0.0, mask=None):
    """Add decayed weights: u = g + weight_decay * p.

    Where it sits in a chain decides the kind of decay. Before the adaptive scaling it is
    an L2 penalty on the loss (coupled: ``chain(add_decayed_weights(wd), adam(lr))`` is
    torch.optim.Adam(weight_decay=wd)). After the scaling and before the learning rate it
    is decoupled weight decay, p <- p - lr * (adam_step + wd * p), as in ``adamw``.

    Args:
      weight_decay: a number >= 0 or a schedule (step count -> coefficient).
      mask: None (decay everything), a pytree of bools like the params, or a function
        params -> such a tree; False leaves are not decayed.
    """
    _validate.nonnegative("add_decayed_weights", weight_decay=weight_decay)

    def init(params):
        del params
        if callable(weight_decay):
            return WeightDecayScheduleState(count=jnp.zeros([], jnp.int32))
        return EmptyState()

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("add_decayed_weights: update needs the parameters, "
                             "call update(updates, state, params)")
        if callable(weight_decay):
            coefficient = weight_decay(state.count)
            state = WeightDecayScheduleState(count=increment(state.count))
        elif isinstance(weight_decay, (int, float)) and weight_decay == 0:
            return updates, state
        else:
            coefficient = weight_decay
        updates = jax.tree.map(lambda g, p: add(g, jnp.asarray(coefficient, p.dtype) * p),
                               updates, params)
        return updates, state

    transform = GradientTransformation(init, update)
    return transform if mask is None else masked(transform, mask)
