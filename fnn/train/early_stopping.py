"""Early stopping: the rule (:class:`EarlyStopping`, what the user passes to ``fit``), its
running state (:class:`EarlyStopper`, what ``fit`` keeps and checkpoints) and what it reports
when it stops (:class:`EarlyStop`, in ``FitResult.early_stop``)."""
from __future__ import annotations

import re
import sys
import warnings
from typing import Any, Iterable, NamedTuple

import jax
import jax.numpy as jnp

from fnn._names import did_you_mean
from fnn.sharding import is_primary
from fnn.train.hooks import Hook

__all__ = ["EarlyStopping", "EarlyStopper", "EarlyStop", "EarlyStoppingHook", "mode_of",
           "check_monitor", "metric_names"]

# Metric names that improve upwards (mode='auto' maximises them, as Keras does): any name
# (after a 'val_' prefix) that contains one of these words, e.g. 'accuracy', 'val_acc',
# 'top5_accuracy', 'auc', 'f1', 'r2', 'precision', 'recall'.
MAX_LIKE = re.compile(r"(^|_)(acc|accuracy|auc|f1|r2|precision|recall|iou|dice)(_|$|\d)")


class EarlyStopping(NamedTuple):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``mode``: ``'auto'`` (default) maximises accuracy-, auc-, f1-, r2-, precision- and
    recall-like names (:data:`MAX_LIKE`) and minimises everything else (losses), as Keras does;
    ``'min'`` or ``'max'`` say it outright (``'min'`` on an accuracy-like name warns).
    ``restore_best`` returns the params (and model state) of the best epoch instead of the
    last. An epoch improves when ``sign * (best - value) > min_delta`` with ``sign = +1`` for
    'min', -1 for 'max'. When it stops, ``fit`` prints one line (the epoch, the best epoch
    restored and its value) and returns them as ``FitResult.early_stop``.
    """
    monitor: str = "val_loss"
    patience: int = 10
    min_delta: float = 0.0
    mode: str = "auto"
    restore_best: bool = True


class EarlyStop(NamedTuple):
    """An early stop: after epoch ``epoch`` (counting from 0), ``monitor`` had not improved
    for ``patience`` epochs; its best value ``best_value`` was reached in epoch
    ``best_epoch`` (whose params ``fit`` returns when ``restored``)."""
    monitor: str
    mode: str
    epoch: int
    best_epoch: int | None
    best_value: float
    patience: int
    restored: bool

    def describe(self) -> str:
        restored = (f"returning epoch {self.best_epoch}'s params" if self.restored
                    else "returning the last epoch's params")
        return (f"fit: early stopping after epoch {self.epoch}: {self.monitor} has not improved "
                f"for {self.patience} epochs (mode {self.mode!r}); best {self.monitor} "
                f"{self.best_value:.6g} in epoch {self.best_epoch}; {restored}")


def mode_of(rule: EarlyStopping, stacklevel: int = 4) -> str:
    """The rule's direction, ``'min'`` or ``'max'`` (``'auto'`` resolved by the monitor's name);
    warns when ``'min'`` is asked for an accuracy-like name."""
    name = rule.monitor[4:] if rule.monitor.startswith("val_") else rule.monitor
    max_like = MAX_LIKE.search(name.lower()) is not None
    if rule.mode == "auto":
        return "max" if max_like else "min"
    if rule.mode == "min" and max_like:
        warnings.warn(f"EarlyStopping: mode='min' minimises {rule.monitor!r}, which reads as a "
                      f"metric to maximise; use mode='max' (or the default 'auto')",
                      stacklevel=stacklevel)
    return rule.mode


def check_monitor(rule: EarlyStopping, names: Iterable[str]) -> None:
    """``rule.monitor`` is one of the run's metric ``names`` (known before compiling)."""
    names = sorted(names)
    if rule.monitor not in names:
        raise ValueError(f"EarlyStopping: no metric {rule.monitor!r}"
                         f"{did_you_mean(rule.monitor, names)}; this fit reports {names}")


class EarlyStopper:
    """The state of one :class:`EarlyStopping` rule over a run: the best value so far, the
    epoch it was reached in, the epochs since it, the best ``(params, model_state)`` (with
    ``restore_best``) and whether to stop. ``state()`` / ``EarlyStopper(rule, **state)``
    round-trip it through a checkpoint's metadata (the best trees are stored beside it)."""

    def __init__(self, rule: EarlyStopping, best_value: float | None = None, since_best: int = 0,
                 best: Any = None, best_epoch: int | None = None,
                 stopped_epoch: int | None = None, mode: str | None = None):
        self.rule, self.best_value, self.since_best, self.best = rule, best_value, since_best, best
        self.best_epoch, self.stopped_epoch = best_epoch, stopped_epoch
        self.mode = mode or (rule.mode if rule.mode != "auto" else mode_of(rule))

    @property
    def should_stop(self) -> bool:
        return self.since_best >= self.rule.patience

    def update(self, row: dict, ts, epoch: int | None = None) -> bool:
        """Account for epoch ``epoch``'s metrics ``row`` (after which the train state is
        ``ts``); returns whether to stop."""
        value = row.get(self.rule.monitor)
        if value is None:
            check_monitor(self.rule, row)
        sign = 1.0 if self.mode == "min" else -1.0
        if self.best_value is None or sign * (self.best_value - value) > self.rule.min_delta:
            self.best_value, self.since_best, self.best_epoch = value, 0, epoch
            if self.rule.restore_best:
                self.best = jax.tree.map(jnp.copy, (ts.params, ts.model_state))
        else:
            self.since_best += 1
        return self.should_stop

    def report(self, epoch: int) -> EarlyStop:
        """What stopping after epoch ``epoch`` means, as data (and the stopper remembers it)."""
        self.stopped_epoch = epoch
        return EarlyStop(self.rule.monitor, self.mode, epoch, self.best_epoch,
                         float(self.best_value), self.rule.patience,
                         bool(self.rule.restore_best and self.best is not None))

    def state(self) -> dict:
        return {"best_value": self.best_value, "since_best": self.since_best,
                "best_epoch": self.best_epoch, "stopped_epoch": self.stopped_epoch}

    def resumed(self) -> EarlyStop | None:
        """Resuming a run that this rule stopped: with a patience the epochs since the best no
        longer reach, the stop is lifted (None: train on, with a line on stderr); else it
        stands (its :class:`EarlyStop`, with a warning that nothing is trained). A run
        stopped by something else (a callback) stays stopped: returns its stop unchanged."""
        if self.stopped_epoch is None:
            return None
        if self.should_stop:
            warnings.warn(f"fit: the resumed run was stopped early after epoch "
                          f"{self.stopped_epoch} ({self.rule.monitor} has not improved for "
                          f"{self.since_best} epochs >= patience {self.rule.patience}); nothing "
                          f"is trained. Pass a larger patience to train on", stacklevel=5)
            return self.report(self.stopped_epoch)
        print(f"fit: resuming a run early stopping ended after epoch {self.stopped_epoch}: "
              f"patience {self.rule.patience} > {self.since_best} epochs since the best "
              f"(epoch {self.best_epoch}), so training continues", file=sys.stderr, flush=True)
        self.stopped_epoch = None
        return None


def metric_names(objective, params, state, example, *, validation: bool,
                 skipped: bool) -> set[str]:
    """The names ``fit`` will report for ``objective`` on batches like ``example``: ``loss``,
    the objective's metrics, ``skipped`` (NaN guard 'skip'), and each again as ``val_<name>``
    with validation data. Found by tracing (``jax.eval_shape``), nothing is compiled."""
    _, (_, metrics) = jax.eval_shape(
        lambda p, s, b: objective(p, s, b, jax.random.key(0), True), params, state, example)
    names = {"loss", *metrics} | ({"skipped"} if skipped else set())
    return names | ({f"val_{k}" for k in {"loss", *metrics}} if validation else set())


class EarlyStoppingHook(Hook):
    """Early stopping as a fit hook: feeds every epoch's row and the train state to its
    :class:`EarlyStopper` (``stopper``; replaced on resume); when the rule says stop, sets
    ``run.stop`` and ``run.early_stop`` (an :class:`EarlyStop`) and, with progress output on,
    prints its one line."""
    rows = True
    every_epoch = True

    def __init__(self, stopper: EarlyStopper, *, announce: bool = True):
        self.stopper, self.announce = stopper, announce

    def after_epochs(self, run, metrics: dict, rows: list) -> None:
        for i, row in enumerate(rows):
            epoch = run.epoch - len(rows) + i
            if self.stopper.update(row, run.ts, epoch) and not run.stop:
                run.stop, run.early_stop = True, self.stopper.report(epoch)
                if self.announce and is_primary():
                    print(run.early_stop.describe(), file=sys.stderr, flush=True)
