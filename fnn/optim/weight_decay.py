"""Weight decay as a transformation: add weight_decay * params to the updates."""
from typing import NamedTuple

import jax
import jax.numpy as jnp

from fnn.optim import _validate
from fnn.optim._numerics import add, increment
from fnn.optim.base import EmptyState, GradientTransformation
from fnn.optim.hyperparams import HyperparamFunction, composed
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

    Hyperparameters: ``{'weight_decay': weight_decay}`` for a number, the schedule's (as a
    1-tuple) for a schedule, and none for a plain 0, which is no decay at all (structure).
    """
    _validate.nonnegative("add_decayed_weights", weight_decay=weight_decay)

    def init(params):
        del params
        if callable(weight_decay):
            return WeightDecayScheduleState(count=jnp.zeros([], jnp.int32))
        return EmptyState()

    def require(params):
        if params is None:
            raise ValueError("add_decayed_weights: update needs the parameters, "
                             "call update(updates, state, params)")

    def decayed(coefficient, updates, params):
        require(params)
        return jax.tree.map(lambda g, p: add(g, jnp.asarray(coefficient, p.dtype) * p),
                            updates, params)

    def update_scheduled(schedules, updates, state, params=None):
        updates = decayed(schedules[0](state.count), updates, params)
        return updates, WeightDecayScheduleState(count=increment(state.count))

    def update_fixed(h, updates, state, params=None):
        return decayed(h["weight_decay"], updates, params), state

    def update_none(h, updates, state, params=None):
        require(params)
        return updates, state

    if callable(weight_decay):
        update = composed(update_scheduled, [weight_decay])
    elif isinstance(weight_decay, (int, float)) and weight_decay == 0:
        update = HyperparamFunction(update_none, {})
    else:
        update = HyperparamFunction(update_fixed, {"weight_decay": weight_decay})
    transform = GradientTransformation(init, update)
    return transform if mask is None else masked(transform, mask)
