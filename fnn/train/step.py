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
from fnn.precision import get_policy
from fnn.train.objective import objective_value

__all__ = ["TrainState", "train_step", "checked_step", "finite_checks", "check_sites",
           "skip_failed"]


class TrainState(NamedTuple):
    """Everything a training step changes: params, model state, optimizer state, step count,
    and the loss scale of a loss-scaled (float16) run.

    The step count ``step`` (int32 scalar) numbers the steps from 0; step ``t`` draws its key
    as ``fold_in(step_key, t)``. ``loss_scale``: a :class:`fnn.precision.LossScaleState` when
    the step scales the loss (:meth:`create` starts it), else None.
    """
    params: Any
    model_state: Any
    opt_state: Any
    step: jax.Array
    loss_scale: Any = None

    @classmethod
    def create(cls, params, optimizer, model_state=None, *, precision=None) -> "TrainState":
        """The state before the first step: ``TrainState(params, model_state or {},
        optimizer.init(params), 0)``; with a ``precision`` policy (or its string) the params
        are cast to its param dtype first and a loss-scaled policy's scale starts at
        ``policy.loss_scaling.init()``."""
        policy = None if precision is None else get_policy(precision, who="TrainState.create")
        scaling = None if policy is None else policy.loss_scaling
        if policy is not None:
            params = policy.cast_to_param(params)
        return cls(params, {} if model_state is None else model_state, optimizer.init(params),
                   jnp.zeros((), jnp.int32), None if scaling is None else scaling.init())


def skip_failed(ok, new: TrainState, old: TrainState) -> TrainState:
    """The NaN guard's skip, the one place a failed step is undone: ``new`` where the bool
    scalar ``ok`` holds, else ``new`` with ``old``'s params, model state and optimizer state
    (the step count and the loss scale, halved by an overflowing step, go on)."""
    params, model_state, opt_state = jax.tree.map(
        lambda a, b: jnp.where(ok, a, b), (new.params, new.model_state, new.opt_state),
        (old.params, old.model_state, old.opt_state))
    return new._replace(params=params, model_state=model_state, opt_state=opt_state)


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


def checked_step(objective: Callable, optimizer, *, precision=None, **grad_options) -> Callable:
    """The engine's step for one parameter tree:

        (loss, (state, metrics)), g = value_and_grad(objective)(params, state, batch, key, True)
        updates, opt_state = optimizer.update(g, opt_state, params);  params = params + updates

    Returns ``(ts, batch, key) -> (ts, metrics, finite)``: ``metrics`` is ``{'loss': loss,
    **metrics}`` (an objective's own ``loss`` metric, the data term, wins over the total), and
    ``finite`` the NaN guard's checks (:func:`finite_checks`). ``grad_options`` go to
    :func:`fnn._cpu_grad.value_and_grad`.

    ``objective`` may be a :class:`fnn.train.objective.TrainObjective` (``fit``'s, already
    cast; ``precision`` None or its own): its ``cast`` runs.

    ``precision``: a :class:`fnn.precision.Policy` (or its string): the objective runs under
    :func:`fnn.precision.cast_objective` (cast by :func:`fnn.train.objective.objective_value`);
    with loss scaling (float16) the gradient is that of ``scale * loss`` divided by
    ``scale``, and ``ts.loss_scale`` is adjusted by whether the step passed its finite checks
    (the engine's ``'skip'`` guard then undoes a failed step).
    """
    policy = None if precision is None else get_policy(precision, who="checked_step")
    value = objective_value(objective, policy)
    objective, policy = value.cast, value.policy
    scaling = None if policy is None else policy.loss_scaling

    def gradient(ts: TrainState, batch, key):
        """``(total, model_state, metrics, grads)`` of the objective at ``ts``."""
        grad = lambda f: value_and_grad(f, has_aux=True, **grad_options)(
            ts.params, ts.model_state, batch, key)
        if scaling is None:
            (total, (model_state, metrics)), grads = grad(
                lambda p, s, b, k: objective(p, s, b, k, True))
            return total, model_state, metrics, grads
        if ts.loss_scale is None:
            raise ValueError(f"checked_step: precision {policy} scales the loss, but the train "
                             f"state has no loss_scale; make the state with "
                             f"TrainState.create(params, optimizer, model_state, "
                             f"precision=policy)")

        def scaled(p, s, b, k):
            total, aux = objective(p, s, b, k, True)
            return ts.loss_scale.scale_loss(total), (total, aux)

        (_, (total, (model_state, metrics))), grads = grad(scaled)
        return total, model_state, metrics, ts.loss_scale.unscale(grads)

    def step(ts: TrainState, batch, key):
        total, model_state, metrics, grads = gradient(ts, batch, key)
        updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
        params = apply_updates(ts.params, updates)
        metrics = {"loss": total, **metrics}
        finite = finite_checks(grads, total, params)
        loss_scale = (ts.loss_scale if scaling is None
                      else scaling.adjust(ts.loss_scale, jnp.all(finite)))
        return TrainState(params, model_state, opt_state, ts.step + 1, loss_scale), metrics, finite

    return step


def train_step(objective: Callable, optimizer, *, precision=None) -> Callable:
    """The pure step ``(ts: TrainState, batch, key) -> (ts, metrics)``:

        g = d objective / d params;  updates, opt_state = optimizer.update(g, opt_state, params)
        params = params + updates;   step = step + 1

    Wrap it in ``jax.jit(step, donate_argnums=0)`` to run it alone (donation frees the old
    state's buffers: keep a copy of anything you still need); ``fit`` scans it. On the CPU
    backend the gradient's convolutions and max-pool scatters are computed in the forms
    XLA:CPU runs fast inside loops (:mod:`fnn._cpu_grad`).

    ``precision``: a :class:`fnn.precision.Policy` (or its string) the step computes under
    (:func:`checked_step`). With loss scaling (float16 compute) ``ts`` needs a loss scale
    (make it with ``TrainState.create(params, optimizer, state, precision=policy)``); a step whose gradient overflows changes
    nothing but the step count and the (halved) scale (:func:`skip_failed`).
    """
    checked = checked_step(objective, optimizer, precision=precision)
    skips = precision is not None and get_policy(precision).loss_scaling is not None

    def step(ts: TrainState, batch, key):
        new, metrics, finite = checked(ts, batch, key)
        if skips:
            new = skip_failed(jnp.all(finite), new, ts)
        return new, metrics

    return step
