"""Checkpoint format, layer 4 of 4 (encoding < pieces < save/load < manager): numbered
checkpoints in a directory, a keep policy, the best by a metric, the newest valid one."""
from __future__ import annotations

import contextlib
import math
import re
import warnings
from pathlib import Path

import jax

from fnn import validation
from fnn.checkpoint.encoding import (Checkpoint, CheckpointCorruptError, CheckpointError,
                                     read_manifest)
from fnn.checkpoint.saveload import load, save, verify

__all__ = ["CheckpointManager"]


class CheckpointManager:
    """Numbered checkpoints ``<prefix>-<step>.npz`` in ``directory``.

    Keeps the newest ``keep`` checkpoints (``None``: all) plus the best one by
    ``best_metric`` (from the ``metrics`` passed to :meth:`save`; ``best_mode`` 'min' or 'max').

        manager = CheckpointManager("ckpt", keep=3, best_metric="val_loss")
        manager.save(epoch, tree, metrics={"val_loss": 0.3})
        path = manager.latest()              # newest valid one (corrupt ones skipped, warned)
        tree = manager.restore(target)       # from the newest valid one
    """

    def __init__(self, directory, keep: int | None = 3, *, best_metric: str | None = None,
                 best_mode: str = "min", prefix: str = "ckpt"):
        who = "CheckpointManager"
        keep = validation.positive_int(who, "keep", keep, none_ok=True)  # None: keep all
        validation.one_of(who, "best_mode", best_mode, ("min", "max"))
        validation.string(who, "best_metric", best_metric, none_ok=True)
        if not (isinstance(prefix, str) and re.fullmatch(r"[A-Za-z0-9_.]+", prefix)):
            raise ValueError(f"CheckpointManager: prefix must be letters, digits, '_' or '.', "
                             f"got {prefix!r}")
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise CheckpointError(f"CheckpointManager: {str(self.directory)!r} exists and is not a "
                                  f"directory")
        self.keep, self.best_metric, self.best_mode, self.prefix = keep, best_metric, best_mode, prefix
        self._pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)\.npz$")

    def path(self, step: int) -> Path:
        """The file of checkpoint ``step``."""
        return self.directory / f"{self.prefix}-{step:08d}.npz"

    def steps(self) -> list[int]:
        """Steps of the checkpoints present, oldest first (validity not checked)."""
        if not self.directory.is_dir():
            return []
        found = (self._pattern.match(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def list(self) -> list[Path]:
        """Paths of the checkpoints present, oldest first."""
        return [self.path(s) for s in self.steps()]

    def save(self, step: int, tree, *, metrics: dict | None = None,
             metadata: dict | None = None) -> Path:
        """Write checkpoint ``step`` (atomically), then delete those outside the keep policy."""
        step = validation.nonnegative_int("CheckpointManager.save", "step", step)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CheckpointError(f"cannot create the checkpoint directory {str(self.directory)!r}: "
                                  f"{err.strerror or err}") from err
        meta = dict(metadata or {})
        meta["step"] = int(step)
        if metrics is not None:
            meta["metrics"] = {k: _to_float(v) for k, v in metrics.items()}
        path = save(self.path(int(step)), tree, metadata=meta)
        if jax.process_index() == 0:  # (with several processes, save has committed it)
            self._prune()
        return path

    def _metric(self, path):
        try:
            value = read_manifest(path)["metadata"].get("metrics", {}).get(self.best_metric)
        except CheckpointError:
            return None
        return value if isinstance(value, (int, float)) and math.isfinite(value) else None

    def best(self) -> Path | None:
        """The checkpoint with the best ``best_metric`` (None without a metric or checkpoints)."""
        if self.best_metric is None:
            return None
        scored = [(v, p) for p in self.list() if (v := self._metric(p)) is not None]
        if not scored:
            return None
        pick = min if self.best_mode == "min" else max
        return pick(scored, key=lambda vp: vp[0])[1]

    def _prune(self) -> None:
        if self.keep is None:
            return
        paths = self.list()
        keep = set(paths[-self.keep:])
        best = self.best()
        if best is not None:
            keep.add(best)
        for p in paths:
            if p not in keep:
                for file in [p, *p.parent.glob(f"{p.stem}.p*.npz")]:  # with its shard files
                    with contextlib.suppress(OSError):  # already gone: nothing to prune
                        file.unlink()

    def latest(self) -> Path | None:
        """The newest checkpoint that verifies (CRCs and SHA-256); corrupt ones are skipped
        with a ``warnings.warn`` naming them. None when there is no valid one."""
        for path in reversed(self.list()):
            try:
                verify(path)
            except CheckpointCorruptError as err:
                warnings.warn(f"skipping corrupt checkpoint {str(path)!r}: {err}", stacklevel=2)
                continue
            return path
        return None

    def restore(self, target=None, step: int | None = None) -> Checkpoint:
        """``load`` checkpoint ``step``, or by default the newest one that is intact (corrupt
        ones are skipped with a warning naming them), into ``target``.

        Raises :class:`CheckpointError` when there is none, and
        :class:`CheckpointMismatchError` when the newest intact one does not fit ``target``.
        """
        if step is not None:
            return load(self.path(step), target)
        for path in reversed(self.list()):
            try:
                return load(path, target)
            except CheckpointCorruptError as err:
                warnings.warn(f"skipping corrupt checkpoint {str(path)!r}: {err}", stacklevel=2)
        raise CheckpointError(f"no valid checkpoint in {str(self.directory)!r}")


def _to_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"CheckpointManager.save: metrics must be numbers, got {value!r}") from None
