"""Training: a compiled train step, ``fit`` (epochs as one ``lax.scan``), evaluation, early stopping.

The contract between a model and the training loop is an *objective*::

    objective(params, state, batch, key, train) -> (loss, (new_state, metrics))

where ``batch`` is any pytree of arrays with a leading batch axis (``(x, y)`` for supervised
learning), ``key`` a PRNG key (or None in evaluation), ``metrics`` a dict of scalars that
includes ``'loss'``. :func:`supervised` builds one from a network and a loss. Optimizers are
anything with optax's ``init``/``update`` (``fnn.optim`` or optax itself).

Randomness is a function of the seed and the position in training only: epoch ``e`` is
shuffled with ``fold_in(shuffle_key, e)`` and step ``t`` gets ``fold_in(step_key, t)``, so a
run is reproducible (and resumable) from its seed. The epoch scan is never unrolled, so the
compiled step is the same whatever ``epochs_per_call`` is: chunking never changes a bit of
the result, and a run resumed from a checkpoint is bit-identical to an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import functools
import math
import warnings
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn import checkpoint as _ckpt
from fnn import losses
from fnn._cpu_grad import value_and_grad
from fnn._names import did_you_mean
from fnn.core import Layer
from fnn.optim.base import apply_updates

__all__ = ["TrainState", "supervised", "train_step", "evaluate", "EarlyStopping", "FitResult", "fit",
           "NonFiniteError"]

Objective = Callable[..., tuple[jax.Array, tuple[Any, dict]]]


class TrainState(NamedTuple):
    """Everything a training step changes: params, model state, optimizer state, step count."""
    params: Any
    model_state: Any
    opt_state: Any
    step: jax.Array


def supervised(net: Layer, loss: Callable = losses.softmax_cross_entropy, *, l2: float = 0.0,
               l1: float = 0.0, accuracy: bool | None = None) -> Objective:
    """The objective of supervised learning on ``batch = (x, y)``:

        L = loss(net(x), y) + l2 * 1/2 sum w^2 + l1 * sum |w|     (biases not penalised)

    Metrics: ``loss`` (the data term, as the notes print it), ``accuracy`` (default: on when
    ``loss`` is ``softmax_cross_entropy``).

    The objective carries ``check_data(params, state, data, who)``, which ``fit`` calls before
    compiling: ``data`` must be ``(x, y)``, ``x`` must fit the network and ``y`` the loss
    (checked on shapes, without FLOPs), and integer labels must lie in ``[0, classes)``.
    """
    if not isinstance(net, Layer):
        raise TypeError(f"supervised: net must be an fnn Layer (e.g. fnn.serial(...)), got "
                        f"{type(net).__name__}")
    if not callable(loss):
        raise TypeError(f"supervised: loss must be a function (pred, target) -> scalar, e.g. "
                        f"fnn.losses.mse, got {loss!r}")
    for arg, v in (("l2", l2), ("l1", l1)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"supervised: {arg} must be a finite number >= 0, got {v!r}")
    if accuracy is None:
        accuracy = loss is losses.softmax_cross_entropy

    def objective(params, state, batch, key, train):
        x, y = batch
        out, state = net.apply(params, state, x, key=key, train=train)
        data_loss = loss(out, y)
        total = data_loss
        if l2:
            total = total + l2 * losses.l2_penalty(params)
        if l1:
            total = total + l1 * losses.l1_penalty(params)
        metrics = {"loss": data_loss}
        if accuracy:
            metrics["accuracy"] = losses.accuracy(out, y)
        return total, (state, metrics)

    checked: dict = {}  # shape signature -> number of outputs (shape checks run once each)

    def check_data(params, state, data, who):
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            got = f"{type(data).__name__} of {len(data)}" if isinstance(data, (tuple, list)) \
                else type(data).__name__
            raise ValueError(f"{who}: supervised data must be a pair (x, y), got {got}")
        x, y = data
        signature = (jax.tree.structure((params, state)),
                     tuple((np.shape(a), str(a.dtype)) for a in jax.tree.leaves((params, state, x, y))))
        if signature not in checked:
            spec = lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype)
            out, logits = jax.eval_shape(
                lambda p, s, x, y: (lambda z: (loss(z, y), z))(net.apply(p, s, x)[0]),
                params, state, spec(x), spec(y))
            if np.ndim(out) != 0:
                raise ValueError(f"{who}: the loss must return a scalar, got shape {np.shape(out)}")
            if len(checked) >= 16:
                checked.pop(next(iter(checked)))
            checked[signature] = logits.shape[-1] if getattr(logits, "ndim", 0) else None
        classes = checked[signature]
        if (loss is losses.softmax_cross_entropy and classes
                and jnp.issubdtype(y.dtype, jnp.integer)):
            labels = np.asarray(y)
            if labels.size and (labels.min() < 0 or labels.max() >= classes):
                raise ValueError(f"{who}: integer labels must lie in [0, {classes}) for a network "
                                 f"with {classes} outputs, got values from {labels.min()} to "
                                 f"{labels.max()}")

    objective.check_data = check_data
    return objective


def train_step(objective: Objective, optimizer) -> Callable:
    """The pure step ``(ts: TrainState, batch, key) -> (ts, metrics)``:

        g = d objective / d params;  updates, opt_state = optimizer.update(g, opt_state, params)
        params = params + updates

    Wrap it in ``jax.jit(step, donate_argnums=0)`` to run it alone; ``fit`` scans it. On the
    CPU backend the gradient's convolutions and max-pool scatters are computed in the forms
    XLA:CPU runs fast inside loops (:mod:`fnn._cpu_grad`; same values).
    """

    checked = _checked_step(objective, optimizer)

    def step(ts: TrainState, batch, key):
        ts, metrics, _ = checked(ts, batch, key)
        return ts, metrics

    return step


def _inexact_leaves(tree) -> list:
    return [a for a in jax.tree.leaves(tree) if jnp.issubdtype(a.dtype, jnp.inexact)]


def _checked_step(objective: Objective, optimizer) -> Callable:
    """``(ts, batch, key) -> (ts, metrics, finite)``: the train step plus, for the NaN guard,
    a bool vector ``finite`` = [each gradient leaf finite..., loss finite, each updated
    parameter leaf finite...] (inexact leaves only, in flattening order). Unused parts are
    dead code that XLA removes."""

    def step(ts: TrainState, batch, key):
        training = lambda p, s, b, k: objective(p, s, b, k, True)
        (total, (model_state, metrics)), grads = value_and_grad(training, has_aux=True)(
            ts.params, ts.model_state, batch, key)
        updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
        params = apply_updates(ts.params, updates)
        metrics = {"loss": total, **metrics}
        finite = jnp.stack([jnp.all(jnp.isfinite(a)) for a in
                            [*_inexact_leaves(grads), total, *_inexact_leaves(params)]])
        return TrainState(params, model_state, opt_state, ts.step + 1), metrics, finite

    return step


def _check_names(params) -> list[str]:
    """What each entry of ``_checked_step``'s ``finite`` vector checks, for error messages."""
    paths = [jax.tree_util.keystr(p) for p, a in jax.tree_util.tree_flatten_with_path(params)[0]
             if jnp.issubdtype(a.dtype, jnp.inexact)]
    return ([f"gradient {p}" for p in paths] + ["loss"]
            + [f"parameter {p} after the update" for p in paths])


# ----------------------------------------------------------------------------- data checks

def _num_examples(data, who: str) -> int:
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError(f"{who}: data is empty (no arrays given)")
    lengths = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in leaves}
    if len(lengths) != 1 or -1 in lengths:
        raise ValueError(f"{who}: every array in data needs the same leading (example) axis, got "
                         f"shapes {[tuple(np.shape(a)) for a in leaves]}")
    n = lengths.pop()
    if n == 0:
        raise ValueError(f"{who}: data has 0 examples")
    return n


def _check_batch_size(batch_size, n: int, who: str) -> int:
    if batch_size is None:
        return n
    if not (isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1):
        raise ValueError(f"{who}: batch_size must be a positive int or None (full batch), "
                         f"got {batch_size!r}")
    if batch_size > n:
        raise ValueError(f"{who}: batch_size ({batch_size}) is larger than the dataset ({n} "
                         f"examples); use batch_size=None for full-batch training")
    return batch_size


# ----------------------------------------------------------------------------- evaluation

def _mean_metrics(objective, params, state, data, batch_size: int):
    """Example-weighted mean of the objective's metrics over full batches plus the remainder."""
    n = jax.tree.leaves(data)[0].shape[0]
    full, rest = divmod(n, batch_size)

    def metrics_of(batch):
        total, (_, metrics) = objective(params, state, batch, None, False)
        return {"loss": total, **metrics}

    batches = jax.tree.map(lambda a: a[: full * batch_size].reshape(full, batch_size, *a.shape[1:]),
                           data)
    sums = jax.tree.map(lambda m: jnp.sum(m, axis=0) * batch_size, jax.lax.map(metrics_of, batches))
    if rest:
        tail = metrics_of(jax.tree.map(lambda a: a[full * batch_size:], data))
        sums = jax.tree.map(lambda s, m: s + m * rest, sums, tail)
    return jax.tree.map(lambda s: s / n, sums)


@functools.partial(jax.jit, static_argnums=(0, 4))
def _evaluate(objective, params, state, data, batch_size):
    return _mean_metrics(objective, params, state, data, batch_size)


def evaluate(objective: Objective, params, state, data, *, batch_size: int | None = None) -> dict:
    """Mean metrics of ``objective`` over ``data`` in evaluation mode (train=False, no key).

    The whole set is one batch unless ``batch_size`` is given (then full batches plus the
    remainder, weighted by size). Returns ``{name: float}``.
    """
    n = _num_examples(data, "evaluate")
    batch_size = _check_batch_size(batch_size, n, "evaluate")
    metrics = _evaluate(objective, params, state if state is not None else {}, data, batch_size)
    return {k: float(v) for k, v in metrics.items()}


# ----------------------------------------------------------------------------- fit

class NonFiniteError(FloatingPointError):
    """``fit(..., on_nonfinite='raise')`` met a non-finite loss, gradient or updated parameter.

    Attributes: ``step`` (global step number, counting from 0), ``epoch``, ``what``
    (``'gradient'``, ``'loss'`` or ``'parameter'``), ``path`` (the first offending leaf's key
    path, e.g. ``"['dense_0']['w']"``, or None for the loss), ``loss`` (its value at that
    step), ``params``, ``model_state``, ``opt_state`` (the last finite ones: from before that
    step), ``history`` (complete epochs only) and ``checkpoint`` (the file they were saved to,
    or None).
    """

    def __init__(self, message, **fields):
        super().__init__(message)
        self.__dict__.update(fields)


class EarlyStopping(NamedTuple):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``mode='min'`` for losses, ``'max'`` for accuracies; ``restore_best`` returns the params
    (and model state) of the best epoch instead of the last.
    """
    monitor: str = "val_loss"
    patience: int = 10
    min_delta: float = 0.0
    mode: str = "min"
    restore_best: bool = True


class FitResult(NamedTuple):
    """What ``fit`` returns: final (or best) params and states, and per-epoch ``history``
    (``{metric: np.ndarray[epochs]}``; validation metrics are prefixed ``val_``)."""
    params: Any
    model_state: Any
    opt_state: Any
    history: dict


class _Guard(NamedTuple):
    """The 'raise' guard's carry: the first non-finite step of a call (-1: none), which check
    failed (index into ``_check_names``) and the loss there."""
    bad_step: jax.Array
    bad_check: jax.Array
    bad_loss: jax.Array


def _select(ok, new, old):
    """``new`` where the scalar ``ok`` holds, else ``old`` (leafwise, no broadcasting)."""
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


def _masked_mean(metrics, ok):
    """Per-metric mean over the steps where ``ok`` (NaN when there are none)."""
    count = jnp.sum(ok)

    def mean(m):
        if not jnp.issubdtype(m.dtype, jnp.inexact):
            m = m.astype(jnp.float32)
        return jnp.sum(jnp.where(ok, m, jnp.zeros_like(m)), axis=0) / count.astype(m.dtype)

    return jax.tree.map(mean, metrics)


@functools.lru_cache(maxsize=64)
def _epoch_runner(objective, optimizer, n: int, batch_size: int, val_batch_size: int | None,
                  guard: str | None = None, unroll: int = 1):
    """A jitted ``run(ts, data, val_data, keys, first_epoch, epochs) -> (ts, metrics[epochs],
    guard)``.

    One call scans ``epochs`` epochs; each epoch scans its shuffled minibatches (the last
    partial batch is dropped; a full-batch epoch is one step on the whole, unshuffled set).
    Cached per (objective, optimizer, sizes, guard) so repeated ``fit`` calls reuse the
    compilation. The epoch scan is not unrolled unless ``unroll > 1`` is asked for: unrolling
    lets XLA compile the steps of an unrolled group differently from a lone step, so results
    would depend on how epochs are chunked into calls (and a resumed run would differ from an
    uninterrupted one).

    ``guard``: None (no checks), ``'raise'`` (after the first step whose ``finite`` checks
    fail nothing is updated any more; the step and check are returned in ``guard``) or
    ``'skip'`` (a failing step leaves params, model and optimizer state unchanged; the step
    counter still advances so later keys do not shift; metrics average the applied steps and
    ``skipped`` counts the others).
    """
    step = _checked_step(objective, optimizer)
    steps_per_epoch = n // batch_size

    def guarded(carry, batch, key):
        ts, g = carry
        new, metrics, finite = step(ts, batch, key)
        ok = jnp.all(finite)
        if guard is None:
            return (new, g), metrics, ok
        if guard == "skip":
            kept = _select(ok, (new.params, new.model_state, new.opt_state),
                           (ts.params, ts.model_state, ts.opt_state))
            return (TrainState(*kept, new.step), g), metrics, ok
        first = (g.bad_step < 0) & ~ok
        g = _Guard(jnp.where(first, ts.step, g.bad_step),
                   jnp.where(first, jnp.argmin(finite).astype(jnp.int32), g.bad_check),
                   jnp.where(first, metrics["loss"].astype(jnp.float32), g.bad_loss))
        return (_select(g.bad_step < 0, new, ts), g), metrics, ok

    def one_epoch(carry, data, val_data, shuffle_key, step_key, epoch):
        if batch_size == n:  # full batch: one step on the whole set, no shuffle, no gather
            carry, metrics, ok = guarded(carry, data, jax.random.fold_in(step_key, carry[0].step))
            if guard == "skip":
                metrics = _masked_mean(jax.tree.map(lambda m: m[None], metrics), ok[None])
        else:
            perm = jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), n)
            batch_index = perm[: steps_per_epoch * batch_size].reshape(steps_per_epoch, batch_size)

            def body(carry, index):
                batch = jax.tree.map(lambda a: a[index], data)
                carry, metrics, ok = guarded(carry, batch,
                                             jax.random.fold_in(step_key, carry[0].step))
                return carry, (metrics, ok)

            carry, (metrics, ok) = jax.lax.scan(body, carry, batch_index)
            metrics = (_masked_mean(metrics, ok) if guard == "skip" else
                       jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics))
        if guard == "skip":
            metrics["skipped"] = jnp.sum(~ok).astype(jnp.int32)
        ts = carry[0]
        if val_data is not None:
            val = _mean_metrics(objective, ts.params, ts.model_state, val_data, val_batch_size)
            metrics.update({f"val_{k}": v for k, v in val.items()})
        return carry, metrics

    @functools.partial(jax.jit, static_argnums=(5,), donate_argnums=(0,))
    def run(ts, data, val_data, keys, first_epoch, epochs):
        shuffle_key, step_key = keys
        epoch_ids = first_epoch + jnp.arange(epochs)
        g = None if guard != "raise" else _Guard(jnp.int32(-1), jnp.int32(-1),
                                                  jnp.float32(jnp.nan))
        (ts, g), metrics = jax.lax.scan(
            lambda carry, e: one_epoch(carry, data, val_data, shuffle_key, step_key, e),
            (ts, g), epoch_ids, unroll=min(unroll, epochs))
        return ts, metrics, g

    return run


# ----------------------------------------------------------------------------- fit helpers

def _positive_int(value, what: str, none_ok: bool = False):
    if value is None and none_ok:
        return None
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"fit: {what} must be a positive int{' or None' if none_ok else ''}, "
                         f"got {value!r}")
    return int(value)


def _check_finite_data(data, who: str) -> None:
    """Raise ``ValueError`` naming the first leaf of ``data`` holding NaN or inf."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(data)[0]:
        array = np.asarray(jax.device_get(leaf))
        if np.issubdtype(array.dtype, np.inexact):
            bad = ~np.isfinite(array)
            if bad.any():
                first = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(f"{who}: data{jax.tree_util.keystr(path)} holds {int(bad.sum())} "
                                 f"non-finite value(s) (NaN or inf), the first at index {first} "
                                 f"({array[first]}); clean or impute them before training")


def _history_to_json(history: dict) -> dict:
    return {k: {"dtype": v.dtype.name, "values": v.tolist()} for k, v in history.items()}


def _history_from_json(saved: dict) -> dict:
    return {k: np.asarray(v["values"], dtype=np.dtype(v["dtype"])) for k, v in saved.items()}


def _concat(history: dict) -> dict:
    return {k: np.concatenate(v) if v else np.zeros(0, np.float32) for k, v in history.items()}


class _Checkpointing:
    """fit's checkpoints: what goes in them and how a resume reads them back."""

    def __init__(self, directory, keep, best_metric, best_mode, config):
        self.manager = _ckpt.CheckpointManager(directory, keep=keep, best_metric=best_metric,
                                               best_mode=best_mode)
        self.config = config
        self.saved = (None, False)   # (epoch, stopped) of the last checkpoint written or read

    def tree(self, ts, best):
        tree = {"params": ts.params, "model_state": ts.model_state, "opt_state": ts.opt_state,
                "step": ts.step}
        if best is not None:
            tree["best"] = {"params": best[0], "model_state": best[1]}
        return tree

    def save(self, epoch, ts, best, history, es, *, finished, stopped, reason, row):
        meta = {"fit": {**self.config, "epoch": epoch, "finished": bool(finished),
                        "stopped": bool(stopped), "reason": reason, "early_stopping": es,
                        "history": _history_to_json(_concat(history))}}
        path = self.manager.save(epoch, self.tree(ts, best), metadata=meta, metrics=row)
        self.saved = (epoch, bool(stopped))
        return path

    def save_nonfinite(self, step, epoch, ts, history, info):
        meta = {"fit": {**self.config, "epoch": epoch, "finished": False, "stopped": True,
                        "reason": "nonfinite", "nonfinite": info,
                        "history": _history_to_json(_concat(history))}}
        path = self.manager.directory / f"nonfinite-{step:08d}.npz"
        self.manager.directory.mkdir(parents=True, exist_ok=True)
        return _ckpt.save(path, self.tree(ts, None), metadata=meta)

    def resume(self, ts):
        """``(tree, fit metadata, path)`` of the newest intact checkpoint, or None."""
        for path in reversed(self.manager.list()):
            try:
                manifest = _ckpt.read_manifest(path)
                meta = manifest["metadata"].get("fit")
                if not isinstance(meta, dict) or "history" not in meta:
                    raise _ckpt.CheckpointCorruptError(
                        f"{str(path)!r} was not written by fit (no 'fit' metadata)")
                has_best = any(l["path"].startswith("['best']") for l in manifest["leaves"])
                best = (ts.params, ts.model_state) if has_best else None
                tree = _ckpt.restore(path, self.tree(ts, best))
            except _ckpt.CheckpointCorruptError as err:
                warnings.warn(f"fit: skipping corrupt checkpoint {str(path)!r} while resuming: "
                              f"{err}", stacklevel=3)
                continue
            for key in ("seed", "batch_size", "num_examples", "on_nonfinite"):
                if meta.get(key) != self.config[key]:
                    warnings.warn(f"fit: resuming from {str(path)!r}, which was written with "
                                  f"{key}={meta.get(key)!r}, but this call has "
                                  f"{key}={self.config[key]!r}; the result will differ from an "
                                  f"uninterrupted run", stacklevel=3)
            self.saved = (meta["epoch"], bool(meta.get("stopped")))
            return tree, meta, path
        return None


# ----------------------------------------------------------------------------- fit

def fit(objective: Objective, params, optimizer, data, *, model_state=None, epochs: int = 1,
        batch_size: int | None = None, seed: int = 0, validation_data=None,
        early_stopping: EarlyStopping | None = None,
        callbacks: Sequence[Callable[[int, dict], bool | None]] = (), progress: bool = True,
        epochs_per_call: int | None = None, checkpoint_dir=None,
        checkpoint_every: int | None = None, keep: int | None = 3, resume: bool = False,
        on_nonfinite: str | None = None, check_finite_inputs: bool = False,
        unroll: int = 1) -> FitResult:
    """Train ``params`` to minimise ``objective`` on ``data`` with ``optimizer``.

    Args:
      objective: ``(params, state, batch, key, train) -> (loss, (state, metrics))``
        (see :func:`supervised`).
      params, model_state: initial parameters and model state (e.g. from ``net.init``).
      optimizer: ``fnn.optim`` or optax transformation.
      data: pytree of arrays with a leading example axis, e.g. ``(x, y)``.
      epochs: passes over the data (in total, counting those of a resumed run). With
        ``batch_size=None`` every epoch is one full-batch step, so ``epochs`` is the number
        of gradient steps.
      batch_size: minibatch size (shuffled each epoch, last partial batch dropped) or None.
      seed: determines the shuffles and the per-step keys (dropout etc.).
      validation_data: evaluated after every epoch, reported as ``val_<metric>``.
      early_stopping: an :class:`EarlyStopping` rule (needs ``validation_data`` for ``val_*``).
      callbacks: ``f(epoch, metrics) -> stop?`` called after every epoch (after that epoch's
        checkpoint, if one is due, has been written).
      progress: show a tqdm bar with the current loss.
      epochs_per_call: epochs per compiled call (default: all of them without a bar, ~50
        updates with one; 1 when callbacks or early stopping need every epoch). It never
        changes the result, only how often Python sees the metrics.
      checkpoint_dir: write checkpoints ``ckpt-<epoch>.npz`` there (see ``fnn.checkpoint``):
        every ``checkpoint_every`` epochs, at the end, when the run is interrupted
        (KeyboardInterrupt: saved, then re-raised) and when the NaN guard stops it.
      checkpoint_every: epochs between checkpoints (None: only at the end and on interrupts).
        Compiled calls are cut at these epochs.
      keep: how many of the newest checkpoints to keep (plus the best by the early-stopping
        metric, or ``val_loss``, or ``loss``); None keeps all.
      resume: continue from the newest intact checkpoint in ``checkpoint_dir`` (corrupt ones
        are skipped with a warning; without any, start afresh): params, optimizer and model
        state, the epoch and step counters, the history and the early-stopping state. The
        result is bit-identical to an uninterrupted run with the same arguments.
      on_nonfinite: the NaN guard, checked on device at every step (no host sync): None (off),
        ``'raise'`` (stop with :class:`NonFiniteError` naming the step and the first
        non-finite gradient/loss/parameter; ``err.params`` are those from before that step,
        also saved to ``checkpoint_dir/nonfinite-<step>.npz``) or ``'skip'`` (a bad step
        changes nothing, like ``optax.apply_if_finite``; ``history['skipped']`` counts them
        per epoch and the other metrics average the applied steps).
      check_finite_inputs: reject data holding NaN or inf before training (a host pass).
      unroll: epochs per iteration of the compiled epoch loop. For tiny networks trained
        full-batch the loop's own overhead is a large part of a step, and ``unroll=8`` saves
        about 10% (the quadrant net). The price: XLA may compile the unrolled steps slightly
        differently (last-bit differences), so results then depend on ``epochs_per_call``;
        that is why it cannot be combined with checkpointing, whose resume is bit-identical.

    Returns a :class:`FitResult`. Every epoch (its minibatch steps, the metric means and the
    validation pass) runs inside one compiled ``lax.scan``; nothing returns to Python between
    epochs of the same call.
    """
    from tqdm.auto import tqdm

    if not callable(objective):
        raise TypeError(f"fit: objective must be a function (params, state, batch, key, train) "
                        f"-> (loss, (state, metrics)), e.g. fnn.supervised(net), got {objective!r}")
    if not (callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))):
        raise TypeError(f"fit: optimizer must have init and update (an fnn.optim or optax "
                        f"optimizer such as fnn.optim.sgd(0.1)), got {type(optimizer).__name__}")
    n = _num_examples(data, "fit")
    batch_size = _check_batch_size(batch_size, n, "fit")
    if not (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1):
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    if not (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        raise TypeError(f"fit: seed must be an int, got {seed!r}")
    epochs_per_call = _positive_int(epochs_per_call, "epochs_per_call", none_ok=True)
    checkpoint_every = _positive_int(checkpoint_every, "checkpoint_every", none_ok=True)
    if on_nonfinite not in (None, "raise", "skip"):
        raise ValueError(f"fit: on_nonfinite must be None, 'raise' or 'skip', got "
                         f"{on_nonfinite!r}{did_you_mean(on_nonfinite, ['raise', 'skip'])}")
    unroll = _positive_int(unroll, "unroll")
    if unroll > 1 and checkpoint_dir is not None:
        raise ValueError(f"fit: unroll={unroll} cannot be combined with checkpoint_dir: an "
                         f"unrolled loop makes results depend on how epochs are chunked into "
                         f"calls, so a resumed run would not be bit-identical; use unroll=1")
    if checkpoint_dir is None and (resume or checkpoint_every is not None):
        raise ValueError(f"fit: {'resume=True' if resume else 'checkpoint_every'} needs "
                         f"checkpoint_dir (the directory the checkpoints are in)")
    if isinstance(callbacks, Callable):
        callbacks = (callbacks,)
    for callback in callbacks:
        if not callable(callback):
            raise TypeError(f"fit: callbacks must be functions f(epoch, metrics) -> stop?, got "
                            f"{callback!r}")
    val_batch_size = None
    if validation_data is not None:
        n_val = _num_examples(validation_data, "fit(validation_data)")
        val_batch_size = min(n_val, max(batch_size, 1024))
    if early_stopping is not None:
        if not isinstance(early_stopping, EarlyStopping):
            raise TypeError(f"fit: early_stopping must be an fnn.EarlyStopping, got "
                            f"{type(early_stopping).__name__}")
        if early_stopping.mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {early_stopping.mode!r}")
        if not (isinstance(early_stopping.patience, int) and early_stopping.patience >= 1):
            raise ValueError(f"EarlyStopping: patience must be a positive int, got "
                             f"{early_stopping.patience!r}")
        if not (isinstance(early_stopping.min_delta, (int, float))
                and math.isfinite(early_stopping.min_delta) and early_stopping.min_delta >= 0):
            raise ValueError(f"EarlyStopping: min_delta must be a finite number >= 0, got "
                             f"{early_stopping.min_delta!r}")
        if early_stopping.monitor.startswith("val_") and validation_data is None:
            raise ValueError(f"fit: early stopping monitors {early_stopping.monitor!r} but no "
                             f"validation_data was given")
    if epochs_per_call is None:
        epochs_per_call = (1 if (callbacks or early_stopping) else
                           max(1, epochs // 50) if progress else epochs)

    if check_finite_inputs:
        _check_finite_data(data, "fit")
        if validation_data is not None:
            _check_finite_data(validation_data, "fit(validation_data)")
    data = jax.tree.map(jnp.asarray, data)
    if validation_data is not None:
        validation_data = jax.tree.map(jnp.asarray, validation_data)
    model_state = {} if model_state is None else model_state
    check_data = getattr(objective, "check_data", None)
    if check_data is not None:
        check_data(params, model_state, data, "fit")
        if validation_data is not None:
            check_data(params, model_state, validation_data, "fit(validation_data)")
    run = _epoch_runner(objective, optimizer, n, batch_size, val_batch_size, on_nonfinite, unroll)
    steps_per_epoch = n // batch_size
    base = jax.random.key(seed)
    keys = (jax.random.fold_in(base, 0), jax.random.fold_in(base, 1))
    # Copy so that donating the train state never invalidates the caller's arrays.
    ts = jax.tree.map(jnp.array, TrainState(params, model_state, optimizer.init(params),
                                            jnp.zeros((), jnp.int32)))

    history: dict[str, list] = {}  # metric -> per-call arrays of per-epoch values
    best = None
    best_value, since_best = None, 0
    epoch, stop = 0, False

    ckpt = None
    if checkpoint_dir is not None:
        best_metric = (early_stopping.monitor if early_stopping is not None
                       else "val_loss" if validation_data is not None else "loss")
        best_mode = early_stopping.mode if early_stopping is not None else "min"
        config = {"seed": int(seed), "batch_size": batch_size, "num_examples": n,
                  "on_nonfinite": on_nonfinite, "epochs": epochs}
        ckpt = _Checkpointing(checkpoint_dir, keep, best_metric, best_mode, config)
        if resume:
            found = ckpt.resume(ts)
            if found is not None:
                tree, meta, _ = found
                ts = TrainState(tree["params"], tree["model_state"], tree["opt_state"],
                                tree["step"])
                ts = jax.tree.map(jnp.array, ts)
                if "best" in tree:
                    best = (tree["best"]["params"], tree["best"]["model_state"])
                es = meta.get("early_stopping") or {}
                best_value, since_best = es.get("best_value"), es.get("since_best", 0)
                history = {k: [v] for k, v in _history_from_json(meta["history"]).items()}
                epoch = int(meta["epoch"])
                stop = bool(meta.get("stopped"))

    def last_row():
        return {k: float(v[-1][-1]) for k, v in history.items() if len(v) and len(v[-1])}

    def es_state():
        return None if early_stopping is None else {"best_value": best_value,
                                                    "since_best": since_best}

    step = int(ts.step)  # the global step counter, tracked on the host too
    bar = tqdm(total=epochs, initial=min(epoch, epochs), disable=not progress, unit="epoch",
               leave=False)
    pending = None  # the outputs of a compiled call not yet recorded
    try:
        while epoch < epochs and not stop:
            count = min(epochs_per_call, epochs - epoch)
            if checkpoint_every is not None:
                count = min(count, checkpoint_every - epoch % checkpoint_every)
            pending = run(ts, data, validation_data, keys, epoch, count)
            ts, metrics, guard = pending
            metrics = jax.device_get(metrics)
            if guard is not None and int(guard.bad_step) >= 0:
                _raise_nonfinite(guard, ts, metrics, history, epoch, step, steps_per_epoch, ckpt,
                                 on_nonfinite)
            recorded = {k: [*history.get(k, []), np.asarray(v)] for k, v in metrics.items()}
            # One statement, so an interrupt sees either the old record or the new one.
            history, epoch, step, pending = recorded, epoch + count, step + count * steps_per_epoch, None
            bar.update(count)
            bar.set_postfix(loss=f"{float(metrics['loss'][-1]):.4g}")

            rows = [{k: float(v[i]) for k, v in metrics.items()} for i in range(count)] \
                if (callbacks or early_stopping) else []
            if early_stopping is not None:
                for row in rows:
                    value = row.get(early_stopping.monitor)
                    if value is None:
                        raise ValueError(f"EarlyStopping: no metric {early_stopping.monitor!r}"
                                         f"{did_you_mean(early_stopping.monitor, row)}; "
                                         f"available: {sorted(row)}")
                    sign = 1.0 if early_stopping.mode == "min" else -1.0
                    if best_value is None or sign * (best_value - value) > early_stopping.min_delta:
                        best_value, since_best = value, 0
                        if early_stopping.restore_best:
                            best = jax.tree.map(jnp.copy, (ts.params, ts.model_state))
                    else:
                        since_best += 1
                        stop = stop or since_best >= early_stopping.patience
            if ckpt is not None and ((checkpoint_every is not None and epoch % checkpoint_every == 0)
                                     or epoch >= epochs or stop):
                ckpt.save(epoch, ts, best, history, es_state(), finished=epoch >= epochs or stop,
                          stopped=stop, reason="periodic", row=last_row())
            for i, row in enumerate(rows):
                for callback in callbacks:
                    stop = bool(callback(epoch - count + i, row)) or stop
        if ckpt is not None and stop and ckpt.saved != (epoch, True):
            ckpt.save(epoch, ts, best, history, es_state(), finished=True, stopped=True,
                      reason="stopped", row=last_row())
        elif ckpt is not None and ckpt.saved[0] != epoch:  # e.g. resumed a finished run
            ckpt.save(epoch, ts, best, history, es_state(), finished=epoch >= epochs,
                      stopped=stop, reason="final", row=last_row())
    except KeyboardInterrupt:
        if ckpt is not None:
            if pending is not None:  # the call finished (or will): record it, then save it
                # Best effort while interrupted: if the results cannot be fetched, ``pending``
                # stays set and the newest checkpoint remains the last consistent state.
                with contextlib.suppress(Exception):
                    ts, metrics, guard = pending
                    metrics = jax.device_get(metrics)
                    if guard is None or int(guard.bad_step) < 0:
                        history = {k: [*history.get(k, []), np.asarray(v)]
                                   for k, v in metrics.items()}
                        epoch, pending = epoch + count, None
            if pending is None and not any(getattr(a, "is_deleted", lambda: False)()
                                           for a in jax.tree.leaves(ts)):
                if ckpt.saved[0] != epoch:
                    ckpt.save(epoch, ts, best, history, es_state(), finished=False,
                              stopped=False, reason="interrupt", row=last_row())
                warnings.warn(f"fit: interrupted after epoch {epoch}; saved "
                              f"{str(ckpt.manager.path(epoch))!r} (resume with resume=True)",
                              stacklevel=2)
            else:
                warnings.warn("fit: interrupted while the train state was being replaced; the "
                              "newest checkpoint in the directory is the last consistent one",
                              stacklevel=2)
        raise
    finally:
        bar.close()

    params, model_state = (ts.params, ts.model_state) if best is None else best
    return FitResult(params, model_state, ts.opt_state, _concat(history))


def _raise_nonfinite(guard, ts, metrics, history, epoch, start_step, steps_per_epoch, ckpt,
                     mode):
    """Record the complete epochs of the failed call, save the last finite state, raise."""
    guard = jax.device_get(guard)
    bad_step, check = int(guard.bad_step), int(guard.bad_check)
    bad_epoch = epoch + (bad_step - start_step) // steps_per_epoch
    within = (bad_step - start_step) % steps_per_epoch
    names = _check_names(ts.params)
    full = bad_epoch - epoch
    for k, v in metrics.items():
        history.setdefault(k, []).append(np.asarray(v)[:full])
    history_done = _concat(history)
    name = names[check] if 0 <= check < len(names) else "loss"
    what, _, rest = name.partition(" ")
    path = rest.replace(" after the update", "") if what != "loss" else None
    info = {"step": bad_step, "epoch": bad_epoch, "what": what, "path": path,
            "loss": float(guard.bad_loss)}
    saved = None
    if ckpt is not None:
        saved = ckpt.save_nonfinite(bad_step, bad_epoch, ts, history, info)
    raise NonFiniteError(
        f"fit: non-finite {name} at step {bad_step} (epoch {bad_epoch}, "
        + (f"minibatch {within} of 0..{steps_per_epoch - 1}" if steps_per_epoch > 1
           else "its full-batch step")
        + f"; loss {float(guard.bad_loss):.6g}). Training stopped "
        f"(on_nonfinite={mode!r}); err.params hold the params from before that step"
        + (f", saved to {str(saved)!r}" if saved else "")
        + ". Lower the learning rate, check the data (check_finite_inputs=True), or pass "
          "on_nonfinite='skip' to skip such steps.",
        step=bad_step, epoch=bad_epoch, what=what, path=path, loss=float(guard.bad_loss),
        params=ts.params, model_state=ts.model_state, opt_state=ts.opt_state,
        history=history_done, checkpoint=saved)


# ----------------------------------------------------------------------------- several trees

def multi_step(losses: dict[str, Callable], optimizers: dict, *,
               order: str = "sequential") -> Callable:
    """One pure step that updates each named parameter tree with its own loss and optimizer.

    ``trees`` is a dict ``{name: params}``. Each ``losses[name]`` is an fnn objective over ALL
    the trees, ``(trees, state, batch, key, train) -> (loss, (state, metrics))``; tree
    ``name`` is moved by ``optimizers[name]`` (fnn.optim or optax) along the gradient of its
    own loss with respect to itself only (the other trees are constants in that gradient)::

        for name in losses (in dict order):
            g = d losses[name](trees, ...) / d trees[name]
            updates, opt_states[name] = optimizers[name].update(g, opt_states[name], trees[name])
            trees[name] = trees[name] + updates

    ``order='sequential'`` (default; Goodfellow et al. 2014, Algorithm 1 with k = 1): each loss
    sees the trees already updated by the losses before it in the dict (and the state they
    returned). ``order='simultaneous'``: every gradient is taken at the incoming trees and
    state, then all trees are updated (the returned state is the last loss's).

    Keys: loss i gets ``fold_in(key, i)``; callers derive ``key`` per step from one seed as
    ``fold_in(jax.random.key(seed), step)`` so a run is a function of its seed.

    Returns ``step(trees, opt_states, batch, key, state=None) -> (trees, opt_states, metrics)``
    (or ``(..., metrics, state)`` when ``state`` is given), jit-able and donation-safe;
    ``metrics`` holds ``{name}_loss`` and ``{name}_{metric}`` for every loss's metrics.
    ``step.init(trees)`` gives the initial ``opt_states`` ``{name: optimizers[name].init(...)}``.
    """
    if set(losses) != set(optimizers) or not losses:
        raise ValueError(f"multi_step: losses and optimizers must name the same non-empty set "
                         f"of parameter trees, got losses {sorted(losses)} and optimizers "
                         f"{sorted(optimizers)}")
    if order not in ("sequential", "simultaneous"):
        raise ValueError(f"multi_step: order must be 'sequential' or 'simultaneous', got "
                         f"{order!r}")
    for name, fn in losses.items():
        if not callable(fn):
            raise TypeError(f"multi_step: losses[{name!r}] must be an objective (trees, state, "
                            f"batch, key, train) -> (loss, (state, metrics)), got {fn!r}")
    names = list(losses)

    def grad_of(name, trees, state, batch, key):
        def own(params):
            return losses[name]({**trees, name: params}, state, batch, key, True)

        return value_and_grad(own, has_aux=True)(trees[name])

    def step(trees, opt_states, batch, key, state=None):
        missing = [n for n in names if n not in trees or n not in opt_states]
        if missing:
            raise ValueError(f"multi_step: trees and opt_states need entries {names}; missing "
                             f"{missing} (trees hold {sorted(trees)}, opt_states "
                             f"{sorted(opt_states)})")
        trees, opt_states = dict(trees), dict(opt_states)
        s = {} if state is None else state
        metrics, grads = {}, {}
        for i, name in enumerate(names):
            k = None if key is None else jax.random.fold_in(key, i)
            (loss, (new_s, m)), g = grad_of(name, trees, s, batch, k)
            metrics[f"{name}_loss"] = loss
            metrics.update({f"{name}_{k_}": v for k_, v in m.items() if k_ != "loss"})
            if order == "sequential":
                s = new_s
                updates, opt_states[name] = optimizers[name].update(g, opt_states[name],
                                                                    trees[name])
                trees[name] = apply_updates(trees[name], updates)
            else:
                grads[name], last_state = g, new_s
        if order == "simultaneous":
            for name in names:
                updates, opt_states[name] = optimizers[name].update(grads[name], opt_states[name],
                                                                    trees[name])
                trees[name] = apply_updates(trees[name], updates)
            s = last_state
        return (trees, opt_states, metrics) if state is None else (trees, opt_states, metrics, s)

    step.init = lambda trees: {n: optimizers[n].init(trees[n]) for n in names}
    step.names = tuple(names)
    return step


__all__.append("multi_step")
