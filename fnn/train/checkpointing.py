"""``fit``'s checkpoints, both directions: what goes in them (:meth:`FitCheckpoints.save`),
how a resume reads them back (:meth:`FitCheckpoints.resume`), and the directory they live in
(owned by one run, checked writable before training: :meth:`FitCheckpoints.claim`).

Schema of ``ckpt-<epoch>.npz`` (an :mod:`fnn.checkpoint` file): the tree ``{"params",
"model_state", "opt_state", "step", ["loss_scale"], ["best": {"params", "model_state"}]}``
and the metadata ``{"fit": {<the run's configuration: RESUME_KEYS, "epochs", "shuffle_blocks",
...>, "epoch", "finished", "stopped", "reason", "early_stopping", "history"}}``.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import jax

from fnn import checkpoint as ckpt
from fnn.train.history import History
from fnn.train.hooks import Hook
from fnn.train.step import TrainState

__all__ = ["FitCheckpoints", "CheckpointHook", "ResumePoint", "RESUME_KEYS", "fit_checkpoints", "recorded_layout",
           "resumed_shuffle_blocks"]

# fit arguments a resumed run must share with the run that wrote the checkpoint
RESUME_KEYS = ("seed", "batch_size", "num_examples", "on_nonfinite", "precision")


class ResumePoint(NamedTuple):
    """What a resume reads back: the train state (``ts``, as saved), the early-stopping best
    ``(params, model_state)`` (or None) and state (a dict, or None), the history, the epochs
    done, whether the run had stopped, and the file."""
    ts: TrainState
    best: Any
    early_stopping: dict | None
    history: History
    epoch: int
    stopped: bool
    path: Path


class FitCheckpoints:
    """Numbered checkpoints ``ckpt-<epoch>.npz`` of a ``fit`` run (a
    :class:`fnn.checkpoint.CheckpointManager`): the train state (its loss scale included), the
    early-stopping best trees and state, the history and the run's configuration ``config``
    (a dict). ``saved`` is ``(epoch, stopped)`` of the last checkpoint written or read."""

    def __init__(self, directory, keep, best_metric: str, best_mode: str, config: dict):
        self.manager = ckpt.CheckpointManager(directory, keep=keep, best_metric=best_metric,
                                              best_mode=best_mode)
        self.config = config
        self.saved = (None, False)

    # ------------------------------------------------------------------ the directory

    def claim(self, *, resume: bool, overwrite: bool) -> None:
        """Before training: the directory can be written (a probe file is created and removed)
        and belongs to this run: a fresh run (``resume=False``) refuses a directory that
        holds checkpoints, unless ``overwrite=True``, which deletes them first."""
        directory = self.manager.directory
        probe = directory / f".fnn-probe-{os.getpid()}-{jax.process_index()}"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise ckpt.CheckpointError(
                f"fit: cannot write checkpoints to {str(directory)!r} ({err.strerror or err}); "
                f"checked before training. Pass a writable checkpoint_dir") from err
        if resume:
            return
        found = self.manager.list() + sorted(directory.glob("nonfinite-*.npz"))
        if found and not overwrite:
            raise ValueError(
                f"fit: checkpoint_dir {str(directory)!r} already holds {len(found)} "
                f"checkpoint(s) of another run (newest: {found[-1].name!r}); a fresh run there "
                f"would mix with them. Pass resume=True to continue that run, an empty "
                f"directory for a new one, or overwrite=True to delete them first")
        if found and jax.process_index() == 0:
            for path in found:
                for file in [path, *path.parent.glob(f"{path.stem}.p*.npz")]:
                    file.unlink(missing_ok=True)

    # ------------------------------------------------------------------ saving

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
             finished: bool, stopped: bool, reason: str) -> Path | None:
        """Write checkpoint ``epoch``; returns its path, or None (with a warning) when the
        write fails: training goes on and ``fit`` still returns its result."""
        meta = {"fit": {**self.config, "epoch": epoch, "finished": bool(finished),
                        "stopped": bool(stopped), "reason": reason,
                        "early_stopping": early_stopping, "history": history.to_json()}}
        try:
            path = self.manager.save(epoch, self.tree(ts, best), metadata=meta,
                                     metrics=history.last_row())
        except (OSError, ckpt.CheckpointError) as err:
            warnings.warn(f"fit: could not write the checkpoint of epoch {epoch} to "
                          f"{str(self.manager.directory)!r}: {err}. Training goes on and fit "
                          f"returns its result; this state is not on disk", RuntimeWarning,
                          stacklevel=6)
            return None
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

    # ------------------------------------------------------------------ resuming

    def resume(self, ts: TrainState) -> ResumePoint | None:
        """The newest intact checkpoint, read into the structure of ``ts``, or None. Corrupt
        ones are skipped with a warning (and renamed ``*.npz.skipped``, so that they never
        outrank the checkpoints this run writes: a run's own newest checkpoint is never
        pruned), and a mismatch of :data:`RESUME_KEYS` warns."""
        skipped = []
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
                warnings.warn(f"fit: skipping corrupt checkpoint {str(path)!r} while resuming "
                              f"(renamed *.npz.skipped): {err}", stacklevel=5)
                skipped.append(path)
                continue
            self._set_aside(skipped)
            self._warn_mismatch(path, meta)
            self.saved = (meta["epoch"], bool(meta.get("stopped")))
            state = TrainState(tree["params"], tree["model_state"], tree["opt_state"],
                               tree["step"], tree.get("loss_scale"))
            best = (tree["best"]["params"], tree["best"]["model_state"]) if "best" in tree else None
            return ResumePoint(state, best, meta.get("early_stopping") or None,
                               History.from_json(meta["history"]), int(meta["epoch"]),
                               bool(meta.get("stopped")), path)
        return None

    @staticmethod
    def _set_aside(paths: list) -> None:
        """Rename skipped checkpoints out of the manager's numbering."""
        if jax.process_index() == 0:
            for path in paths:
                path.replace(path.with_name(path.name + ".skipped"))

    def _warn_mismatch(self, path: Path, meta: dict) -> None:
        recorded = ("shuffle_blocks",) if "shuffle_blocks" in meta else ()
        for key in RESUME_KEYS + recorded:
            if meta.get(key) != self.config[key]:
                warnings.warn(f"fit: resuming from {str(path)!r}, which was written with "
                              f"{key}={meta.get(key)!r}, but this call has "
                              f"{key}={self.config[key]!r}; the result will differ from an "
                              f"uninterrupted run", stacklevel=6)


def fit_checkpoints(config, sizes: dict) -> FitCheckpoints | None:
    """``fit``'s checkpoints for a :class:`fnn.train.config.FitConfig` and the data's
    ``sizes`` (batch size, example count, shuffle blocks...), the directory claimed (see
    :meth:`FitCheckpoints.claim`); None without ``checkpoint_dir``."""
    if config.checkpoint_dir is None:
        return None
    policy = config.precision
    record = {"seed": int(config.seed), **sizes, "on_nonfinite": config.on_nonfinite,
              "epochs": config.epochs, "precision": None if policy is None else repr(policy)}
    checkpoints = FitCheckpoints(config.checkpoint_dir, config.keep, *config.best_metric(), record)
    checkpoints.claim(resume=config.resume, overwrite=config.overwrite)
    return checkpoints


def resumed_shuffle_blocks(checkpoint_dir, resume, shuffle_blocks):
    """``fit``'s ``shuffle_blocks`` for a resume that does not give one: the layout recorded
    in the newest checkpoint, so the continuation shuffles as the run that wrote it did, on
    any device count (a 4-device run's order continued on 1 device, or the reverse)."""
    if resume is not True or checkpoint_dir is None or shuffle_blocks is not None:
        return shuffle_blocks
    return recorded_layout(checkpoint_dir).get("shuffle_blocks")


def recorded_layout(directory) -> dict:
    """The shuffle layout ``{"shuffle_blocks": B}`` recorded in the newest readable
    checkpoint of ``directory`` (``{}`` when none records one)."""
    manager = ckpt.CheckpointManager(directory, keep=None)
    for path in reversed(manager.list()):
        try:
            meta = ckpt.read_manifest(path)["metadata"].get("fit")
        except ckpt.CheckpointError:
            continue
        if isinstance(meta, dict) and meta.get("shuffle_blocks") is not None:
            return {"shuffle_blocks": int(meta["shuffle_blocks"])}
        return {}
    return {}


class CheckpointHook(Hook):
    """fit's periodic checkpoint as a hook: after a call that ends at a multiple of
    ``checkpoint_every`` epochs, at the last epoch or when the run stops, ``run.save(...)``
    (the run's final, interrupt and NaN-guard checkpoints are the run's own). Reads no rows."""

    def __init__(self, every: int | None, epochs: int):
        self.every, self.epochs = every, epochs

    def after_epochs(self, run, metrics: dict, rows: list) -> None:
        done = run.epoch >= self.epochs
        if (self.every is not None and run.epoch % self.every == 0) or done or run.stop:
            run.save(finished=done or run.stop, stopped=run.stop, reason="periodic")
