"""Stochastic gradient descent with (heavy-ball or Nesterov) momentum."""
from typing import Any, NamedTuple, Optional

import jax

from fnn.optim import _validate
from fnn.optim._numerics import add, canonical_dtype, cast, zeros_like
from fnn.optim.base import GradientTransformation, chain, identity, scale_by_learning_rate
from fnn.optim.hyperparams import HyperparamFunction


class TraceState(NamedTuple):
    """The momentum buffer ("velocity"), one array per parameter."""

    trace: Any


def trace(decay, nesterov: bool = False, accumulator_dtype: Optional[Any] = None):
    """Momentum: accumulate a decaying sum of past updates.

    t_t = g_t + decay * t_{t-1}            (t_0 = 0)
    u_t = t_t                              (heavy ball)
    u_t = g_t + decay * t_t                (nesterov=True)

    Args:
      decay: momentum coefficient mu >= 0 (typically 0.9).
      nesterov: use the Nesterov look-ahead form above.
      accumulator_dtype: dtype to store the buffer in (None: the parameters' dtype).

    Hyperparameters: ``{'decay': decay}``.

    Differs from: nothing in torch.optim.SGD (dampening=0), whose buffer and Nesterov
    form are the same. Keras' SGD keeps v = mu v - lr g (learning rate inside the
    buffer): identical for a constant learning rate, different when it is scheduled.
    """
    _validate.nonnegative("trace", decay=decay)
    accumulator_dtype = canonical_dtype(accumulator_dtype)

    def init(params):
        return TraceState(trace=zeros_like(params, accumulator_dtype))

    def update(h, updates, state, params=None):
        del params
        decay = h["decay"]
        new_trace = jax.tree.map(lambda g, t: add(g, decay * t), updates, state.trace)
        if nesterov:
            updates = jax.tree.map(lambda g, t: add(g, decay * t), updates, new_trace)
        else:
            updates = new_trace
        return updates, TraceState(trace=cast(new_trace, accumulator_dtype))

    return GradientTransformation(init, HyperparamFunction(update, {"decay": decay}))


def sgd(learning_rate, momentum: Optional[Any] = None, nesterov: bool = False,
        accumulator_dtype: Optional[Any] = None):
    """Stochastic gradient descent, optionally with momentum.

    p_t = p_{t-1} - lr * g_t                       (momentum=None)
    p_t = p_{t-1} - lr * t_t,  t_t = g_t + mu t_{t-1}    (momentum=mu, see ``trace``)

    Args:
      learning_rate: lr, a number >= 0 or a schedule (step count -> lr).
      momentum: mu >= 0, or None for plain SGD.
      nesterov: Nesterov momentum, u_t = g_t + mu t_t.
      accumulator_dtype: dtype of the momentum buffer (None: the parameters' dtype).

    Differs from: torch.optim.SGD(weight_decay=wd) adds wd * p to the gradient (L2);
    get it with ``chain(add_decayed_weights(wd), sgd(lr, momentum))``.
    """
    _validate.nonnegative("sgd", learning_rate=learning_rate, momentum=momentum)
    if momentum is None:
        direction = identity()
    else:
        direction = trace(decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
    return chain(direction, scale_by_learning_rate(learning_rate))
