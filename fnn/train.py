"""Training: a compiled train step, ``fit`` (epochs as one ``lax.scan``), evaluation, early stopping.

The contract between a model and the training loop is an *objective*::

    objective(params, state, batch, key, train) -> (loss, (new_state, metrics))

where ``batch`` is any pytree of arrays with a leading batch axis (``(x, y)`` for supervised
learning), ``key`` a PRNG key (or None in evaluation), ``metrics`` a dict of scalars that
includes ``'loss'``. :func:`supervised` builds one from a network and a loss. Optimizers are
anything with optax's ``init``/``update`` (``fnn.optim`` or optax itself).

Randomness is a function of the seed and the position in training only: epoch ``e`` is
shuffled with ``fold_in(shuffle_key, e)`` and step ``t`` gets ``fold_in(step_key, t)``, so a
run is reproducible (and resumable) from its seed.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn import losses
from fnn.core import Layer
from fnn.optim.base import apply_updates

__all__ = ["TrainState", "supervised", "train_step", "evaluate", "EarlyStopping", "FitResult", "fit"]

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
    """
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

    return objective


def train_step(objective: Objective, optimizer) -> Callable:
    """The pure step ``(ts: TrainState, batch, key) -> (ts, metrics)``:

        g = d objective / d params;  updates, opt_state = optimizer.update(g, opt_state, params)
        params = params + updates

    Wrap it in ``jax.jit(step, donate_argnums=0)`` to run it alone; ``fit`` scans it.
    """

    def step(ts: TrainState, batch, key):
        grad_fn = jax.value_and_grad(objective, has_aux=True)
        (total, (model_state, metrics)), grads = grad_fn(ts.params, ts.model_state, batch, key, True)
        updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
        params = apply_updates(ts.params, updates)
        metrics = {"loss": total, **metrics}
        return TrainState(params, model_state, opt_state, ts.step + 1), metrics

    return step


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


@functools.lru_cache(maxsize=64)
def _epoch_runner(objective, optimizer, n: int, batch_size: int, val_batch_size: int | None):
    """A jitted ``run(ts, data, val_data, keys, first_epoch, epochs) -> (ts, metrics[epochs])``.

    One call scans ``epochs`` epochs; each epoch scans its shuffled minibatches (the last
    partial batch is dropped; a full-batch epoch is one step on the whole, unshuffled set).
    Cached per (objective, optimizer, sizes) so repeated ``fit`` calls reuse the compilation.
    """
    step = train_step(objective, optimizer)
    steps_per_epoch = n // batch_size

    def one_epoch(ts, data, val_data, shuffle_key, step_key, epoch):
        if batch_size == n:  # full batch: one step on the whole set, no shuffle, no gather
            ts, metrics = step(ts, data, jax.random.fold_in(step_key, ts.step))
        else:
            perm = jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), n)
            batch_index = perm[: steps_per_epoch * batch_size].reshape(steps_per_epoch, batch_size)

            def body(ts, index):
                batch = jax.tree.map(lambda a: a[index], data)
                return step(ts, batch, jax.random.fold_in(step_key, ts.step))

            ts, metrics = jax.lax.scan(body, ts, batch_index)
            metrics = jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)
        if val_data is not None:
            val = _mean_metrics(objective, ts.params, ts.model_state, val_data, val_batch_size)
            metrics.update({f"val_{k}": v for k, v in val.items()})
        return ts, metrics

    @functools.partial(jax.jit, static_argnums=(5,), donate_argnums=(0,))
    def run(ts, data, val_data, keys, first_epoch, epochs):
        shuffle_key, step_key = keys
        epoch_ids = first_epoch + jnp.arange(epochs)
        # Full-batch epochs are single steps: unrolling a few per loop iteration saves the
        # loop's per-iteration overhead, which dominates for tiny networks.
        unroll = min(8, epochs) if batch_size == n else 1
        return jax.lax.scan(
            lambda ts, e: one_epoch(ts, data, val_data, shuffle_key, step_key, e), ts, epoch_ids,
            unroll=unroll)

    return run


def fit(objective: Objective, params, optimizer, data, *, model_state=None, epochs: int = 1,
        batch_size: int | None = None, seed: int = 0, validation_data=None,
        early_stopping: EarlyStopping | None = None,
        callbacks: Sequence[Callable[[int, dict], bool | None]] = (), progress: bool = True,
        epochs_per_call: int | None = None) -> FitResult:
    """Train ``params`` to minimise ``objective`` on ``data`` with ``optimizer``.

    Args:
      objective: ``(params, state, batch, key, train) -> (loss, (state, metrics))``
        (see :func:`supervised`).
      params, model_state: initial parameters and model state (e.g. from ``net.init``).
      optimizer: ``fnn.optim`` or optax transformation.
      data: pytree of arrays with a leading example axis, e.g. ``(x, y)``.
      epochs: passes over the data. With ``batch_size=None`` every epoch is one full-batch
        step, so ``epochs`` is the number of gradient steps.
      batch_size: minibatch size (shuffled each epoch, last partial batch dropped) or None.
      seed: determines the shuffles and the per-step keys (dropout etc.).
      validation_data: evaluated after every epoch, reported as ``val_<metric>``.
      early_stopping: an :class:`EarlyStopping` rule (needs ``validation_data`` for ``val_*``).
      callbacks: ``f(epoch, metrics) -> stop?`` called after every epoch.
      progress: show a tqdm bar with the current loss.
      epochs_per_call: epochs per compiled call (default: all of them without a bar, ~50
        updates with one; 1 when callbacks or early stopping need every epoch).

    Returns a :class:`FitResult`. Every epoch (its minibatch steps, the metric means and the
    validation pass) runs inside one compiled ``lax.scan``; nothing returns to Python between
    epochs of the same call.
    """
    from tqdm.auto import tqdm

    n = _num_examples(data, "fit")
    batch_size = _check_batch_size(batch_size, n, "fit")
    if not (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1):
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    val_batch_size = None
    if validation_data is not None:
        n_val = _num_examples(validation_data, "fit(validation_data)")
        val_batch_size = min(n_val, max(batch_size, 1024))
    if early_stopping is not None:
        if early_stopping.mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {early_stopping.mode!r}")
        if early_stopping.monitor.startswith("val_") and validation_data is None:
            raise ValueError(f"fit: early stopping monitors {early_stopping.monitor!r} but no "
                             f"validation_data was given")
    if epochs_per_call is None:
        epochs_per_call = (1 if (callbacks or early_stopping) else
                           max(1, epochs // 50) if progress else epochs)

    data = jax.tree.map(jnp.asarray, data)
    if validation_data is not None:
        validation_data = jax.tree.map(jnp.asarray, validation_data)
    run = _epoch_runner(objective, optimizer, n, batch_size, val_batch_size)
    base = jax.random.key(seed)
    keys = (jax.random.fold_in(base, 0), jax.random.fold_in(base, 1))
    model_state = {} if model_state is None else model_state
    # Copy so that donating the train state never invalidates the caller's arrays.
    ts = jax.tree.map(jnp.array, TrainState(params, model_state, optimizer.init(params),
                                            jnp.zeros((), jnp.int32)))

    history: dict[str, list] = {}  # metric -> per-call arrays of per-epoch values
    best = None
    best_value, since_best = None, 0
    bar = tqdm(total=epochs, disable=not progress, unit="epoch", leave=False)
    epoch, stop = 0, False
    while epoch < epochs and not stop:
        count = min(epochs_per_call, epochs - epoch)
        ts, metrics = run(ts, data, validation_data, keys, epoch, count)
        metrics = jax.device_get(metrics)
        for k, v in metrics.items():
            history.setdefault(k, []).append(np.asarray(v))
        for i in range(count if (callbacks or early_stopping) else 0):
            row = {k: float(v[i]) for k, v in metrics.items()}
            for callback in callbacks:
                stop = bool(callback(epoch + i, row)) or stop
            if early_stopping is not None:
                value = row.get(early_stopping.monitor)
                if value is None:
                    raise ValueError(f"EarlyStopping: no metric {early_stopping.monitor!r}; "
                                     f"available: {sorted(row)}")
                sign = 1.0 if early_stopping.mode == "min" else -1.0
                if best_value is None or sign * (best_value - value) > early_stopping.min_delta:
                    best_value, since_best = value, 0
                    if early_stopping.restore_best:
                        best = jax.tree.map(jnp.copy, (ts.params, ts.model_state))
                else:
                    since_best += 1
                    stop = stop or since_best >= early_stopping.patience
        epoch += count
        bar.update(count)
        bar.set_postfix(loss=f"{float(metrics['loss'][-1]):.4g}")
    bar.close()

    params, model_state = (ts.params, ts.model_state) if best is None else best
    return FitResult(params, model_state, ts.opt_state,
                     {k: np.concatenate(v) for k, v in history.items()})
