"""Progress output that suits where it runs: a live bar on a terminal, plain lines in logs."""
from __future__ import annotations

import sys
from typing import TextIO

import numpy as np

from fnn.train.hooks import Hook

__all__ = ["Progress", "ProgressHook", "progress_mode"]


def progress_mode(progress, stream: TextIO | None = None) -> tuple[str, int]:
    """``(mode, every)`` for ``fit(progress=...)``: ``True`` is a tqdm bar when ``stream``
    (default stderr) is a terminal and otherwise a line every ~10% of the epochs (``every=0``:
    decided by the epoch count); an int ``N`` is a line every ``N`` epochs; ``False`` nothing."""
    stream = sys.stderr if stream is None else stream
    if progress is False or progress is None:
        return "off", 0
    if progress is True:
        tty = getattr(stream, "isatty", lambda: False)()
        return ("bar", 0) if tty else ("lines", 0)
    return "lines", int(progress)


class Progress:
    """One run's progress: ``update(epoch, row)`` after each recorded call (``epoch`` = epochs
    done, ``row`` = the newest epoch's metrics), ``close()`` at the end.

    Lines look like ``fit: epoch 40/200  loss 0.1234  val_loss 0.2345`` and go to stderr; a
    line is printed when a multiple of ``every`` epochs is passed, and at the last epoch.
    """

    def __init__(self, mode: str, every: int, total: int, initial: int = 0, *,
                 label: str = "fit", stream: TextIO | None = None):
        self.mode, self.total, self.label = mode, total, label
        self.every = every or max(1, total // 10)
        self.stream = sys.stderr if stream is None else stream
        self.done = initial
        self.bar = None
        if mode == "bar":
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=min(initial, total), unit="epoch", leave=False,
                            file=self.stream)

    def update(self, epoch: int, row: dict) -> None:
        before, self.done = self.done, epoch
        if self.bar is not None:
            self.bar.update(epoch - before)
            if "loss" in row:
                self.bar.set_postfix(loss=f"{row['loss']:.4g}")
        elif self.mode == "lines" and (epoch // self.every > before // self.every
                                       or epoch >= self.total):
            names = sorted(row, key=lambda k: (k != "loss", k))  # the loss first
            metrics = "  ".join(f"{k} {row[k]:.4g}" for k in names)
            print(f"{self.label}: epoch {epoch}/{self.total}  {metrics}", file=self.stream,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class ProgressHook(Hook):
    """fit's progress output as a hook: after each compiled call, ``progress.update`` with the
    epochs done and the newest epoch's metrics (with ``step_metrics``, the mean of its
    steps); reads no rows."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def after_epochs(self, run, metrics: dict, rows: list) -> None:
        if self.progress.mode != "off":
            self.progress.update(run.epoch, {k: float(np.mean(v[-1])) for k, v in metrics.items()})

    def close(self) -> None:
        self.progress.close()
