"""Wrappers around a transformation: ``masked`` (apply to some parameters only) and
``inject_hyperparams`` (hyperparameters live in the state and can change during training)."""
import functools
import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn.optim._numerics import common_dtype, increment
from fnn.optim.base import GradientTransformation
from fnn.optim.hyperparams import composed


class MaskedNode(NamedTuple):
    """Stands in for a masked-out parameter: an empty pytree node that tree maps skip."""


class MaskedState(NamedTuple):
    """State of the inner transformation (kept only for the unmasked parameters)."""

    inner_state: Any


def masked(inner, mask):
    """Apply ``inner`` to the parameters where ``mask`` is True; pass the rest through.

    u = inner(g) where mask is True, u = g elsewhere.

    Args:
      inner: the transformation to apply (fnn or optax).
      mask: a pytree of bools with the structure of the params (or a prefix of it), or a
        function params -> such a tree. It must not depend on traced values.

    Example: no weight decay on biases (the 1-D parameters) ::

        masked(add_decayed_weights(1e-4), lambda p: jax.tree.map(lambda x: x.ndim > 1, p))

    Hyperparameters: ``inner``'s, as a 1-tuple.
    """

    def resolve(tree):
        return mask(tree) if callable(mask) else mask

    def hide(tree, mask_tree):
        return jax.tree.map(lambda keep, x: x if keep else MaskedNode(), mask_tree, tree)

    def init(params):
        return MaskedState(inner_state=inner.init(hide(params, resolve(params))))

    def update(parts, updates, state, params=None):
        (inner,) = parts
        mask_tree = resolve(updates)
        hidden_params = None if params is None else hide(params, mask_tree)
        new_updates, inner_state = inner.update(hide(updates, mask_tree), state.inner_state,
                                                hidden_params)
        updates = jax.tree.map(lambda keep, new, old: new if keep else old,
                               mask_tree, new_updates, updates)
        return updates, MaskedState(inner_state=inner_state)

    return GradientTransformation(init, composed(update, [inner]))


class InjectHyperparamsState(NamedTuple):
    """Step count, current hyperparameter values, and the inner optimizer's state.

    ``hyperparams`` is a dict name -> array; assigning to it (for example
    ``state.hyperparams['learning_rate'] = 0.01``) changes the value used by later updates
    (for hyperparameters that were given as numbers, not schedules).
    """

    count: jax.Array  # int32 scalar
    hyperparams: dict
    inner_state: Any


def _float_dtype(params, override):
    """The dtype float hyperparameters are stored in: override, else the widest param dtype."""
    if override is not None:
        return override
    leaves = jax.tree.leaves(params)
    return common_dtype(*leaves) if leaves else jnp.asarray(0.0).dtype


def _to_array(value, dtype):
    """A hyperparameter as an array; floating values are cast to ``dtype``."""
    value = jnp.asarray(value)
    return value.astype(dtype) if jnp.issubdtype(value.dtype, jnp.floating) else value


def inject_hyperparams(inner_factory, static_args=(), hyperparam_dtype=None):
    """Make an optimizer whose numeric hyperparameters are part of its state.

    ``inject_hyperparams(adam)(learning_rate=0.1)`` behaves like ``adam(0.1)``, but the
    state exposes ``state.hyperparams['learning_rate']`` (and b1, b2, eps, ...), which can be
    read for logging or changed between steps. A hyperparameter given as a schedule
    (a callable of the step count) is evaluated at every step and stored there too.

    Args:
      inner_factory: a function returning a GradientTransformation (``adam``, ``sgd``, ...).
      static_args: names of arguments that are not hyperparameters even though they are
        callable or numeric (for example a ``mask`` function).
      hyperparam_dtype: dtype for float hyperparameters (default: the widest param dtype).

    Returns:
      A function with ``inner_factory``'s arguments that returns a GradientTransformation
      with state ``InjectHyperparamsState``. Its numbers already live in the state; its
      runtime hyperparameters (``fnn.optim.hyperparams_of``) are those of the schedules
      given as arguments, a tuple in argument order (``()`` when there are none).
    """
    static_args = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    unknown = static_args - set(signature.parameters)
    if unknown:
        raise ValueError(f"inject_hyperparams: static_args {sorted(unknown)} are not "
                         f"parameters of {inner_factory.__name__}{signature}")

    @functools.wraps(inner_factory)
    def make(*args, **kwargs):
        inner_factory(*args, **kwargs)  # validates the arguments now, not at the first step
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        fixed, numeric, schedules = {}, {}, {}
        for name, value in bound.arguments.items():
            if name in static_args or isinstance(value, bool):
                fixed[name] = value
            elif callable(value):
                schedules[name] = value
            elif isinstance(value, (int, float, np.ndarray, jax.Array)):
                numeric[name] = value
            else:
                fixed[name] = value

        def current(values, count, dtype, schedules):
            values = {name: _to_array(v, dtype) for name, v in values.items()}
            values.update({name: _to_array(s(count), dtype) for name, s in schedules.items()})
            return values

        def init(params):
            count = jnp.zeros([], jnp.int32)
            hyperparams = current(numeric, count, _float_dtype(params, hyperparam_dtype),
                                  schedules)
            inner_state = inner_factory(**fixed, **hyperparams).init(params)
            return InjectHyperparamsState(count, hyperparams, inner_state)

        def update(parts, updates, state, params=None):
            dtype = _float_dtype(params, hyperparam_dtype)
            hyperparams = current(state.hyperparams, state.count, dtype,
                                  dict(zip(schedules, parts)))
            inner = inner_factory(**fixed, **hyperparams)
            updates, inner_state = inner.update(updates, state.inner_state, params)
            return updates, InjectHyperparamsState(increment(state.count), hyperparams,
                                                   inner_state)

        return GradientTransformation(init, composed(update, schedules.values()))

    return make
