"""Several parameter trees, each with its own loss and optimizer, in one step (a GAN's
generator and discriminator)."""
from __future__ import annotations

from typing import Callable

import jax

from fnn._cpu_grad import value_and_grad
from fnn.optim.base import apply_updates
from fnn.precision import get_policy
from fnn.train.objective import objective_value
from fnn.train.programs import hyperparameters, with_hyperparameters
from fnn.train.step import TrainState, finite_checks
from fnn.validation import function, one_of

__all__ = ["multi_step", "is_engine_step"]


def is_engine_step(obj) -> bool:
    """Whether ``obj`` is a step in the engine's form that ``fit`` trains in place of an
    objective and optimizer: it has ``configured``, ``init`` and ``hyperparameters``
    (:func:`multi_step`'s step, :func:`fnn.train.gan_step`)."""
    return all(callable(getattr(obj, name, None))
               for name in ("configured", "init", "hyperparameters"))


def multi_step(losses: dict[str, Callable], optimizers: dict, *,
               order: str = "sequential") -> Callable:
    """One pure step that updates each named parameter tree with its own loss and optimizer.

    ``trees`` is a dict ``{name: params}``. Each ``losses[name]`` is an fnn objective over ALL
    the trees, ``(trees, state, batch, key, train) -> (loss, (state, metrics))``; tree
    ``name`` is moved by ``optimizers[name]`` (fnn.optim or optax) along the gradient of its
    own loss with respect to itself only (the other trees are constants in that gradient)::

        for name in losses (in dict order):
            g = d losses[name](trees, ...) / d trees[name]
            updates, opt_states[name] = optimizers[name].update(g, opt_states[name], trees[name])
            trees[name] = trees[name] + updates

    ``order='sequential'`` (default; Goodfellow et al. 2014, Algorithm 1 with k = 1): each loss
    sees the trees already updated by the losses before it in the dict (and the state they
    returned). ``order='simultaneous'``: every gradient is taken at the incoming trees and
    state, then all trees are updated (the returned state is the last loss's).

    Keys: loss i gets ``fold_in(key, i)``; callers derive ``key`` per step from one seed as
    ``fold_in(jax.random.key(seed), step)`` so a run is a function of its seed.

    Returns ``step(trees, opt_states, batch, key, state=None) -> (trees, opt_states, metrics)``
    (or ``(..., metrics, state)`` when ``state`` is given), jit-able and donation-safe;
    ``metrics`` holds ``{name}_loss`` and ``{name}_{metric}`` for every loss's metrics.
    ``step.init(trees)`` gives the initial ``opt_states`` ``{name: optimizers[name].init(...)}``;
    ``step.checked`` is the same step in the engine's form ``(ts, batch, key) -> (ts, metrics,
    finite)`` with ``ts = TrainState(trees, state, opt_states, step)``
    (:mod:`fnn.train.engine`).

    ``fnn.fit(step, trees, None, data, ...)`` trains it (resume, the NaN guard, progress,
    mesh, precision, hooks). For that the step carries ``step.hyperparameters()`` (the
    optimizers' numeric hyperparameters, ``{name: ...}``, runtime inputs of the compiled
    program) and ``step.configured(hp, precision=None)``: ``checked`` rebuilt with ``hp`` put
    into the optimizers and every loss computed under a precision policy
    (:func:`fnn.precision.cast_objective`); ``configured(step.hyperparameters())`` computes
    what ``checked`` computes.
    """
    if set(losses) != set(optimizers) or not losses:
        raise ValueError(f"multi_step: losses and optimizers must name the same non-empty set "
                         f"of parameter trees, got losses {sorted(losses)} and optimizers "
                         f"{sorted(optimizers)}")
    one_of("multi_step", "order", order, ("sequential", "simultaneous"))
    for name, fn in losses.items():
        function("multi_step", f"losses[{name!r}]", fn,
                 "(trees, state, batch, key, train) -> (loss, (state, metrics))")
    names = list(losses)

    def update(name, trees, opt_states, grads):
        updates, opt_states[name] = optimizers[name].update(grads, opt_states[name], trees[name])
        trees[name] = apply_updates(trees[name], updates)

    def checked(ts: TrainState, batch, key):
        trees, opt_states, s = dict(ts.params), dict(ts.opt_state), ts.model_state
        metrics, grads, totals = {}, {}, {}
        for i, name in enumerate(names):
            k = None if key is None else jax.random.fold_in(key, i)
            own = lambda p: losses[name]({**trees, name: p}, s, batch, k, True)
            (loss, (new_s, m)), grads[name] = value_and_grad(own, has_aux=True)(trees[name])
            totals[name] = metrics[f"{name}_loss"] = loss
            metrics.update({f"{name}_{k_}": v for k_, v in m.items() if k_ != "loss"})
            if order == "sequential":
                s = new_s
                update(name, trees, opt_states, grads[name])
        if order == "simultaneous":
            for name in names:
                update(name, trees, opt_states, grads[name])
            s = new_s
        return (TrainState(trees, s, opt_states, ts.step + 1), metrics,
                finite_checks(grads, totals, trees))

    def step(trees, opt_states, batch, key, state=None):
        missing = [n for n in names if n not in trees or n not in opt_states]
        if missing:
            raise ValueError(f"multi_step: trees and opt_states need entries {names}; missing "
                             f"{missing} (trees hold {sorted(trees)}, opt_states "
                             f"{sorted(opt_states)})")
        ts = TrainState(trees, {} if state is None else state, opt_states, 0)
        ts, metrics, _ = checked(ts, batch, key)
        out = (ts.params, ts.opt_state, metrics)
        return out if state is None else (*out, ts.model_state)

    def configured(hp: dict, precision=None) -> Callable:
        objects = with_hyperparameters(hp, **optimizers)
        policy = None if precision is None else get_policy(precision, who="multi_step")
        own = (losses if policy is None else
               {name: objective_value(fn, policy).cast for name, fn in losses.items()})
        return multi_step(own, {name: objects[name] for name in names}, order=order).checked

    step.init = lambda trees: {n: optimizers[n].init(trees[n]) for n in names}
    step.names = tuple(names)
    step.checked = checked
    step.hyperparameters = lambda: hyperparameters(**optimizers)
    step.configured = configured
    return step
