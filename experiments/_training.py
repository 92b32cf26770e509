"""Shared by the experiments that test one claim of the notes each (activations, initialization,
regularization, preprocessing, depth_vs_width, universal_approximation, learning_rate,
batch_size, playground).

Every such experiment returns, besides its numbers::

    claim:     {"zh": the notes' sentence, "en": its translation, "source": where it is}
    checks:    [{"what", "value", "op", "threshold", "ok"}, ...]   each computed from the numbers
    criterion: "supported if every check holds: <what> <op> <threshold>; ..."
    supported: all(check["ok"])
    summary:   one line

:func:`verdict` builds the last four from a list of :func:`check` values, so ``supported`` is
never written by hand. :func:`trainer` is a training loop on fnn's epoch engine (``fnn.train.engine.run_epochs``)
that returns the loss of every step and can be ``vmap``-ed over seeds, initialisations or
hyperparameters.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn.train.engine import EpochLoop, epoch_keys, run_epochs
from fnn.train.step import TrainState, checked_step

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq}


def claim(zh: str, en: str, source: str) -> dict:
    """The sentence of the notes an experiment tests: Chinese original, translation, location."""
    return {"zh": zh, "en": en, "source": source}


def check(what: str, value, op: str, threshold) -> dict:
    """One explicit test ``value op threshold`` (a non-finite or missing value never passes)."""
    if op not in _OPS:
        raise ValueError(f"check: op must be one of {sorted(_OPS)}, got {op!r}")
    if isinstance(value, (bool, np.bool_)):
        value = bool(value)
        ok = _OPS[op](value, threshold)
    else:
        value = None if value is None else float(value)
        ok = value is not None and math.isfinite(value) and bool(_OPS[op](value, threshold))
    return {"what": what, "value": value, "op": op, "threshold": threshold, "ok": bool(ok)}


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v).lower() if isinstance(v, bool) else "n/a"
    if isinstance(v, int):
        return str(v)
    return f"{v:.3g}"


def verdict(checks: list[dict]) -> dict:
    """``criterion`` (the checks as text), ``supported`` (all of them hold) and ``checks``."""
    criterion = "supported if every check holds: " + "; ".join(
        f"{c['what']} {c['op']} {_fmt(c['threshold'])}" for c in checks)
    return {"criterion": criterion, "supported": all(c["ok"] for c in checks), "checks": checks}


def describe_checks(checks: list[dict]) -> str:
    """``what = value (ok|FAILS)`` for each check, for summaries."""
    return "; ".join(f"{c['what']} = {_fmt(c['value'])}{'' if c['ok'] else ' (fails)'}"
                     for c in checks)


# ----------------------------------------------------------------------------- training

def trainer(objective, make_optimizer: Callable[[Any], Any], *, n: int, batch_size: int | None,
            epochs: int, record_params: bool = False, evaluate: bool = False) -> Callable:
    """A pure ``train(params, state, data, hyper, key[, eval_data]) -> (params, state, out)``
    on the epoch engine (:mod:`fnn.train.engine`).

    ``make_optimizer(hyper)`` builds the optimizer (so ``hyper``, e.g. a learning rate, may be
    traced and vmapped). ``key`` is the run's base key: epoch ``e`` shuffles the ``n``
    examples with ``fold_in(fold_in(key, 0), e)`` and step ``t`` gets ``fold_in(fold_in(key,
    1), t)``, as ``fit(seed=s)`` does with ``key = jax.random.key(s)``; every epoch runs ``n //
    batch_size`` steps (the last partial batch is dropped; ``batch_size=None`` is one
    full-batch step per epoch).

    ``out`` is the data loss of every step, shape ``(epochs, steps_per_epoch)``; with
    ``record_params`` or ``evaluate`` it is a dict: ``loss`` (that), ``params`` (the params
    after every step, leading axes (epochs, steps)), ``eval`` (the objective's loss on
    ``eval_data`` in evaluation mode after every epoch, shape (epochs,)). Wrap in
    ``jax.jit``/``jax.vmap``.
    """
    batch_size = n if batch_size is None else batch_size

    def train(params, state, data, hyper, key, eval_data=None):
        optimizer = make_optimizer(hyper)
        step = checked_step(objective, optimizer)
        if record_params:
            step = _recording_params(step)
        eval_size = jax.tree.leaves(eval_data)[0].shape[0] if evaluate else None
        loop = EpochLoop(step, batch_size, n, per_step=True, objective=objective,
                         val_batch_size=eval_size)
        ts = TrainState(params, state, optimizer.init(params), jnp.zeros((), jnp.int32))
        (ts, _), out = run_epochs(loop, (ts, None), jax.tree.map(jnp.asarray, data),
                                  eval_data if evaluate else None, epoch_keys(key), 0, epochs)
        if not (record_params or evaluate):
            return ts.params, ts.model_state, out["loss"]
        kept = {"loss": out["loss"]}
        if record_params:
            kept["params"] = out["params"]
        if evaluate:
            kept["eval"] = out["val_loss"]
        return ts.params, ts.model_state, kept

    return train


def _recording_params(step):
    """``step`` whose metrics also hold the params after the step (under ``'params'``)."""

    def recording(ts, batch, key):
        ts, metrics, finite = step(ts, batch, key)
        return ts, {**metrics, "params": ts.params}, finite

    return recording


def stack(trees):
    """Stack equally structured pytrees along a new leading axis (NumPy arrays)."""
    return jax.tree.map(lambda *leaves: np.stack([np.asarray(a) for a in leaves]), *trees)


def stack_init(net, keys, input_shape):
    """``net.init`` for each key, stacked along a new leading axis: (params, state).

    Runs eagerly, one key at a time: compiling a vmapped init of a deep net costs seconds,
    while the eager random ops are compiled once per shape and reused.
    """
    return stack([net.init(k, input_shape) for k in keys])


def n_params(params) -> int:
    return int(sum(np.size(a) for a in jax.tree.leaves(params)))


def accuracy(net, params, x, y) -> float:
    logits = net(params, jnp.asarray(x))
    return float(np.mean(np.asarray(logits).argmax(axis=-1) == np.asarray(y)))


def finite_or_none(values) -> list:
    """A list with non-finite numbers replaced by None (how results.json records them)."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, np.float64).ravel()]


def split_off(x, y, n: int, seed: int):
    """A stratified-free random subset of ``n`` rows and the rest: ((x_a, y_a), (x_b, y_b))."""
    order = np.random.RandomState(seed).permutation(len(x))
    return (x[order[:n]], y[order[:n]]), (x[order[n:]], y[order[n:]])


def Choice(fns: dict, name: str = "choice"):
    """An elementwise layer ``y = f_k(x)`` whose function ``f_k`` (one of ``fns``, by position) is
    picked by the integer ``state['index']``.

    Networks that differ only in their activation then share one compiled program: set the
    index in the state and ``vmap`` over it (``lax.switch`` becomes a select). Shapes: any x ->
    y of the same shape; no params.
    """
    branches = list(fns.values())

    def init_fn(key, shape):
        return shape, {}, {"index": jnp.zeros((), jnp.int32)}

    def apply_fn(params, state, x, key, train):
        return jax.lax.switch(state["index"], branches, x), state

    return fnn.Layer(name, init_fn, apply_fn, stateful=True)


def choose(state, index):
    """``state`` with every :func:`Choice` index set to ``index`` (an int or int32 array)."""
    return jax.tree.map(lambda a: jnp.asarray(index, jnp.int32) + jnp.zeros_like(a), state)
