"""The train step: one gradient update of a parameter tree, in the form the engine scans.

Every trainer hands the engine a step of one shape::

    step(ts: TrainState, batch, key) -> (ts, metrics, finite)

``finite`` is a bool vector for the NaN guard: one entry per inexact gradient leaf, the loss,
and one per inexact updated parameter leaf (:func:`check_sites` names them). Unused entries
are dead code that XLA removes.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from fnn._cpu_grad import value_and_grad
from fnn.optim.base import apply_updates

__all__ = ["TrainState", "train_step", "checked_step", "finite_checks", "check_sites"]


class TrainState(NamedTuple):
    """Everything a training step changes: params, model state, optimizer state, step count.

    The step count ``step`` (int32 scalar) numbers the steps from 0; step ``t`` draws its key
    as ``fold_in(step_key, t)``.
    """
    params: Any
    model_state: Any
    opt_state: Any
    step: jax.Array


def _inexact(tree) -> list:
    return [a for a in jax.tree.leaves(tree) if jnp.issubdtype(a.dtype, jnp.inexact)]


def finite_checks(grads, loss, params) -> jax.Array:
    """``[isfinite(g) for each inexact leaf of grads] + [isfinite(loss) for each loss leaf] +
    [isfinite(p) for each inexact leaf of params]`` as one bool vector, in flattening order
    (:func:`check_sites` gives the matching names)."""
    return jnp.stack([jnp.all(jnp.isfinite(a)) for a in
                      [*_inexact(grads), *jax.tree.leaves(loss), *_inexact(params)]])


def check_sites(params, loss=None) -> list[tuple[str, str | None]]:
    """What each entry of :func:`finite_checks` checks: ``(kind, path)`` pairs with ``kind``
    one of ``'gradient'``, ``'loss'``, ``'parameter'`` and ``path`` the leaf's key path
    (``"['dense_0']['w']"``; for a single scalar loss None). ``loss`` is the structure of the
    loss (None: one scalar)."""
    paths = [jax.tree_util.keystr(p) for p, a in jax.tree_util.tree_flatten_with_path(params)[0]
             if jnp.issubdtype(a.dtype, jnp.inexact)]
    loss_paths = [None] if loss is None else [
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(loss)[0]]
    return ([("gradient", p) for p in paths] + [("loss", p) for p in loss_paths]
            + [("parameter", p) for p in paths])


def checked_step(objective: Callable, optimizer, **grad_options) -> Callable:
    """The engine's step for one parameter tree:

        (loss, (state, metrics)), g = value_and_grad(objective)(params, state, batch, key, True)
        updates, opt_state = optimizer.update(g, opt_state, params);  params = params + updates

    Returns ``(ts, batch, key) -> (ts, metrics, finite)``: ``metrics`` is ``{'loss': loss,
    **metrics}`` (an objective's own ``loss`` metric, the data term, wins over the total), and
    ``finite`` the NaN guard's checks (:func:`finite_checks`). ``grad_options`` go to
    :func:`fnn._cpu_grad.value_and_grad`.
    """

    def step(ts: TrainState, batch, key):
        training = lambda p, s, b, k: objective(p, s, b, k, True)
        (total, (model_state, metrics)), grads = value_and_grad(
            training, has_aux=True, **grad_options)(ts.params, ts.model_state, batch, key)
        updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
        params = apply_updates(ts.params, updates)
        metrics = {"loss": total, **metrics}
        return (TrainState(params, model_state, opt_state, ts.step + 1), metrics,
                finite_checks(grads, total, params))

    return step


def train_step(objective: Callable, optimizer) -> Callable:
    """The pure step ``(ts: TrainState, batch, key) -> (ts, metrics)``:

        g = d objective / d params;  updates, opt_state = optimizer.update(g, opt_state, params)
        params = params + updates;   step = step + 1

    Wrap it in ``jax.jit(step, donate_argnums=0)`` to run it alone (donation frees the old
    state's buffers: keep a copy of anything you still need); ``fit`` scans it. On the CPU
    backend the gradient's convolutions and max-pool scatters are computed in the forms
    XLA:CPU runs fast inside loops (:mod:`fnn._cpu_grad`).
    """
    checked = checked_step(objective, optimizer)

    def step(ts: TrainState, batch, key):
        ts, metrics, _ = checked(ts, batch, key)
        return ts, metrics

    return step
