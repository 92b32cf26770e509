"""One training run as one pure function of arrays (:func:`run`): what ``sweep`` vmaps and the
experiments' trainers call; ``fit`` runs the same epochs (:mod:`fnn.train.engine`) between its
hooks::

    opt = fnn.optim.adam(1e-3)
    step = fnn.train.checked_step(fnn.supervised(net), opt)
    ts, metrics, _ = fnn.train.run(step, fnn.TrainState.create(params, opt), (x, y),
                                   jax.random.key(0), epochs=10, batch_size=32)
    # ts.params, metrics["loss"] == fnn.fit(fnn.supervised(net), params, opt, (x, y),
    #     epochs=10, batch_size=32, seed=0): .params, .history["loss"], bit for bit
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from fnn import validation as v
from fnn.sharding import SINGLE_DEVICE
from fnn.train.config import batch_size_for, validation_batch_size
from fnn.train.engine import GUARDS, EpochLoop, epoch_keys, initial_guard, run_epochs
from fnn.train.step import TrainState

__all__ = ["RunResult", "run"]

STEP = ("(ts, batch, key) -> (ts, metrics, finite), e.g. "
        "fnn.train.checked_step(objective, optimizer)")


class RunResult(NamedTuple):
    """What :func:`run` returns: the final :class:`~fnn.train.TrainState` ``ts``, the
    ``metrics`` ``{name: [epochs]}`` (``[epochs, steps]`` with ``per_step``; validation
    metrics ``val_<name>: [epochs]``) and the ``'raise'`` guard's
    :class:`~fnn.train.engine.Guard` (``bad_step`` -1: every step was finite; None for the
    other guards)."""
    ts: TrainState
    metrics: dict
    guard: Any


def run(step: Callable, ts: TrainState, data, key: jax.Array, *, epochs: int,
        batch_size: int | None = None, guard: str | None = None, per_step: bool = False,
        objective: Callable | None = None, val_data=None, val_batch_size: int | None = None,
        shuffle_blocks: int = 1, parallel=SINGLE_DEVICE, unroll: int = 1) -> RunResult:
    """Train ``ts`` for ``epochs`` epochs over ``data`` with ``step``: a pure function of arrays
    (jit-, vmap- and grad-able; the sizes and options are static), the run ``fit`` makes.

    Keys and shuffles (:mod:`fnn.train.engine`): ``(shuffle_key, step_key) = (fold_in(key, 0),
    fold_in(key, 1))``; epoch ``e`` (from 0) visits ``permutation(fold_in(shuffle_key, e), n)``
    cut into ``n // batch_size`` minibatches (the remainder dropped; ``shuffle_blocks = B > 1``:
    the block shuffle of :func:`fnn.train.engine.shuffled_batches`); step ``t = ts.step`` gets
    ``fold_in(step_key, t)``. A full-batch epoch (``batch_size`` None or ``n``) is one step on
    the whole, unshuffled data. ``fit(..., seed=s)`` is ``key = jax.random.key(s)``.

    Args:
      step: ``(ts, batch, key) -> (ts, metrics, finite)``: :func:`fnn.train.checked_step`, a
        :func:`fnn.train.multi_step`'s ``configured`` step, or any such function.
      ts: the :class:`~fnn.train.TrainState` to start from (``TrainState.create(params,
        optimizer, model_state)``); its ``step`` numbers the keys.
      data: a pytree of arrays with a common leading example axis of length ``n``.
      key: the run's base PRNG key.
      epochs: passes over ``data`` (a positive int; static).
      batch_size: minibatch size (``<= n``), or None for full batch.
      guard: the NaN guard, None, ``'raise'`` or ``'skip'`` (see :mod:`fnn.train.engine`;
        under ``'skip'`` the metrics gain ``skipped``).
      per_step: keep every step's metrics (``[epochs, steps]``) instead of their epoch means.
      objective, val_data, val_batch_size: the validation pass after each epoch: the
        example-weighted mean of ``objective``'s metrics in evaluation mode over ``val_data``
        in batches of ``val_batch_size`` (default ``min(n_val, max(batch_size, 1024))``, as
        ``fit``), reported as ``val_<name>: [epochs]``.
      shuffle_blocks: B of the block shuffle (B must divide ``n`` and ``batch_size``).
      parallel: the placement (:data:`fnn.sharding.SINGLE_DEVICE` or a
        :class:`fnn.sharding.DataParallel`, whose minibatches it constrains).
      unroll: epochs per iteration of the epoch scan.

    Returns a :class:`RunResult` ``(ts, metrics, guard)``.
    """
    loop = _loop(step, ts, data, key, epochs=epochs, batch_size=batch_size, guard=guard,
                 per_step=per_step, objective=objective, val_data=val_data,
                 val_batch_size=val_batch_size, shuffle_blocks=shuffle_blocks,
                 parallel=parallel, unroll=unroll)
    data = jax.tree.map(jnp.asarray, data)
    val_data = None if val_data is None else jax.tree.map(jnp.asarray, val_data)
    (ts, g), metrics = run_epochs(loop, (ts, initial_guard(loop)), data, val_data,
                                  epoch_keys(key), 0, epochs)
    return RunResult(ts, metrics, g)


def _loop(step, ts, data, key, *, epochs, batch_size, guard, per_step, objective, val_data,
          val_batch_size, shuffle_blocks, parallel, unroll) -> EpochLoop:
    """:func:`run`'s arguments checked (a ``TypeError``/``ValueError`` naming ``run``, the
    argument, what was expected and what was given) and made into its :class:`EpochLoop`."""
    v.function("run", "step", step, STEP)
    if not isinstance(ts, TrainState):
        raise TypeError(f"run: ts must be an fnn.train.TrainState, e.g. TrainState.create("
                        f"params, optimizer, model_state), got {type(ts).__name__}")
    v.prng_key("run", "key", key)
    v.positive_int("run", "epochs", epochs)
    n = v.num_examples("run", data)
    batch_size = batch_size_for("run", batch_size, n)
    v.one_of("run", "guard", guard, GUARDS)
    v.flag("run", "per_step", per_step)
    v.positive_int("run", "unroll", unroll)
    blocks = v.positive_int("run", "shuffle_blocks", shuffle_blocks)
    if blocks > 1 and batch_size < n and (n % blocks or batch_size % blocks):
        raise ValueError(f"run: shuffle_blocks={blocks} needs the example count ({n}) and the "
                         f"batch size ({batch_size}) to divide by {blocks}")
    if val_data is not None:
        if objective is None:
            raise ValueError("run: val_data needs objective= (the objective whose metrics "
                             "the validation pass reports)")
        v.function("run", "objective", objective,
                   "(params, state, batch, key, train) -> (loss, (state, metrics))")
        n_val = v.num_examples("run(val_data)", val_data)
        val_batch_size = (validation_batch_size(n_val, batch_size) if val_batch_size is None
                          else v.positive_int("run", "val_batch_size", val_batch_size))
    return EpochLoop(step, batch_size, n, guard, per_step, objective=objective,
                     val_batch_size=val_batch_size, unroll=unroll, shuffle_blocks=blocks,
                     parallel=parallel)
