"""A training loop on fnn's one pure run for the claim experiments (moved unchanged from
``experiments/_claims.py``, which #23 split by concept: the claim/check schema is
:mod:`fnn.app.claims`, the helpers :mod:`experiments._helpers`, the ``Choice`` layer
:mod:`experiments._choice`).

:func:`trainer` is a training loop on fnn's one pure run (:func:`fnn.train.run`) that
returns the loss of every step and can be ``vmap``-ed over seeds, initialisations or
hyperparameters.
"""
from __future__ import annotations

from typing import Any, Callable

from fnn.train import TrainState, checked_step, run
from fnn.validation import num_examples


# ----------------------------------------------------------------------------- training

def trainer(objective, make_optimizer: Callable[[Any], Any], *, n: int, batch_size: int | None,
            epochs: int, record_params: bool = False, evaluate: bool = False) -> Callable:
    """A pure ``train(params, state, data, hyper, key[, eval_data]) -> (params, state, out)``:
    :func:`fnn.train.run` of ``checked_step(objective, make_optimizer(hyper))`` from
    ``TrainState.create(params, optimizer, state)``, keeping every step's metrics.

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
    ``jax.jit``/``jax.vmap``. ``data`` must hold ``n`` examples.
    """
    def train(params, state, data, hyper, key, eval_data=None):
        if num_examples("trainer", data) != n:
            raise ValueError(f"trainer: made for n={n} examples, the data have "
                             f"{num_examples('trainer', data)}")
        optimizer = make_optimizer(hyper)
        step = checked_step(objective, optimizer)
        if record_params:
            step = _recording_params(step)
        eval_size = num_examples("trainer(eval_data)", eval_data) if evaluate else None
        ts, out, _ = run(step, TrainState.create(params, optimizer, state), data, key,
                         epochs=epochs, batch_size=batch_size, per_step=True,
                         objective=objective, val_data=eval_data if evaluate else None,
                         val_batch_size=eval_size)
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
