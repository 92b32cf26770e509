"""``fit``'s checkpoints: what goes in them, and how a resume reads them back."""
from __future__ import annotations

import warnings
from pathlib import Path

from fnn import checkpoint as ckpt
from fnn.train.history import History
from fnn.train.step import TrainState

__all__ = ["FitCheckpoints"]

# fit arguments a resumed run must share with the run that wrote the checkpoint
RESUME_KEYS = ("seed", "batch_size", "num_examples", "on_nonfinite", "precision")


class FitCheckpoints:
    """Numbered checkpoints ``ckpt-<epoch>.npz`` of a ``fit`` run (a
    :class:`fnn.checkpoint.CheckpointManager`): the train state (its loss scale included), the
    early-stopping best trees
    and state, the history and the run's configuration ``config`` (a dict).

    ``saved`` is ``(epoch, stopped)`` of the last checkpoint written or read."""

    def __init__(self, directory, keep, best_metric: str, best_mode: str, config: dict):
        self.manager = ckpt.CheckpointManager(directory, keep=keep, best_metric=best_metric,
                                              best_mode=best_mode)
        self.config = config
        self.saved = (None, False)

    @staticmethod
    def tree(ts: TrainState, best) -> dict:
        tree = {"params": ts.params, "model_state": ts.model_state, "opt_state": ts.opt_state,
                "step": ts.step}
        if ts.loss_scale is not None:   # a loss-scaled run (fnn.precision)
            tree["loss_scale"] = ts.loss_scale
        if best is not None:
            tree["best"] = {"params": best[0], "model_state": best[1]}
        return tree

    def save(self, epoch: int, ts, best, history: History, early_stopping: dict | None, *,
             finished: bool, stopped: bool, reason: str) -> Path:
        meta = {"fit": {**self.config, "epoch": epoch, "finished": bool(finished),
                        "stopped": bool(stopped), "reason": reason,
                        "early_stopping": early_stopping, "history": history.to_json()}}
        path = self.manager.save(epoch, self.tree(ts, best), metadata=meta,
                                 metrics=history.last_row())
        self.saved = (epoch, bool(stopped))
        return path

    def save_nonfinite(self, ts, history: History, report) -> Path:
        """The last finite state before the guard's report, as ``nonfinite-<step>.npz``."""
        meta = {"fit": {**self.config, "epoch": report.epoch, "finished": False, "stopped": True,
                        "reason": "nonfinite", "nonfinite": report._asdict(),
                        "history": history.to_json()}}
        path = self.manager.directory / f"nonfinite-{report.step:08d}.npz"
        self.manager.directory.mkdir(parents=True, exist_ok=True)
        return ckpt.save(path, self.tree(ts, None), metadata=meta)

    def resume(self, ts: TrainState):
        """``(tree, fit metadata, path)`` of the newest intact checkpoint, or None. Corrupt
        ones are skipped with a warning, as is a mismatch of :data:`RESUME_KEYS`."""
        for path in reversed(self.manager.list()):
            try:
                manifest = ckpt.read_manifest(path)
                meta = manifest["metadata"].get("fit")
                if not isinstance(meta, dict) or "history" not in meta:
                    raise ckpt.CheckpointCorruptError(
                        f"{str(path)!r} was not written by fit (no 'fit' metadata)")
                has_best = any(l["path"].startswith("['best']") for l in manifest["leaves"])
                best = (ts.params, ts.model_state) if has_best else None
                tree = ckpt.restore(path, self.tree(ts, best))
            except ckpt.CheckpointCorruptError as err:
                warnings.warn(f"fit: skipping corrupt checkpoint {str(path)!r} while resuming: "
                              f"{err}", stacklevel=5)
                continue
            for key in RESUME_KEYS:
                if meta.get(key) != self.config[key]:
                    warnings.warn(f"fit: resuming from {str(path)!r}, which was written with "
                                  f"{key}={meta.get(key)!r}, but this call has "
                                  f"{key}={self.config[key]!r}; the result will differ from an "
                                  f"uninterrupted run", stacklevel=5)
            self.saved = (meta["epoch"], bool(meta.get("stopped")))
            return tree, meta, path
        return None
