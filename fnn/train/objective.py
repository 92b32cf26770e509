"""Objectives: the contract between a model and the training engine.

An objective is a pure function ::

    objective(params, state, batch, key, train) -> (loss, (new_state, metrics))

where ``batch`` is any pytree of arrays with a leading batch axis (``(x, y)`` for supervised
learning, ``((x, mask), y)`` for masked sequences), ``key`` a PRNG key (None in evaluation)
and ``metrics`` a dict of scalars. :func:`supervised` builds the usual one from a network and
a loss.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from fnn import losses
from fnn.core import Layer, check_params
from fnn.optim.hyperparams import HyperparamFunction
from fnn.validation import local_values

__all__ = ["Objective", "supervised"]

Objective = Callable[..., tuple[jax.Array, tuple[Any, dict]]]


def supervised(net: Layer, loss: Callable = losses.softmax_cross_entropy, *, l2: float = 0.0,
               l1: float = 0.0, accuracy: bool | None = None) -> Objective:
    """The objective of supervised learning on ``batch = (x, y)``:

        L = loss(net(x), y) + l2 * 1/2 sum w^2 + l1 * sum |w|     (biases not penalised)

    ``x`` may be any input the network takes, e.g. ``(x, mask)`` for a masked recurrent net.
    Metrics: ``loss`` (the data term, as the notes print it), ``accuracy`` (default: on when
    ``loss`` is ``softmax_cross_entropy``).

    The objective carries ``check_data(params, state, data, who)``, which ``fit`` and
    ``evaluate`` call before compiling: ``data`` must be ``(x, y)``, the params and state must
    be those the network makes for ``x`` (:func:`fnn.check_params`: a stateful network needs
    its state), ``y`` must fit the loss (checked on shapes, without FLOPs), and integer labels
    must lie in ``[0, classes)``.

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
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"supervised: {arg} must be a finite number >= 0, got {v!r}")
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
    objective = HyperparamFunction(objective, penalties)
    objective.check_data = _data_checker(net, loss)
    objective.net = net
    return objective


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
