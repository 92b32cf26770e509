"""``evaluate``: an objective's mean metrics over a data set, in evaluation mode."""
from __future__ import annotations

from typing import Callable

import jax

from fnn.train.config import batch_size_for
from fnn.train.engine import compiled_evaluation
from fnn.train.objective import objective_value
from fnn.train.programs import hyperparameters
from fnn.train.stream import HostBatches, is_stream, stream_mean_metrics
from fnn.validation import num_examples

__all__ = ["evaluate"]


def _state_and_data(model_state, args: tuple):
    """``(state, data)`` from ``evaluate``'s positional arguments after ``params``."""
    if len(args) == 1:
        return ({} if model_state is None else model_state), args[0]
    if len(args) == 2 and model_state is None:
        return ({} if args[0] is None else args[0]), args[1]
    raise TypeError(f"evaluate: expected evaluate(objective, params, data, model_state=..., "
                    f"batch_size=...) (or the older evaluate(objective, params, state, data)), "
                    f"got {len(args)} positional argument(s) after params"
                    + (" and model_state=" if model_state is not None else ""))


def evaluate(objective: Callable, params, *data_or_state_data, model_state=None,
             batch_size: int | None = None) -> dict:
    """Mean metrics of ``objective`` over ``data`` in evaluation mode (train=False, no key):

        metric = sum_b |b| * metric(b) / sum_b |b|

    Called as ``evaluate(objective, params, data, model_state=state)``, as ``fit`` is (the
    older positional form ``evaluate(objective, params, state, data)`` is accepted too).
    ``data`` is arrays (a pytree with a leading example axis: one batch unless
    ``batch_size`` is given, then full batches plus the remainder) or a stream of batches
    (a list of ``(x, y)`` batches or any other iterable, e.g. a generator; batches may
    differ in size). Returns ``{name: float}``; ``loss`` is the objective's total.
    """
    state, data = _state_and_data(model_state, data_or_state_data)
    check_data = objective_value(objective).check_data
    if is_stream(data):
        batches = HostBatches(data, "evaluate", fixed_batch=False)
        check_data(params, state, batches.first, "evaluate")
        batches.check_batch = lambda b, where: check_data(params, state, b, where)
        return {k: float(v) for k, v in stream_mean_metrics(objective, params, state,
                                                            batches).items()}
    n = num_examples("evaluate", data)
    batch_size = batch_size_for("evaluate", batch_size, n)
    data = jax.device_put(data)
    check_data(params, state, data, "evaluate")
    program = compiled_evaluation(objective, params, state, data, batch_size)
    metrics = program(hyperparameters(objective=objective), params, state, data)
    return {k: float(v) for k, v in metrics.items()}
