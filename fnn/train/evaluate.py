"""``evaluate``: an objective's mean metrics over a data set, in evaluation mode."""
from __future__ import annotations

from typing import Callable

import jax

from fnn.train.config import batch_size_for
from fnn.train.engine import compiled_evaluation
from fnn.train.programs import hyperparameters
from fnn.train.stream import HostBatches, is_stream, stream_mean_metrics
from fnn.validation import num_examples

__all__ = ["evaluate"]


def evaluate(objective: Callable, params, state, data, *, batch_size: int | None = None) -> dict:
    """Mean metrics of ``objective`` over ``data`` in evaluation mode (train=False, no key):

        metric = sum_b |b| * metric(b) / sum_b |b|

    ``data`` is arrays (a pytree with a leading example axis: one batch unless
    ``batch_size`` is given, then full batches plus the remainder) or a stream of batches
    (any other iterable, e.g. a generator; batches may differ in size). Returns
    ``{name: float}``; ``loss`` is the objective's total.
    """
    state = {} if state is None else state
    check_data = getattr(objective, "check_data", None)
    if is_stream(data):
        batches = HostBatches(data, "evaluate", fixed_batch=False)
        if check_data is not None:
            check_data(params, state, batches.first, "evaluate")
        return {k: float(v) for k, v in stream_mean_metrics(objective, params, state,
                                                            batches).items()}
    n = num_examples("evaluate", data)
    batch_size = batch_size_for("evaluate", batch_size, n)
    data = jax.tree.map(jax.numpy.asarray, data)
    if check_data is not None:
        check_data(params, state, data, "evaluate")
    program = compiled_evaluation(objective, params, state, data, batch_size)
    metrics = program(hyperparameters(objective=objective), params, state, data)
    return {k: float(v) for k, v in metrics.items()}
