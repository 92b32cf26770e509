"""The NaN guard's report: which check failed first, where and when, as data (not a string)."""
from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["NonFiniteReport", "NonFiniteError"]


class NonFiniteReport(NamedTuple):
    """The first non-finite value the guard met.

    ``kind``: ``'gradient'``, ``'loss'`` or ``'parameter'`` (an updated parameter);
    ``path``: the leaf's key path (``"['dense_0']['w']"``; None for a single scalar loss);
    ``step``: the global step (from 0); ``epoch`` and ``minibatch`` (index within the epoch);
    ``steps_per_epoch``; ``loss``: the loss at that step.
    """
    kind: str
    path: str | None
    step: int
    epoch: int
    minibatch: int
    steps_per_epoch: int
    loss: float

    def describe(self) -> str:
        """``"gradient ['dense_0']['w'] at step 7 (epoch 1, minibatch 2 of 0..4"``."""
        where = (f"minibatch {self.minibatch} of 0..{self.steps_per_epoch - 1}"
                 if self.steps_per_epoch > 1 else "its full-batch step")
        what = self.kind if self.path is None else f"{self.kind} {self.path}"
        after = " after the update" if self.kind == "parameter" else ""
        return f"{what}{after} at step {self.step} (epoch {self.epoch}, {where}"


class NonFiniteError(FloatingPointError):
    """``fit(..., on_nonfinite='raise')`` met a non-finite loss, gradient or updated parameter.

    Attributes: ``report`` (a :class:`NonFiniteReport`) and, from it, ``kind``, ``path``,
    ``step``, ``epoch``, ``loss``; ``params``, ``model_state``, ``opt_state`` (the last finite
    ones: from before that step), ``history`` (complete epochs only) and ``checkpoint`` (the
    file they were saved to, or None).
    """

    def __init__(self, message: str, report: NonFiniteReport, *, params: Any, model_state: Any,
                 opt_state: Any, history: dict, checkpoint=None):
        super().__init__(message)
        self.report = report
        self.kind, self.path, self.step = report.kind, report.path, report.step
        self.epoch, self.loss = report.epoch, report.loss
        self.params, self.model_state, self.opt_state = params, model_state, opt_state
        self.history, self.checkpoint = history, checkpoint
