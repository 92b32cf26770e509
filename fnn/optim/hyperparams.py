"""Hyperparameters as runtime values: lift an optimizer's numbers out, feed them back in.

Every number an fnn optimizer, schedule or objective computes with (learning rate, betas,
eps, weight decay, clipping threshold, schedule values, penalty weights) is held in ONE
place: a :class:`HyperparamFunction`, a function of its numbers ::

    f(*args) = rule(hyperparams, *args)

A transformation's ``update`` is such a function, a schedule is one, ``fnn.supervised``'s
objective is one. ``rule`` holds the formula and the static options (nesterov, which
transforms are chained, integer step counts); ``hyperparams`` is a pytree of numbers. So ::

    h = hyperparams_of(opt)                  # e.g. ({'b1': Decay(0.9, 0.1), ...}, {'step_size': -0.001})
    step = jax.jit(lambda h, g, s, p: with_hyperparams(opt, h).update(g, s, p))
    step(jax.tree.map(jnp.asarray, h), grads, state, params)

gives the same numbers, bit for bit, as ``opt.update``; and any other ``adam(lr)`` reuses the
compiled ``step``. Numbers derived on the host (``1 - b1``, ``sign * lr``, ``end / peak``) are
leaves of their own, computed in Python as before, so that moving them into the program
changes no bit. Composites (``chain``, ``masked``, a schedule as a learning rate) hold the
trees of their parts, so the tree mirrors how the optimizer was built.

Objects outside this protocol (optax transformations, user functions) have no
hyperparameters: ``hyperparams_of`` gives ``{}`` and ``with_hyperparams`` returns them as
they are.
"""
import copy
from typing import Any, Callable, NamedTuple

import jax

__all__ = ["HyperparamFunction", "Decay", "decay", "hyperparams_of", "with_hyperparams",
           "composed"]


class HyperparamFunction:
    """A function of runtime numbers: ``f(*args, **kw) = rule(hyperparams, *args, **kw)``.

    Args:
      rule: ``rule(hyperparams, *args, **kw)``, the formula; everything it closes over is
        static structure (flags, other functions, integer step counts).
      hyperparams: a pytree whose leaves are numbers (Python floats/ints on construction,
        jax scalars or tracers after ``with_hyperparams``).

    Attributes set on an instance (an objective's ``check_data``, ``net``) are kept by
    :func:`with_hyperparams`.
    """

    def __init__(self, rule: Callable, hyperparams: Any):
        self.rule = rule
        self.hyperparams = hyperparams

    def __call__(self, *args, **kwargs):
        return self.rule(self.hyperparams, *args, **kwargs)

    def __repr__(self):
        name = getattr(self.rule, "__qualname__", repr(self.rule))
        return f"HyperparamFunction({name}, {self.hyperparams!r})"


class Decay(NamedTuple):
    """A decay rate of a moving average and its complement, both hyperparameter leaves.

    ``complement`` is ``1 - rate`` computed on the host in float64 (as the formulas always
    did), not in the program's precision: ``1 - float32(0.9)`` is not ``float32(1 - 0.9)``.
    """

    rate: Any
    complement: Any


def decay(rate) -> Decay:
    """``Decay(rate, 1 - rate)``, the two numbers an exponential moving average uses."""
    return Decay(rate, 1 - rate)


def _is_transformation(obj) -> bool:
    """A GradientTransformation (fnn's or optax's): a NamedTuple with ``init`` and ``update``."""
    return isinstance(obj, tuple) and hasattr(obj, "_replace") and hasattr(obj, "update")


def hyperparams_of(obj) -> Any:
    """The pytree of numbers ``obj`` computes with.

    Args:
      obj: an fnn GradientTransformation (its ``update``'s numbers), a schedule or objective
        made by fnn (a :class:`HyperparamFunction`), or anything else.

    Returns:
      A pytree of numeric leaves (Python numbers as constructed); ``{}`` for an object
      outside the protocol (an optax optimizer, a plain function, a number).
    """
    if _is_transformation(obj):
        obj = obj.update
    if isinstance(obj, HyperparamFunction):
        return obj.hyperparams
    return {}


def with_hyperparams(obj, tree):
    """``obj`` with the leaves of ``tree`` in place of its numbers.

    Args:
      obj: as in :func:`hyperparams_of`.
      tree: a pytree with the structure of ``hyperparams_of(obj)``; its leaves may be
        Python numbers, jax scalars or tracers (weakly typed scalars, as ``jnp.asarray`` of a
        Python float gives, keep the parameters' dtype as the Python number did).

    Returns:
      The same kind of object (a GradientTransformation of the same class with a new
      ``update``; a new HyperparamFunction with the same rule and attributes). An object
      outside the protocol is returned unchanged.

    Raises:
      ValueError: if ``tree``'s structure differs from ``hyperparams_of(obj)``'s.
    """
    if _is_transformation(obj):
        if not isinstance(obj.update, HyperparamFunction):
            _check_structure(obj, {}, tree)
            return obj
        return obj._replace(update=with_hyperparams(obj.update, tree))
    if not isinstance(obj, HyperparamFunction):
        _check_structure(obj, {}, tree)
        return obj
    _check_structure(obj, obj.hyperparams, tree)
    new = copy.copy(obj)
    new.hyperparams = tree
    return new


def _check_structure(obj, own, tree):
    expected, given = jax.tree.structure(own), jax.tree.structure(tree)
    if expected != given:
        raise ValueError(f"with_hyperparams: tree must have the structure of "
                         f"hyperparams_of(obj) for {type(obj).__name__}, expected {expected}, "
                         f"got {given}")


def composed(rule: Callable, parts) -> HyperparamFunction:
    """A function built from ``parts`` (transformations, schedules, anything): its
    hyperparameters are the tuple of the parts' trees, and ``rule(parts, *args)`` is called
    with the parts rebuilt from them.

    This is how ``chain``, ``masked`` and a schedule used as a learning rate compose: one
    mechanism, so a composite's tree is the tuple of its parts' trees.
    """
    parts = tuple(parts)

    def rebuilt(trees, *args, **kwargs):
        return rule(tuple(with_hyperparams(p, t) for p, t in zip(parts, trees)), *args,
                    **kwargs)

    rebuilt.__qualname__ = getattr(rule, "__qualname__", "composed")
    return HyperparamFunction(rebuilt, tuple(hyperparams_of(p) for p in parts))
