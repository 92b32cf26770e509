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

__all__ = ["multi_step", "MultiStep", "is_engine_step"]


def is_engine_step(obj) -> bool:
    """Whether ``obj`` is a step in the engine's form that ``fit`` trains in place of an
    objective and optimizer: it has ``configured``, ``init`` and ``hyperparameters``
    (:func:`multi_step`'s step, :func:`fnn.train.gan_step`)."""
    return all(callable(getattr(obj, name, None))
               for name in ("configured", "init", "hyperparameters"))


def multi_step(losses: dict[str, Callable], optimizers: dict, *,
               order: str = "sequential") -> "MultiStep":
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

    Returns a :class:`MultiStep`, ``step(trees, opt_states, batch, key, state=None) -> (trees,
    opt_states, metrics)`` (or ``(..., metrics, state)`` when ``state`` is given), jit-able
    and donation-safe;
    ``metrics`` holds ``{name}_loss`` and ``{name}_{metric}`` for every loss's metrics.
    ``step.init(trees)`` gives the initial ``opt_states`` ``{name: optimizers[name].init(...)}``;
    ``step.checked`` is the same step in the engine's form ``(ts, batch, key) -> (ts, metrics,
    finite)`` with ``ts = TrainState(trees, state, opt_states, step)``
    (:mod:`fnn.train.engine`).

    ``fnn.fit(step, trees, None, data, ...)`` trains it (resume, the NaN guard, progress,
    mesh, precision, hooks). For that the step has ``step.hyperparameters()`` (the
    optimizers' numeric hyperparameters, ``{name: ...}``, runtime inputs of the compiled
    program) and ``step.configured(hp, precision=None)``: ``checked`` rebuilt with ``hp`` put
    into the optimizers and every loss computed under a precision policy
    (:func:`fnn.train.objective.objective_value`); ``configured(step.hyperparameters())`` computes
    what ``checked`` computes.
    """
    return MultiStep(losses, optimizers, order)


class MultiStep:
    """:func:`multi_step`'s step: ``step(trees, opt_states, batch, key, state=None)``, with
    ``checked`` (the engine's form), ``init``, ``names``, ``hyperparameters`` and
    ``configured`` (see :func:`multi_step`). Compared by identity (the compile cache
    remembers a step's program by it)."""

    def __init__(self, losses: dict[str, Callable], optimizers: dict, order: str):
        if set(losses) != set(optimizers) or not losses:
            raise ValueError(f"multi_step: losses and optimizers must name the same non-empty "
                             f"set of parameter trees, got losses {sorted(losses)} and "
                             f"optimizers {sorted(optimizers)}")
        one_of("multi_step", "order", order, ("sequential", "simultaneous"))
        for name, fn in losses.items():
            function("multi_step", f"losses[{name!r}]", fn,
                     "(trees, state, batch, key, train) -> (loss, (state, metrics))")
        self.losses, self.optimizers, self.order = losses, optimizers, order
        self.names = tuple(losses)

    def __repr__(self) -> str:
        return f"multi_step({', '.join(self.names)}; order={self.order!r})"

    def __call__(self, trees, opt_states, batch, key, state=None):
        missing = [n for n in self.names if n not in trees or n not in opt_states]
        if missing:
            raise ValueError(f"multi_step: trees and opt_states need entries "
                             f"{list(self.names)}; missing {missing} (trees hold "
                             f"{sorted(trees)}, opt_states {sorted(opt_states)})")
        ts = TrainState(trees, {} if state is None else state, opt_states, 0)
        ts, metrics, _ = self.checked(ts, batch, key)
        out = (ts.params, ts.opt_state, metrics)
        return out if state is None else (*out, ts.model_state)

    def init(self, trees) -> dict:
        """The initial optimizer states ``{name: optimizers[name].init(trees[name])}``."""
        return {n: self.optimizers[n].init(trees[n]) for n in self.names}

    def hyperparameters(self) -> dict:
        """The optimizers' runtime hyperparameters ``{name: ...}``."""
        return hyperparameters(**self.optimizers)

    def configured(self, hp: dict, precision=None) -> Callable:
        """``checked`` with the hyperparameters ``hp`` put into the optimizers and every loss
        computed under ``precision`` (:func:`fnn.train.objective.objective_value`)."""
        objects = with_hyperparameters(hp, **self.optimizers)
        policy = None if precision is None else get_policy(precision, who="multi_step")
        own = (self.losses if policy is None else
               {name: objective_value(fn, policy).cast for name, fn in self.losses.items()})
        return MultiStep(own, {name: objects[name] for name in self.names}, self.order).checked

    def checked(self, ts: TrainState, batch, key):
        """The engine's form: ``(ts, batch, key) -> (ts, metrics, finite)``."""
        trees, opt_states, state = dict(ts.params), dict(ts.opt_state), ts.model_state
        metrics, grads, totals = {}, {}, {}
        for i, name in enumerate(self.names):
            k = None if key is None else jax.random.fold_in(key, i)
            loss, new_state, own_metrics, grads[name] = self.gradient(name, trees, state,
                                                                      batch, k)
            totals[name] = metrics[f"{name}_loss"] = loss
            metrics.update({f"{name}_{m}": v for m, v in own_metrics.items() if m != "loss"})
            if self.order == "sequential":
                state = new_state
                self.update(name, trees, opt_states, grads[name])
        if self.order == "simultaneous":
            for name in self.names:
                self.update(name, trees, opt_states, grads[name])
            state = new_state
        return (TrainState(trees, state, opt_states, ts.step + 1), metrics,
                finite_checks(grads, totals, trees))

    def gradient(self, name: str, trees: dict, state, batch, key):
        """``(loss, state, metrics, grads)`` of ``losses[name]`` with respect to
        ``trees[name]`` alone (the other trees constants)."""
        own = lambda p: self.losses[name]({**trees, name: p}, state, batch, key, True)
        (loss, (new_state, metrics)), grads = value_and_grad(own, has_aux=True)(trees[name])
        return loss, new_state, metrics, grads

    def update(self, name: str, trees: dict, opt_states: dict, grads) -> None:
        """Move ``trees[name]`` (and ``opt_states[name]``) by its optimizer, in place."""
        updates, opt_states[name] = self.optimizers[name].update(grads, opt_states[name],
                                                                 trees[name])
        trees[name] = apply_updates(trees[name], updates)
