"""Early stopping: the rule (:class:`EarlyStopping`, what the user passes to ``fit``) and its
running state (:class:`EarlyStopper`, what ``fit`` keeps and checkpoints)."""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn._names import did_you_mean

__all__ = ["EarlyStopping", "EarlyStopper"]


class EarlyStopping(NamedTuple):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``mode='min'`` for losses, ``'max'`` for accuracies; ``restore_best`` returns the params
    (and model state) of the best epoch instead of the last. An epoch improves when
    ``sign * (best - value) > min_delta`` with ``sign = +1`` for 'min', -1 for 'max'.
    """
    monitor: str = "val_loss"
    patience: int = 10
    min_delta: float = 0.0
    mode: str = "min"
    restore_best: bool = True


class EarlyStopper:
    """The state of one :class:`EarlyStopping` rule over a run: the best value so far, the
    epochs since it, the best ``(params, model_state)`` (with ``restore_best``) and whether
    to stop. ``state()`` / ``EarlyStopper(rule, **state)`` round-trip it through a checkpoint's
    metadata (the best trees are stored beside it)."""

    def __init__(self, rule: EarlyStopping, best_value: float | None = None, since_best: int = 0,
                 best: Any = None):
        self.rule, self.best_value, self.since_best, self.best = rule, best_value, since_best, best

    @property
    def should_stop(self) -> bool:
        return self.since_best >= self.rule.patience

    def update(self, row: dict, ts) -> bool:
        """Account for one epoch's metrics ``row`` (after which the train state is ``ts``);
        returns whether to stop."""
        value = row.get(self.rule.monitor)
        if value is None:
            raise ValueError(f"EarlyStopping: no metric {self.rule.monitor!r}"
                             f"{did_you_mean(self.rule.monitor, row)}; available: {sorted(row)}")
        sign = 1.0 if self.rule.mode == "min" else -1.0
        if self.best_value is None or sign * (self.best_value - value) > self.rule.min_delta:
            self.best_value, self.since_best = value, 0
            if self.rule.restore_best:
                self.best = jax.tree.map(jnp.copy, (ts.params, ts.model_state))
        else:
            self.since_best += 1
        return self.should_stop

    def state(self) -> dict:
        return {"best_value": self.best_value, "since_best": self.since_best}
