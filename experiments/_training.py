"""A training loop on fnn's epoch engine for the claim experiments (moved unchanged from
``experiments/_claims.py``, which #23 split by concept: the claim/check schema is
:mod:`fnn.app.claims`, the helpers :mod:`experiments._helpers`, the ``Choice`` layer
:mod:`experiments._choice`).

:func:`trainer` is a training loop on fnn's epoch engine (``fnn.train.engine.run_epochs``)
that returns the loss of every step and can be ``vmap``-ed over seeds, initialisations or
hyperparameters.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from fnn.train.engine import EpochLoop, epoch_keys, run_epochs
from fnn.train.step import TrainState, checked_step


# ----------------------------------------------------------------------------- training

def trainer(objective, make_optimizer: Callable[[Any], Any], *, n: int, batch_size: int | None,
            epochs: int, record_params: bool = False, evaluate: bool = False) -> Callable:
    """A pure ``train(params, state, data, hyper, key[, eval_data]) -> (params, state, out)``
    on the epoch engine (:mod:`fnn.train.engine`).

    ``make_optimizer(hyper)`` builds the optimizer (so ``hyper``, e.g. a learning rate, may be
    traced and vmapped). ``key`` is the run's base key: epoch ``e`` shuffles the ``n``
    examples with ``fold_in(fold_in(key, 0), e)`` and step ``t`` gets ``fold_in(fold_in(key,
    1), t)``, as ``fit(seed=s)`` does with ``key = jax.random.key(s)``; every epoch runs ``n //
    batch_size`` steps (the last partial batch is dropped; ``batch_size=None`` is one
    full-batch step per epoch).

    ``out`` is the data loss of every step, shape ``(epochs, steps_per_epoch)``; with
    ``record_params`` or ``evaluate`` it is a dict: ``loss`` (that), ``params`` (the params
    after every step, leading axes (epochs, steps)), ``eval`` (the objective's loss on
    ``eval_data`` in evaluation mode after every epoch, shape (epochs,)). Wrap in
    ``jax.jit``/``jax.vmap``.
    """
    batch_size = n if batch_size is None else batch_size

    def train(params, state, data, hyper, key, eval_data=None):
        optimizer = make_optimizer(hyper)
        step = checked_step(objective, optimizer)
        if record_params:
            step = _recording_params(step)
        eval_size = jax.tree.leaves(eval_data)[0].shape[0] if evaluate else None
        loop = EpochLoop(step, batch_size, n, per_step=True, objective=objective,
                         val_batch_size=eval_size)
        ts = TrainState(params, state, optimizer.init(params), jnp.zeros((), jnp.int32))
        (ts, _), out = run_epochs(loop, (ts, None), jax.tree.map(jnp.asarray, data),
                                  eval_data if evaluate else None, epoch_keys(key), 0, epochs)
        if not (record_params or evaluate):
            return ts.params, ts.model_state, out["loss"]
        kept = {"loss": out["loss"]}
        if record_params:
            kept["params"] = out["params"]
        if evaluate:
            kept["eval"] = out["val_loss"]
        return ts.params, ts.model_state, kept

    return train


def _recording_params(step):
    """``step`` whose metrics also hold the params after the step (under ``'params'``)."""

    def recording(ts, batch, key):
        ts, metrics, finite = step(ts, batch, key)
        return ts, {**metrics, "params": ts.params}, finite

    return recording
