"""Run several optimizers on the same problem from the same start and compare them.

A :class:`Problem` is a deterministic loss over a params pytree and its starting point.
:func:`compare` trains a copy with each optimizer (one compiled ``lax.scan`` each), records
the loss and params after every step, and reports, for paired implementations of the same
rule (fnn's and optax's, say), the largest parameter difference at every step.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn import validation
from fnn.optim.base import apply_updates

__all__ = ["Problem", "Comparison", "compare", "quadratic", "rosenbrock"]


class Problem(NamedTuple):
    """``loss(params) -> scalar`` and the starting ``params``."""
    name: str
    loss: Callable[[Any], jax.Array]
    init: Any


class Comparison(NamedTuple):
    """What :func:`compare` measured.

    losses: ``{name: (steps + 1,)}`` loss before the first step and after every step.
    trajectories: ``{name: params pytree with a leading (steps + 1) axis}``.
    max_param_diff: ``{"a vs b": (steps + 1,)}``, max over leaves and elements of |a - b|.
    seconds_per_step: ``{name: float}``, compiled steady-state time per step.
    """
    losses: dict
    trajectories: dict
    max_param_diff: dict
    seconds_per_step: dict


def quadratic(condition: float = 20.0, start=(-4.0, 1.5)) -> Problem:
    """The ill-conditioned bowl f(x, y) = 1/2 (x^2 + condition y^2): a narrow valley along x,
    where plain gradient descent oscillates across y while it crawls along x."""
    return Problem("quadratic",
                   lambda p: 0.5 * (p["xy"][0] ** 2 + condition * p["xy"][1] ** 2),
                   {"xy": jnp.asarray(start, jnp.float32)})


def rosenbrock(a: float = 1.0, b: float = 100.0, start=(-1.5, 2.0)) -> Problem:
    """Rosenbrock's banana f(x, y) = (a - x)^2 + b (y - x^2)^2, minimum 0 at (a, a^2)."""
    return Problem("rosenbrock",
                   lambda p: (a - p["xy"][0]) ** 2 + b * (p["xy"][1] - p["xy"][0] ** 2) ** 2,
                   {"xy": jnp.asarray(start, jnp.float32)})


def _trainer(problem: Problem, optimizer, steps: int):
    @jax.jit
    def train(params):
        def step(carry, _):
            params, state = carry
            grads = jax.grad(problem.loss)(params)
            updates, state = optimizer.update(grads, state, params)
            params = apply_updates(params, updates)
            return (params, state), (problem.loss(params), params)

        _, (losses, path) = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
        first = jax.tree.map(lambda a: a[None], params)
        return (jnp.concatenate([problem.loss(params)[None], losses]),
                jax.tree.map(lambda a, b: jnp.concatenate([a, b]), first, path))

    return train


def compare(optimizers: Mapping[str, Any], problem: Problem, *, steps: int = 200,
            pairs: Sequence[tuple[str, str]] = ()) -> Comparison:
    """Train ``problem.init`` with each optimizer for ``steps`` steps.

    Args:
      optimizers: ``{name: transformation}``; fnn's, optax's, anything with init/update.
      problem: the loss and the starting params (see :func:`quadratic`, :func:`rosenbrock`).
      steps: gradient steps per optimizer.
      pairs: ``(name_a, name_b)`` pairs whose params are compared after every step.

    Returns a :class:`Comparison` (NumPy arrays).
    """
    if not optimizers:
        raise ValueError("compare: give at least one optimizer")
    steps = validation.positive_int("compare", "steps", steps)
    for a, b in pairs:
        for name in (a, b):
            if name not in optimizers:
                raise ValueError(f"compare: pair ({a!r}, {b!r}) names {name!r}, which is not "
                                 f"among the optimizers {sorted(optimizers)}")
    losses, paths, seconds = {}, {}, {}
    for name, optimizer in optimizers.items():
        train = _trainer(problem, optimizer, steps)
        jax.block_until_ready(train(problem.init))             # compile
        start = time.perf_counter()
        loss, path = jax.block_until_ready(train(problem.init))
        seconds[name] = (time.perf_counter() - start) / steps
        losses[name], paths[name] = np.asarray(loss), jax.tree.map(np.asarray, path)
    diffs = {}
    for a, b in pairs:
        per_leaf = [np.abs(np.float64(x) - np.float64(y)).reshape(steps + 1, -1).max(axis=1)
                    for x, y in zip(jax.tree.leaves(paths[a]), jax.tree.leaves(paths[b]))]
        diffs[f"{a} vs {b}"] = np.max(np.stack(per_leaf), axis=0)
    return Comparison(losses, paths, diffs, seconds)
