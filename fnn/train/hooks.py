"""Hooks: what ``fit`` runs on the host between compiled calls (Levanter's hooks, Keras's
``CallbackList``). Progress output, early stopping, checkpoints and the user's callbacks are
each a hook (:class:`fnn.train.progress.ProgressHook`,
:class:`fnn.train.early_stopping.EarlyStoppingHook`,
:class:`fnn.train.checkpointing.CheckpointHook`, :class:`Callbacks`), called in that order
after every compiled call with the epochs it ran.

A hook sees the run (``run.ts``: the :class:`~fnn.train.TrainState` after those epochs;
``run.epoch``: epochs done; ``run.history``; ``run.config``) and may stop it (``run.stop =
True``). It takes a chunk's metrics as host arrays ``{name: np.ndarray[count]}`` (``count``
epochs; ``(count, steps)`` with ``step_metrics``); per-epoch rows ``{name: float}`` are made
only when a hook asks (``rows = True``), so a 10,000-epoch full-batch run without such a hook
makes no Python dict per epoch. ``every_epoch = True`` asks for one epoch per compiled call
(so ``run.ts`` is the state after each epoch)."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["Hook", "Callbacks", "reads_state", "make_rows"]


class Hook:
    """The base of fit's hooks: ``after_epochs(run, metrics, rows)`` after each compiled call
    (``rows``: one ``{name: float}`` per epoch of the call when ``rows`` is set, else
    ``[]``), ``close()`` when the run ends (also on errors). A subclass passed in
    ``fit(callbacks=[...])`` runs after the built-in hooks, in the list's order."""
    rows: bool = False
    every_epoch: bool = False

    def after_epochs(self, run: Any, metrics: dict, rows: list) -> None:
        """Called after each compiled call; set ``run.stop = True`` to stop the run."""

    def close(self) -> None:
        """Called once when the run ends."""


def reads_state(callback: Callable) -> bool:
    """Whether a fit callback takes the train state: ``f(epoch, metrics, state)``."""
    try:
        parameters = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: the two-argument form
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


def make_rows(metrics: dict) -> list:
    """One ``{name: value}`` per epoch of ``metrics`` (``{name: array[count, ...]}``): a float,
    or with ``step_metrics`` the epoch's array of steps."""
    count = len(next(iter(metrics.values()))) if metrics else 0
    row = lambda v, i: v[i] if np.ndim(v) > 1 else float(v[i])
    return [{k: row(v, i) for k, v in metrics.items()} for i in range(count)]


class Callbacks(Hook):
    """The user's callbacks, ``f(epoch, metrics) -> stop?`` or ``f(epoch, metrics, state) ->
    stop?``, called for every epoch (after that epoch's checkpoint), in order; a true return
    stops the run."""
    rows = True
    every_epoch = True

    def __init__(self, callbacks: Sequence[Callable]):
        self.callbacks = [(f, reads_state(f)) for f in callbacks]

    def after_epochs(self, run, metrics: dict, rows: list) -> None:
        for i, row in enumerate(rows):
            epoch = run.epoch - len(rows) + i
            for callback, with_state in self.callbacks:
                args = (epoch, row, run.ts) if with_state else (epoch, row)
                run.stop = bool(callback(*args)) or run.stop
