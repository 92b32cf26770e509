"""Objectives: the contract between a model and the training engine.

An objective is a pure function ::

    objective(params, state, batch, key, train) -> (loss, (new_state, metrics))

where ``batch`` is any pytree of arrays with a leading batch axis (``(x, y)`` for supervised
learning, ``((x, mask), y)`` for masked sequences), ``key`` a PRNG key (None in evaluation)
and ``metrics`` a dict of scalars. :func:`supervised` builds the usual one from a network and
a loss (a :class:`SupervisedObjective`, which also holds its network and its data check).

The trainers (``fit``, ``evaluate``, ``sweep``, :func:`fnn.train.checked_step`) use an
objective through ONE value, :class:`TrainObjective`, made by :func:`objective_value`: the
function, its data check (:func:`no_data_check` for an objective that brings none), its
network (if any) and the function cast once under the run's precision policy.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from fnn import losses, validation
from fnn.core import Layer, check_params
from fnn.optim.hyperparams import HyperparamFunction, hyperparams_of, with_hyperparams
from fnn.precision import cast_objective, get_policy
from fnn.validation import local_values

__all__ = ["Objective", "supervised", "SupervisedObjective", "TrainObjective",
           "objective_value", "no_data_check"]

Objective = Callable[..., tuple[jax.Array, tuple[Any, dict]]]


def supervised(net: Layer, loss: Callable = losses.softmax_cross_entropy, *, l2: float = 0.0,
               l1: float = 0.0, accuracy: bool | None = None) -> Objective:
    """The objective of supervised learning on ``batch = (x, y)``:

        L = loss(net(x), y) + l2 * 1/2 sum w^2 + l1 * sum |w|     (biases not penalised)

    ``x`` may be any input the network takes, e.g. ``(x, mask)`` for a masked recurrent net.
    Metrics: ``loss`` (the data term, as the notes print it), ``accuracy`` (default: on when
    ``loss`` is ``softmax_cross_entropy``).

    Returns a :class:`SupervisedObjective`, which holds ``net`` and ``check_data(params,
    state, data, who)``, the check ``fit``, ``evaluate`` and ``sweep`` run before compiling:
    ``data`` must be ``(x, y)``, the params and state must be those the network makes for
    ``x`` (:func:`fnn.check_params`: a stateful network needs its state), ``y`` must fit the
    loss (checked on shapes, without FLOPs), and integer labels must lie in ``[0, classes)``.

    Hyperparameters (``fnn.optim.hyperparams_of``): the penalty weights that are not zero,
    ``{'l2': l2, 'l1': l1}`` or a part of it; they are runtime values of the compiled
    program, so objectives differing only in a nonzero l2 share it. Whether a penalty is
    present (zero or not) is structure.
    """
    if not isinstance(net, Layer):
        raise TypeError(f"supervised: net must be an fnn Layer (e.g. fnn.serial(...)), got "
                        f"{type(net).__name__}")
    if not callable(loss):
        raise TypeError(f"supervised: loss must be a function (pred, target) -> scalar, e.g. "
                        f"fnn.losses.mse, got {loss!r}")
    for arg, v in (("l2", l2), ("l1", l1)):
        validation.number("supervised", arg, v, low=0)   # checked; the value is used as given
    if accuracy is None:
        accuracy = loss is losses.softmax_cross_entropy

    def objective(h, params, state, batch, key, train):
        x, y = batch
        out, state = net.apply(params, state, x, key=key, train=train)
        data_loss = loss(out, y)
        total = data_loss
        if "l2" in h:
            total = total + h["l2"] * losses.l2_penalty(params)
        if "l1" in h:
            total = total + h["l1"] * losses.l1_penalty(params)
        metrics = {"loss": data_loss}
        if accuracy:
            metrics["accuracy"] = losses.accuracy(out, y)
        return total, (state, metrics)

    penalties = {name: v for name, v in (("l2", l2), ("l1", l1)) if v}
    return SupervisedObjective(objective, penalties, net, _data_checker(net, loss))


class SupervisedObjective(HyperparamFunction):
    """:func:`supervised`'s objective: a function of its penalty weights
    (:class:`fnn.optim.HyperparamFunction`: ``f(*args) = rule(hyperparams, *args)``) that
    also holds its network ``net`` and its data check ``check_data(params, state, data,
    who)`` (kept by ``with_hyperparams`` and ``cast_objective``)."""

    def __init__(self, rule: Callable, hyperparams: Any, net: Layer, check_data: Callable):
        super().__init__(rule, hyperparams)
        self.net, self.check_data = net, check_data


def _data_checker(net: Layer, loss: Callable) -> Callable:
    checked: dict = {}  # shape signature -> number of outputs (shape checks run once each)

    def check_data(params, state, data, who):
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            got = f"{type(data).__name__} of {len(data)}" if isinstance(data, (tuple, list)) \
                else type(data).__name__
            raise ValueError(f"{who}: supervised data must be a pair (x, y), got {got}")
        x, y = data
        signature = (jax.tree.structure((params, state, x, y)),
                     tuple((np.shape(a), str(a.dtype)) for a in jax.tree.leaves((params, state, x, y))))
        if signature not in checked:
            check_params(net, jax.tree.map(lambda a: tuple(np.shape(a)[1:]), x), params, state,
                         who=who)
            spec = lambda t: jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), t)
            out, logits = jax.eval_shape(
                lambda p, s, x, y: (lambda z: (loss(z, y), z))(net.apply(p, s, x)[0]),
                params, state, spec(x), spec(y))
            if np.ndim(out) != 0:
                raise ValueError(f"{who}: the loss must return a scalar, got shape {np.shape(out)}")
            if len(checked) >= 16:
                checked.pop(next(iter(checked)))
            checked[signature] = logits.shape[-1] if getattr(logits, "ndim", 0) else None
        classes = checked[signature]
        if (loss is losses.softmax_cross_entropy and classes
                and jnp.issubdtype(y.dtype, jnp.integer)):
            labels = local_values(y)
            if labels.size and (labels.min() < 0 or labels.max() >= classes):
                raise ValueError(f"{who}: integer labels must lie in [0, {classes}) for a network "
                                 f"with {classes} outputs, got values from {labels.min()} to "
                                 f"{labels.max()}")

    return check_data


def no_data_check(params, state, data, who) -> None:
    """The null data check, of an objective that brings none: every ``data`` passes."""


@dataclasses.dataclass(frozen=True)
class TrainObjective:
    """An objective as the trainers use it (made by :func:`objective_value`, the one place):

    * ``fn``: the objective as given, ``(params, state, batch, key, train) -> (loss, (state,
      metrics))``, its runtime hyperparameters inside (:meth:`hyperparameters`);
    * ``policy``: the precision policy it runs under (None: as given);
    * ``cast``: ``fn`` under ``policy`` (:func:`fnn.precision.cast_objective`; ``fn`` itself
      without one), cast once, with ``fn``'s hyperparameters;
    * ``check_data(params, state, data, who)``: the objective's data check, called before
      compiling (:func:`no_data_check` when it brings none);
    * ``net``: the network of a :class:`SupervisedObjective`, else None.

    Equal, and hashed, by ``fn`` (its identity) and ``policy`` only, the rest being made from
    them: so the compile cache's remembered keys see a rebuilt value of the same objects as
    the same (:func:`fnn.train.programs.remembered`)."""
    fn: Callable
    policy: Any
    cast: Callable = dataclasses.field(compare=False, repr=False)
    check_data: Callable = dataclasses.field(default=no_data_check, compare=False, repr=False)
    net: Any = dataclasses.field(default=None, compare=False, repr=False)

    def hyperparameters(self) -> Any:
        """``fn``'s runtime hyperparameters (``fnn.optim.hyperparams_of``; ``{}``: none)."""
        return hyperparams_of(self.fn)

    def with_hyperparameters(self, hp) -> "TrainObjective":
        """The value with the (traced) hyperparameters ``hp`` in ``fn`` and ``cast`` (no new
        cast: the cast function is a function of its hyperparameters too)."""
        if not hp:
            return self
        return dataclasses.replace(self, fn=with_hyperparams(self.fn, hp),
                                   cast=with_hyperparams(self.cast, hp))


def objective_value(objective, policy=None) -> TrainObjective:
    """The :class:`TrainObjective` of ``objective`` under the precision ``policy`` (a
    :class:`fnn.precision.Policy`, its string, or None): the one place an objective is cast
    and its data check found (a :class:`SupervisedObjective`'s, else :func:`no_data_check`).
    A ``TrainObjective`` comes back as it is (``policy`` None or its own)."""
    policy = None if policy is None else get_policy(policy, who="objective_value")
    if isinstance(objective, TrainObjective):
        if policy is not None and policy != objective.policy:
            raise ValueError(f"objective_value: the objective runs under precision "
                             f"{objective.policy}; it cannot be cast again to {policy}")
        return objective
    supervised_ = isinstance(objective, SupervisedObjective)
    return TrainObjective(
        objective, policy, objective if policy is None else cast_objective(objective, policy),
        objective.check_data if supervised_ else no_data_check,
        objective.net if supervised_ else None)
