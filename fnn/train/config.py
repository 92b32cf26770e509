"""``fit``'s arguments, validated in one place (:class:`FitConfig`), and the data checks that
need the data (:func:`batch_size_for`)."""
from __future__ import annotations

import dataclasses
from typing import Any

from fnn import validation as v
from fnn.core import Layer
from fnn.precision import get_policy
from fnn.train.early_stopping import EarlyStopping, mode_of
from fnn.train.engine import EPOCH_CHUNK, GUARDS
from fnn.train.hooks import Hook
from fnn.train.multi_step import is_engine_step

__all__ = ["FitConfig", "batch_size_for", "validation_batch_size", "check_trainer"]

OBJECTIVE = "(params, state, batch, key, train) -> (loss, (state, metrics)), e.g. fnn.supervised(net)"


def check_trainer(who: str, objective, optimizer) -> None:
    """``objective`` is an objective (not a bare network) and ``optimizer`` (unless None) has
    init/update; or ``objective`` is an engine-form step (:func:`fnn.train.multi_step`'s, which
    holds its optimizers) and ``optimizer`` is None."""
    if is_engine_step(objective):
        if optimizer is not None:
            raise ValueError(f"{who}: the step {getattr(objective, '__name__', objective)!r} "
                             f"holds its own optimizers; pass optimizer=None, got "
                             f"{type(optimizer).__name__}")
        return
    if isinstance(objective, Layer):
        raise TypeError(f"{who}: got the network {objective.name!r} where an objective belongs; "
                        f"wrap it: {who}(fnn.supervised(net, loss), ...)")
    v.function(who, "objective", objective, OBJECTIVE)
    if optimizer is None:   # (a sweep builds its optimizers)
        return
    if not (callable(getattr(optimizer, "init", None))
            and callable(getattr(optimizer, "update", None))):
        raise TypeError(f"{who}: optimizer must have init and update (an fnn.optim or optax "
                        f"optimizer such as fnn.optim.sgd(0.1)), got {type(optimizer).__name__}")


def batch_size_for(who: str, batch_size, n: int) -> int:
    """The minibatch size for ``n`` examples: ``batch_size``, or ``n`` (full batch) for None."""
    if batch_size is None:
        return n
    if not (v.is_int(batch_size) and batch_size >= 1):
        raise ValueError(f"{who}: batch_size must be a positive int or None (full batch), "
                         f"got {batch_size!r}")
    if batch_size > n:
        raise ValueError(f"{who}: batch_size ({batch_size}) is larger than the dataset ({n} "
                         f"examples); use batch_size=None for full-batch training")
    return int(batch_size)


def validation_batch_size(n_val: int, batch_size: int) -> int:
    """The validation pass's batch size for ``n_val`` examples after training in batches of
    ``batch_size``: ``min(n_val, max(batch_size, 1024))``."""
    return min(n_val, max(batch_size, 1024))


@dataclasses.dataclass(frozen=True, kw_only=True)
class FitConfig:
    """Every option of ``fit`` that does not depend on the data, checked on construction
    (see ``fit`` for their meaning). ``validation`` says whether validation data was given.
    Keyword-only: ``FitConfig(epochs=5, batch_size=32)``."""
    epochs: int = 1
    batch_size: int | None = None
    steps_per_epoch: int | None = None
    stream_chunk: int = 16
    seed: int = 0
    validation: bool = False
    early_stopping: EarlyStopping | None = None
    callbacks: tuple = ()
    progress: Any = True
    epochs_per_call: int | None = None
    checkpoint_dir: Any = None
    checkpoint_every: int | None = None
    keep: int | None = 3
    resume: bool = False
    on_nonfinite: str | None = None
    check_finite_inputs: bool = False
    unroll: int = 1
    mesh: Any = None
    data_axis: str = "data"
    shuffle_blocks: int | None = None
    precision: Any = None
    overwrite: bool = False
    step_metrics: bool = False

    def __post_init__(self):
        self._check_numbers()
        self._check_precision()
        for name in ("resume", "check_finite_inputs", "overwrite", "step_metrics"):
            v.flag("fit", name, getattr(self, name))
        if not (isinstance(self.progress, bool) or v.is_int(self.progress) and self.progress >= 1):
            raise ValueError(f"fit: progress must be True (a bar on a terminal, else a line "
                             f"every ~10% of the epochs), False, or a positive int N (a line "
                             f"every N epochs), got {self.progress!r}")
        self._check_checkpoints()
        self._check_callbacks()
        self._check_early_stopping()
        if self.step_metrics and (self.validation or self.early_stopping is not None):
            raise ValueError("fit: step_metrics=True keeps every step's metrics; it cannot be "
                             "combined with validation_data or early_stopping, which work on "
                             "per-epoch metrics")

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)

    def _check_numbers(self) -> None:
        """The counts and sizes (as ints), the seed, the mesh axis name and the guard."""
        self._set("epochs", v.positive_int("fit", "epochs", self.epochs))
        v.integer("fit", "seed", self.seed)
        for name in ("steps_per_epoch", "epochs_per_call", "checkpoint_every"):
            self._set(name, v.positive_int("fit", name, getattr(self, name), none_ok=True))
        self._set("stream_chunk", v.positive_int("fit", "stream_chunk", self.stream_chunk))
        self._set("unroll", v.positive_int("fit", "unroll", self.unroll))
        self._set("shuffle_blocks", v.positive_int("fit", "shuffle_blocks", self.shuffle_blocks,
                                                   none_ok=True))
        if not isinstance(self.data_axis, str):
            raise TypeError(f"fit: data_axis must be a mesh axis name (str), got "
                            f"{self.data_axis!r}")
        v.one_of("fit", "on_nonfinite", self.on_nonfinite, GUARDS)

    def _check_precision(self) -> None:
        """``precision`` as a :class:`fnn.precision.Policy`; loss scaling refuses 'raise'."""
        if self.precision is None:
            return
        self._set("precision", get_policy(self.precision, who="fit"))
        if self.precision.loss_scaling is not None and self.on_nonfinite == "raise":
            raise ValueError(f"fit: on_nonfinite='raise' cannot be combined with loss "
                             f"scaling (precision {self.precision}): an overflowing step is "
                             f"expected there and is skipped while the scale halves; use "
                             f"on_nonfinite='skip' or None")

    def _check_checkpoints(self) -> None:
        """Checkpointing options that need, or exclude, each other."""
        if self.unroll > 1 and self.checkpoint_dir is not None:
            raise ValueError(f"fit: unroll={self.unroll} cannot be combined with checkpoint_dir: "
                             f"an unrolled loop makes results depend on how epochs are chunked "
                             f"into calls, so a resumed run would not be bit-identical; use "
                             f"unroll=1")
        if self.checkpoint_dir is None and (self.resume or self.checkpoint_every is not None):
            raise ValueError(f"fit: {'resume=True' if self.resume else 'checkpoint_every'} needs "
                             f"checkpoint_dir (the directory the checkpoints are in)")
        if self.overwrite and (self.resume or self.checkpoint_dir is None):
            raise ValueError(f"fit: overwrite=True deletes the checkpoints in checkpoint_dir "
                             f"before a fresh run; it cannot be combined with "
                             f"{'resume=True' if self.resume else 'checkpoint_dir=None'}")
        if self.keep is not None:
            v.positive_int("fit", "keep", self.keep)

    def _check_callbacks(self) -> None:
        """``callbacks`` as a tuple of functions and :class:`Hook` objects."""
        single = callable(self.callbacks) or isinstance(self.callbacks, Hook)
        callbacks = (self.callbacks,) if single else tuple(self.callbacks)
        for callback in callbacks:
            if not isinstance(callback, Hook):
                v.function("fit", "callbacks", callback,
                           "f(epoch, metrics) -> stop?, f(epoch, metrics, state) -> stop? or "
                           "an fnn.train.hooks.Hook")
        self._set("callbacks", callbacks)

    def _check_early_stopping(self) -> None:
        rule = self.early_stopping
        if rule is None:
            return
        if not isinstance(rule, EarlyStopping):
            raise TypeError(f"fit: early_stopping must be an fnn.EarlyStopping, got "
                            f"{type(rule).__name__}")
        v.one_of("EarlyStopping", "mode", rule.mode, ("auto", "min", "max"))
        self._set("early_stopping", rule._replace(mode=mode_of(rule, 7)))
        v.positive_int("EarlyStopping", "patience", rule.patience)
        v.number("EarlyStopping", "min_delta", rule.min_delta, low=0)
        if rule.monitor.startswith("val_") and not self.validation:
            raise ValueError(f"fit: early stopping monitors {rule.monitor!r} but no "
                             f"validation_data was given")

    @property
    def guard(self) -> str | None:
        """The engine's NaN guard: ``on_nonfinite``, or ``'skip'`` when the loss is scaled."""
        if self.precision is not None and self.precision.loss_scaling is not None:
            return "skip"
        return self.on_nonfinite

    def calls_from(self, epoch: int, every_epoch: bool) -> int:
        """How many epochs the next compiled call runs, starting at ``epoch``: all of them,
        ~1/50 with a progress display, 1 when a hook or the input needs every epoch
        (``every_epoch``: callbacks, early stopping, a stream) or every step's metrics are
        kept; never past a due checkpoint, nor more than the engine's ``EPOCH_CHUNK``."""
        per_call = 1 if self.step_metrics else self.epochs_per_call
        if per_call is None:
            per_call = (1 if every_epoch else
                        max(1, self.epochs // 50) if self.progress else self.epochs)
        count = min(per_call, self.epochs - epoch, EPOCH_CHUNK)
        if self.checkpoint_every is not None:
            count = min(count, self.checkpoint_every - epoch % self.checkpoint_every)
        return count

    def best_metric(self) -> tuple[str, str]:
        """The metric (and mode) by which checkpoints are ranked."""
        if self.early_stopping is not None:
            return self.early_stopping.monitor, self.early_stopping.mode
        return ("val_loss" if self.validation else "loss"), "min"

