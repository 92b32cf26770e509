"""The divergence warning: a training loss that stays finite but grows by orders of magnitude
(a learning rate far too large) is as wrong as a NaN, which the NaN guard catches; this
catches the finite kind, after training, from the history.

``fit`` warns (:class:`DivergenceWarning`) when the last epoch's mean training loss is more
than :data:`DIVERGENCE_FACTOR` times the loss of the initial params on the first batch
(evaluation mode). That loss is computed after training, and only for a run that looks
suspect (its last loss above :data:`SUSPECT_LOSS`, or above ``DIVERGENCE_FACTOR`` times its
lowest epoch loss), so a healthy run compiles nothing more. It is a warning, so Python's
warning filters switch it off: ``warnings.simplefilter("ignore", fnn.DivergenceWarning)``.
"""
from __future__ import annotations

import warnings

import jax
import numpy as np

from typing import Callable

from fnn.train.evaluate import evaluate

__all__ = ["DIVERGENCE_FACTOR", "SUSPECT_LOSS", "DivergenceWarning", "initial_loss",
           "warn_if_diverged"]

DIVERGENCE_FACTOR = 1e3   # three orders of magnitude over the initial loss
SUSPECT_LOSS = 100.0      # a last loss above this is compared with the initial loss


class DivergenceWarning(RuntimeWarning):
    """The training loss grew by orders of magnitude: the run diverged (finite values)."""


def initial_loss(objective, params, state, example, batch_size: int) -> float | None:
    """The objective's loss at ``params`` on the first ``batch_size`` examples of
    ``example`` (evaluation mode); None with several processes (the check is skipped there)."""
    if jax.process_count() > 1:
        return None
    first = jax.tree.map(lambda a: a[:batch_size], example)
    return evaluate(objective, params, first, model_state=state)["loss"]


def warn_if_diverged(history: dict, reference: Callable[[], float | None], *,
                     factor: float = DIVERGENCE_FACTOR) -> None:
    """Warn when the last epoch's ``history['loss']`` exceeds ``factor * |reference()|``
    (``reference`` is called only for a suspect run, see the module docstring)."""
    loss = np.asarray(history.get("loss", ()), np.float64)
    if not loss.size or not np.all(np.isfinite(loss)):
        return   # none, or non-finite: the NaN guard's warning covers that
    last = float(loss[-1])
    if not (last > SUSPECT_LOSS or last > factor * np.min(np.abs(loss))):
        return
    reference = reference()
    if reference is None or not np.isfinite(reference):
        return
    if last > factor * abs(reference) and last > abs(reference) + 1e-6:
        warnings.warn(f"fit: the training loss diverged: {last:.4g} in the last epoch, "
                      f"{last / max(abs(reference), 1e-30):.2g} times the initial params' "
                      f"{reference:.4g} (warned above {factor:g} times). Lower the learning "
                      f"rate; on_nonfinite='raise' catches a run that goes on to NaN or inf",
                      DivergenceWarning, stacklevel=4)
