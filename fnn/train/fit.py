"""``fit``: a thin orchestrator over the epoch engine (arrays in memory, or a stream of batches),
with checkpoints, resume, early stopping, callbacks, the NaN guard and progress output."""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn.train.checkpointing import (CheckpointHook, FitCheckpoints, fit_checkpoints,
                                     resumed_shuffle_blocks)
from fnn.precision import get_policy
from fnn.sharding import is_primary
from fnn.train.config import FitConfig, check_trainer
from fnn.train.divergence import initial_loss, warn_if_diverged
from fnn.train.early_stopping import (EarlyStopper, EarlyStopping, EarlyStoppingHook,
                                      check_monitor, metric_names)
from fnn.train.history import History
from fnn.train.hooks import Callbacks, Hook, make_rows
from fnn.train.inputs import Inputs, prepare
from fnn.train.multi_step import is_engine_step
from fnn.train.objective import objective_value
from fnn.train.nonfinite import NonFiniteError, NonFiniteReport
from fnn.train.progress import Progress, ProgressHook, progress_mode
from fnn.train.step import TrainState, check_sites

__all__ = ["FitResult", "fit"]


class FitResult(NamedTuple):
    """What ``fit`` returns: final (or best) params and states, per-epoch ``history``
    (``{metric: np.ndarray[epochs]}``; validation metrics are prefixed ``val_``) and
    ``early_stop`` (an :class:`fnn.train.early_stopping.EarlyStop` when early stopping ended
    the run, else None)."""
    params: Any
    model_state: Any
    opt_state: Any
    history: dict
    early_stop: Any = None


def fit(objective: Callable, params, optimizer, data, *, model_state=None, epochs: int = 1,
        batch_size: int | None = None, steps_per_epoch: int | None = None, seed: int = 0,
        validation_data=None, early_stopping: EarlyStopping | None = None,
        callbacks: Sequence[Callable[..., bool | None] | Hook] = (), progress=True,
        epochs_per_call: int | None = None, checkpoint_dir=None,
        checkpoint_every: int | None = None, keep: int | None = 3, resume: bool = False,
        overwrite: bool = False,
        on_nonfinite: str | None = None, check_finite_inputs: bool = False, unroll: int = 1,
        stream_chunk: int = 16, mesh=None, data_axis: str = "data",
        shuffle_blocks: int | None = None, precision=None,
        step_metrics: bool = False) -> FitResult:
    """Train ``params`` to minimise ``objective`` on ``data`` with ``optimizer``.

    Args:
      objective: ``(params, state, batch, key, train) -> (loss, (state, metrics))``
        (see :func:`fnn.supervised`); or an engine-form step that holds its own optimizers
        (:func:`fnn.train.multi_step`'s, e.g. ``fnn.train.gan_step(gan, d_opt, g_opt)``) with
        ``optimizer=None``: ``params`` are then its trees ``{name: params}``, the optimizer
        states come from ``step.init(params)``, the metrics are the step's (``{name}_loss``,
        ...); ``validation_data`` and ``early_stopping`` are refused (evaluate in a hook).
      params, model_state: initial parameters and model state (e.g. from ``net.init``; a
        network with BatchNorm needs its state).
      optimizer: ``fnn.optim`` or optax transformation.
      data: arrays in memory: a pytree of arrays with a leading example axis, e.g. ``(x, y)``
        (a tuple, list, dict or array); or a **stream**: a list of batches ``[(x_0, y_0),
        ...]`` or any other iterable of host batches (a generator, a data loader), each a
        pytree like ``(x_b, y_b)`` of one fixed shape; every batch's labels are checked.
        A one-shot iterator is read on across epochs; a re-iterable is iterated afresh each
        epoch. See :mod:`fnn.train.stream`.
      epochs: passes over the data (in total, counting those of a resumed run). With
        ``batch_size=None`` every epoch is one full-batch step.
      batch_size: minibatch size for arrays (shuffled each epoch, last partial batch
        dropped) or None (full batch). A stream's batches are used as they come (a
        ``batch_size`` with a stream is refused). Data-parallel, examples that do not divide
        by the devices are dropped from the end, with a warning.
      steps_per_epoch: batches per epoch of a stream (default: ``len(data)``; needed for a
        generator).
      seed: determines the shuffles and the per-step keys (dropout etc.).
      validation_data: arrays or a re-iterable stream (a list of batches, a data loader;
        a one-shot iterator is refused before training), evaluated after every epoch and
        reported as ``val_<metric>``.
      early_stopping: an :class:`EarlyStopping` rule (needs ``validation_data`` for ``val_*``;
        its monitor is checked against the objective's metric names before compiling).
      callbacks: ``f(epoch, metrics) -> stop?`` called after every epoch (after that epoch's
        checkpoint, if one is due, has been written); a callback with a third parameter,
        ``f(epoch, metrics, state)``, also reads the :class:`~fnn.train.TrainState` after
        that epoch (params, model state, optimizer state, step), e.g. to save samples. An
        :class:`fnn.train.hooks.Hook` object in the list is called after every compiled call
        with the run (its state, epoch, history) and that call's metrics as arrays (rows
        only if it asks); the functions run first, then the Hook objects, each after the
        built-in hooks (progress, early stopping, the periodic checkpoint).
      progress: True: a tqdm bar when stderr is a terminal, else a line every ~10% of the
        epochs (logs, CI); an int N: a line every N epochs; False: nothing.
      epochs_per_call: epochs per compiled call (default: all of them without progress
        output, ~50 calls with it; 1 with callbacks, early stopping or a stream). It never
        changes the result, only how often Python sees the metrics.
      checkpoint_dir: write checkpoints ``ckpt-<epoch>.npz`` there (see ``fnn.checkpoint``):
        every ``checkpoint_every`` epochs, at the end, when the run is interrupted
        (KeyboardInterrupt: saved, then re-raised) and when the NaN guard stops it.
      checkpoint_every: epochs between checkpoints (None: only at the end and on interrupts).
      keep: how many of the newest checkpoints to keep (plus the best by the early-stopping
        metric, or ``val_loss``, or ``loss``); None keeps all.
      resume: continue from the newest intact checkpoint in ``checkpoint_dir`` (corrupt ones
        are skipped with a warning; without any, start afresh). The result is bit-identical
        to an uninterrupted run with the same arguments (a stream is read on from where it
        stands). A run owns its directory: with ``resume=False`` a directory that already
        holds checkpoints is refused before training, unless ``overwrite=True``.
      overwrite: delete the checkpoints already in ``checkpoint_dir`` before a fresh run.
        (The directory is checked writable before training, by a probe file; a checkpoint
        that cannot be written later warns, and ``fit`` trains on and returns its result.)
      on_nonfinite: the NaN guard, checked on device at every step: None (off; ``fit`` warns
        at the end if the loss became non-finite), ``'raise'`` (stop with
        :class:`NonFiniteError`, whose ``report`` names the step, the kind and the first
        non-finite leaf; ``err.params`` are those from before that step, also saved to
        ``checkpoint_dir/nonfinite-<step>.npz``) or ``'skip'`` (a bad step changes nothing,
        like ``optax.apply_if_finite``; ``history['skipped']`` counts them per epoch).
      check_finite_inputs: reject data holding NaN or inf before training (a host pass).
      unroll: epochs per iteration of the compiled epoch loop (tiny full-batch nets run
        faster unrolled; results then depend in the last bits on ``epochs_per_call``, so it
        cannot be combined with checkpointing).
      stream_chunk: batches of a stream per compiled call (K); at most 2K batches are ever
        ahead of the device.
      mesh, data_axis: train data-parallel over mesh axis ``data_axis`` of ``mesh`` (a
        ``jax.sharding.Mesh``): the batch axis is split over its devices, params and states
        are replicated, jit's partitioner reduces the gradients. Without ``mesh``, data
        already sharded (``NamedSharding(mesh, P('data'))``) trains over its own mesh; host
        data is sharded for you (see :mod:`fnn.sharding`). The global batch must divide by
        the axis's devices.
      shuffle_blocks: B for the shuffle (:func:`fnn.train.engine.shuffled_batches`; default:
        the data shards when data-parallel, else 1). Any B gives the same order on any device
        count: on one device, B = 4 reproduces a 4-device run's order. Checkpoints record it,
        and a resume without ``shuffle_blocks`` reuses it (a 4-device run continues on 1
        device, or the reverse, in its own order).
      precision: a mixed-precision policy (:class:`fnn.precision.Policy` or its string, e.g.
        ``"params=float32,compute=bfloat16,output=float32"``): ``params`` are kept in its
        param dtype (the optimizer state with them), each step and the validation pass run
        the objective in its compute dtype (:func:`fnn.precision.cast_objective`). With loss
        scaling (float16 compute) an overflowing step is skipped and the scale halved (the
        guard is ``'skip'``; ``on_nonfinite='raise'`` is refused); checkpoints carry the scale.
      step_metrics: keep every step's metrics instead of each epoch's means: each
        ``history[name]`` has shape ``(epochs, steps_per_epoch)``, and a callback's
        ``metrics`` hold one epoch's row of steps (not with ``validation_data`` or
        ``early_stopping``).

    After training, a loss that grew finite but by orders of magnitude warns
    (:class:`fnn.DivergenceWarning`, see :mod:`fnn.train.divergence`).

    Returns a :class:`FitResult`. Every epoch (its minibatch steps, the metric means and the
    validation pass) runs inside compiled code (:mod:`fnn.train.engine`).
    """
    check_trainer_options(objective, optimizer, early_stopping, precision)
    shuffle_blocks = resumed_shuffle_blocks(checkpoint_dir, resume, shuffle_blocks)
    config = FitConfig(
        epochs=epochs, batch_size=batch_size, steps_per_epoch=steps_per_epoch,
        stream_chunk=stream_chunk, seed=seed, validation=validation_data is not None,
        early_stopping=early_stopping, callbacks=callbacks, progress=progress,
        epochs_per_call=epochs_per_call, checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every, keep=keep, resume=resume, on_nonfinite=on_nonfinite,
        check_finite_inputs=check_finite_inputs, unroll=unroll, mesh=mesh, data_axis=data_axis,
        shuffle_blocks=shuffle_blocks, precision=precision, overwrite=overwrite,
        step_metrics=step_metrics)
    engine_step = is_engine_step(objective)
    model_state, policy = {} if model_state is None else model_state, config.precision
    trainer = objective if engine_step else objective_value(objective, policy)  # cast once
    inputs = prepare(config, trainer, optimizer, params, model_state, data, validation_data)
    if early_stopping is not None:   # before anything compiles
        check_monitor(config.early_stopping, metric_names(
            objective, params, model_state, inputs.example, validation=config.validation,
            skipped=config.guard == "skip"))
    # A copy, so that donating the train state never invalidates the caller's arrays.
    ts = inputs.place(TrainState.create(params, optimizer, model_state, precision=policy)
                      if not engine_step else engine_state(objective, params, model_state, policy))
    result = FitRun(config, inputs, ts, fit_checkpoints(config, inputs.sizes)).train()
    if engine_step or step_metrics:
        return result
    warn_if_diverged(result.history, lambda: initial_loss(
        objective, params, model_state, inputs.example, inputs.sizes["batch_size"]))
    return result


def check_trainer_options(objective, optimizer, early_stopping, precision) -> None:
    """``fit``'s trainer check (:func:`fnn.train.config.check_trainer`), and what an
    engine-form step cannot do: early stopping (it has no metric names before it runs) and
    loss scaling (its losses are its own)."""
    check_trainer("fit", objective, optimizer)
    if not is_engine_step(objective):
        return
    if early_stopping is not None:
        raise ValueError("fit: early_stopping needs an objective's metric names; an "
                         "engine-form step (multi_step, gan_step) has none: stop from a hook")
    if precision is not None and get_policy(precision, who="fit").loss_scaling:
        raise ValueError(f"fit: an engine-form step (multi_step, gan_step) cannot scale its "
                         f"losses; use a precision policy without loss scaling, got "
                         f"{precision!r}")


def engine_state(step, trees, model_state, policy) -> TrainState:
    """The state before the first step of an engine-form step: its trees (in the policy's
    param dtype), ``model_state``, ``step.init(trees)`` and step 0."""
    if policy is not None:
        trees = policy.cast_to_param(trees)
    return TrainState(trees, model_state, step.init(trees), jnp.zeros((), jnp.int32))


class FitRun:
    """One ``fit`` run between compiled calls: the train state ``ts``, the epoch and step
    counters, the ``history``, the hooks called after every call (:mod:`fnn.train.hooks`:
    progress, early stopping, the periodic checkpoint, callbacks), ``stop``, and what
    happens at the end, when the run is interrupted or stopped by the NaN guard."""

    def __init__(self, config: FitConfig, inputs: Inputs, ts: TrainState,
                 checkpoints: FitCheckpoints | None):
        self.config, self.inputs, self.checkpoints = config, inputs, checkpoints
        self.runner, self.steps_per_epoch = inputs.runner, inputs.steps_per_epoch
        self.ts, self.history, self.epoch, self.stop = ts, History(), 0, False
        rule = config.early_stopping
        self.stopping = (EarlyStoppingHook(EarlyStopper(rule),
                                           announce=config.progress is not False)
                         if rule is not None else None)
        self.pending = None   # (outputs, count) of a compiled call not yet recorded
        self.early_stop = None   # an EarlyStop once early stopping ends the run
        if config.resume:
            self.resume()
        self.step = int(self.ts.step)  # the global step counter, tracked on the host too

    @property
    def stopper(self) -> EarlyStopper | None:
        return self.stopping.stopper if self.stopping is not None else None

    def hooks(self) -> list[Hook]:
        """The hooks run after every compiled call, in order: progress, early stopping, the
        periodic checkpoint, the callbacks (functions, then :class:`Hook` objects)."""
        mode, every = progress_mode(self.config.progress if is_primary() else False)
        functions = [f for f in self.config.callbacks if not isinstance(f, Hook)]
        return [ProgressHook(Progress(mode, every, self.config.epochs, self.epoch)),
                *([self.stopping] if self.stopping is not None else []),
                *([CheckpointHook(self.config.checkpoint_every, self.config.epochs)]
                  if self.checkpoints is not None else []),
                *([Callbacks(functions)] if functions else []),
                *[h for h in self.config.callbacks if isinstance(h, Hook)]]

    def train(self) -> FitResult:
        hooks = self.hooks()
        wants_rows = any(hook.rows for hook in hooks)
        every_epoch = self.inputs.per_epoch or any(hook.every_epoch for hook in hooks)
        try:
            while self.epoch < self.config.epochs and not self.stop:
                count = self.config.calls_from(self.epoch, every_epoch)
                self.pending = (self.runner(self.ts, self.epoch, count), count)
                metrics = self.record()
                rows = make_rows(metrics) if wants_rows else []
                for hook in hooks:
                    hook.after_epochs(self, metrics, rows)
            self.final_checkpoint()
        except KeyboardInterrupt:
            self.interrupted()
            raise
        finally:
            for hook in hooks:
                hook.close()
        self.warn_if_nonfinite()
        best = self.stopper.best if self.stopper is not None else None
        params, model_state = (self.ts.params, self.ts.model_state) if best is None else best
        return FitResult(*self.inputs.returned((params, model_state, self.ts.opt_state)),
                         self.history.arrays(), self.early_stop)

    def record(self) -> dict:
        """Take in the pending call's outputs; returns its epochs' metrics as host arrays
        (``{name: np.ndarray[count]}``)."""
        (ts, metrics, guard), count = self.pending
        metrics = {k: v[:count] for k, v in jax.device_get(metrics).items()}
        if guard is not None and int(guard.bad_step) >= 0:
            self.raise_nonfinite(ts, metrics, guard)
        # One statement, so an interrupt sees either the old record or the new one.
        self.ts, self.history, self.epoch, self.step, self.pending = (
            ts, self.history.extended(metrics), self.epoch + count,
            self.step + count * self.steps_per_epoch, None)
        return metrics

    def save(self, *, finished: bool, stopped: bool, reason: str):
        best = self.stopper.best if self.stopper is not None else None
        state = self.stopper.state() if self.stopper is not None else None
        return self.checkpoints.save(self.epoch, self.ts, best, self.history, state,
                                     finished=finished, stopped=stopped, reason=reason)

    def final_checkpoint(self) -> None:
        if self.checkpoints is None:
            return
        if self.stop and self.checkpoints.saved != (self.epoch, True):
            self.save(finished=True, stopped=True, reason="stopped")
        elif self.checkpoints.saved[0] != self.epoch:  # e.g. resumed a finished run
            self.save(finished=self.epoch >= self.config.epochs, stopped=self.stop,
                      reason="final")

    def resume(self) -> None:
        found = self.checkpoints.resume(self.ts) if self.checkpoints is not None else None
        if found is None:
            return
        self.ts = self.inputs.place(found.ts)
        if self.stopping is not None:
            self.stopping.stopper = EarlyStopper(self.config.early_stopping, best=found.best,
                                                 **(found.early_stopping or {}))
        self.history, self.epoch, self.stop = found.history, found.epoch, found.stopped
        if self.stop and self.stopper is not None and self.stopper.stopped_epoch is not None:
            self.early_stop = self.stopper.resumed()
            self.stop = self.early_stop is not None

    def interrupted(self) -> None:
        """KeyboardInterrupt: record a call that finished, save, warn (then fit re-raises)."""
        if self.checkpoints is None:
            return
        if self.pending is not None:
            # Best effort while interrupted: if the results cannot be fetched (or the guard
            # tripped), ``pending`` stays set and the newest checkpoint is the last good state.
            with contextlib.suppress(Exception):
                self.record()
        deleted = any(getattr(a, "is_deleted", lambda: False)() for a in jax.tree.leaves(self.ts))
        if self.pending is None and not deleted:  # a donated state is gone: nothing to save
            saved = (self.checkpoints.saved[0] == self.epoch
                     or self.save(finished=False, stopped=False, reason="interrupt") is not None)
            where = (f"saved {str(self.checkpoints.manager.path(self.epoch))!r} (resume with "
                     f"resume=True)" if saved else "its checkpoint could not be written")
            warnings.warn(f"fit: interrupted after epoch {self.epoch}; {where}", stacklevel=4)
        else:
            warnings.warn("fit: interrupted while the train state was being replaced; the "
                          "newest checkpoint in the directory is the last consistent one",
                          stacklevel=4)

    def raise_nonfinite(self, ts: TrainState, metrics: dict, guard) -> None:
        """Record the complete epochs of the failed call, save the last finite state, raise."""
        guard = jax.device_get(guard)
        bad_step, check = int(guard.bad_step), int(guard.bad_check)
        spe = self.steps_per_epoch
        epochs_done = (bad_step - self.step) // spe
        sites = check_sites(ts.params, self.inputs.losses)
        kind, path = sites[check] if 0 <= check < len(sites) else ("loss", None)
        report = NonFiniteReport(kind, path, bad_step, self.epoch + epochs_done,
                                 (bad_step - self.step) % spe, spe, float(guard.bad_loss))
        history = self.history.extended(metrics, epochs=epochs_done)
        saved = (self.checkpoints.save_nonfinite(ts, history, report)
                 if self.checkpoints is not None else None)
        raise NonFiniteError(
            f"fit: non-finite {report.describe()}; loss {report.loss:.6g}). Training stopped "
            f"(on_nonfinite='raise'); err.params hold the params from before that step"
            + (f", saved to {str(saved)!r}" if saved else "")
            + ". Lower the learning rate, check the data (check_finite_inputs=True), or pass "
              "on_nonfinite='skip' to skip such steps.",
            report, params=ts.params, model_state=ts.model_state, opt_state=ts.opt_state,
            history=history.arrays(), checkpoint=saved)

    def warn_if_nonfinite(self) -> None:
        """With the guard off, say so when the loss became non-finite."""
        loss = self.history.arrays().get("loss")
        finite = None if loss is None else np.isfinite(loss).reshape(len(loss), -1).all(axis=1)
        if self.config.guard is None and loss is not None and not np.all(finite):
            first = int(np.argmin(finite))
            warnings.warn(f"fit: the loss became non-finite (NaN or inf) in epoch {first}, so "
                          f"the returned params are likely non-finite too. Pass "
                          f"on_nonfinite='raise' to stop at the first bad step with a report "
                          f"of where it happened, or on_nonfinite='skip' to leave such steps "
                          f"out; check_finite_inputs=True checks the data first",
                          RuntimeWarning, stacklevel=4)
