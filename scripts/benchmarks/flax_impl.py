"""Flax, in the NNX idiom of its tutorials: models are ``nnx.Module`` classes built from
``nnx.Linear`` / ``nnx.Conv`` / ``nnx.RNN`` (``nnx.LSTMCell``, ``nnx.Bidirectional`` of
``nnx.GRUCell``), trained with ``nnx.Optimizer(model, optax..., wrt=nnx.Param)`` and an
``@nnx.jit`` train step using ``nnx.value_and_grad``, called once per minibatch from a Python
loop over shuffled NumPy arrays."""
from __future__ import annotations

import itertools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from benchmarks.jax_common import blocked
from benchmarks.workloads import (REFIT, Runner, refit_batches, refit_loop, refit_sizes,
                                  shuffled_epochs)


def _xent(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _trainer(model, tx, loss_fn):
    """``train(batches)``: one ``nnx.jit`` step per ``(x, y)`` batch, updating ``model`` in
    place; returns once the last update is done."""
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
        optimizer.update(model, grads)
        return loss

    def train(batches):
        for x, y in batches:
            loss = train_step(model, optimizer, x, y)
        return jax.block_until_ready((loss, nnx.state(model)))

    return train


def _epochs(model, loss_fn, data, config) -> Runner:
    """One shuffled epoch of Adam per call."""
    train = _trainer(model, optax.adam(config["learning_rate"]), loss_fn)
    return shuffled_epochs(train, data, config["batch_size"])


class Quadrant(nnx.Module):
    def __init__(self, hidden, *, rngs):
        self.linear1 = nnx.Linear(2, hidden, rngs=rngs)
        self.linear2 = nnx.Linear(hidden, 4, rngs=rngs)

    def __call__(self, x):
        return self.linear2(nnx.relu(self.linear1(x)))


def quadrant(data, config) -> Runner:
    model = Quadrant(config["hidden"], rngs=nnx.Rngs(0))
    for layer, w, b in ((model.linear1, "w1", "b1"), (model.linear2, "w2", "b2")):
        layer.kernel[...] = jnp.asarray(data[w])
        layer.bias[...] = jnp.asarray(data[b])
    l2 = config["l2"]

    def loss_fn(model, x, y):
        decay = jnp.sum(model.linear1.kernel[...] ** 2) + jnp.sum(model.linear2.kernel[...] ** 2)
        return _xent(model(x), y) + 0.5 * l2 * decay

    train = _trainer(model, optax.sgd(config["learning_rate"]), loss_fn)
    batch = (jnp.asarray(data["x"]), jnp.asarray(data["y"]))
    steps = config["steps"] // 10  # a Python loop of jitted steps: ~1e4 steps/s
    return Runner(lambda: train(itertools.repeat(batch, steps)), steps)


class MLP(nnx.Module):
    def __init__(self, sizes, *, rngs):
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = nnx.relu(layer(x))
        return self.layers[-1](x)


def mlp(data, config) -> Runner:
    model = MLP(config["sizes"], rngs=nnx.Rngs(0))
    return _epochs(model, lambda m, x, y: _xent(m(x), y), data, config)


class CNN(nnx.Module):
    def __init__(self, channels, *, rngs):
        c1, c2 = channels
        self.conv1 = nnx.Conv(1, c1, kernel_size=(3, 3), padding="SAME", rngs=rngs)
        self.conv2 = nnx.Conv(c1, c2, kernel_size=(3, 3), padding="SAME", rngs=rngs)
        self.max_pool = partial(nnx.max_pool, window_shape=(2, 2), strides=(2, 2))
        self.linear = nnx.Linear(7 * 7 * c2, 10, rngs=rngs)

    def __call__(self, x):
        x = self.max_pool(nnx.relu(self.conv1(x)))
        x = self.max_pool(nnx.relu(self.conv2(x)))
        return self.linear(x.reshape(x.shape[0], -1))


def cnn(data, config) -> Runner:
    model = CNN(config["channels"], rngs=nnx.Rngs(0))
    return _epochs(model, lambda m, x, y: _xent(m(x), y), data, config)


class LSTM(nnx.Module):
    def __init__(self, features, hidden, *, rngs):
        self.rnn = nnx.RNN(nnx.LSTMCell(features, hidden, rngs=rngs))
        self.linear = nnx.Linear(hidden, 1, rngs=rngs)

    def __call__(self, x):  # (B, T, F)
        return self.linear(self.rnn(x)[:, -1])


def lstm(data, config) -> Runner:
    model = LSTM(config["features"], config["hidden"], rngs=nnx.Rngs(1))
    loss_fn = lambda m, x, y: jnp.mean((m(x) - y) ** 2)
    train = _trainer(model, optax.adam(config["learning_rate"]), loss_fn)
    batch = (jnp.asarray(data["x"]), jnp.asarray(data["y"]))
    steps = config["steps"]
    return Runner(lambda: train(itertools.repeat(batch, steps)), steps * config["batch"])


class BiGRU(nnx.Module):
    def __init__(self, hidden, length, *, rngs):
        gru = lambda: nnx.RNN(nnx.GRUCell(1, hidden, rngs=rngs))
        self.rnn = nnx.Bidirectional(gru(), gru())
        self.linear = nnx.Linear(length * 2 * hidden, 10, rngs=rngs)

    def __call__(self, x):  # (B, T)
        h = self.rnn(x[..., None])  # (B, T, 2 * hidden), both directions in time order
        return self.linear(h.reshape(x.shape[0], -1))


def gru_mnist1d(data, config) -> Runner:
    model = BiGRU(config["hidden"], data["x"].shape[1], rngs=nnx.Rngs(0))
    return _epochs(model, lambda m, x, y: _xent(m(x), y), data, config)


# ------------------------------------------------------------------------------ refit row

def _digits_loss(model, x, y):
    return _xent(model(x), y)


def _quadrant_loss(model, x, y):
    """Cross-entropy plus ``l2 / 2`` times the squared kernels (biases not penalised)."""
    decay = sum(jnp.sum(layer.kernel[...] ** 2) for layer in model.layers)
    return _xent(model(x), y) + 0.5 * REFIT["quadrant"]["l2"] * decay


@partial(nnx.jit, static_argnames="loss_fn")
def _refit_step(model, optimizer, x, y, loss_fn):
    """A module-level step: its compilations are cached by ``nnx.jit`` across fits, keyed by
    the arrays' shapes, ``loss_fn`` and the model's and optimizer's graph definitions, whose
    static attributes include the optimizer's optax transformation."""
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    optimizer.update(model, grads)
    return loss


def _refits(data, config, fresh: bool) -> Runner:
    """Flax NNX's side of the ``refit`` row (``workloads.refit_loop``): a fit is a Python loop
    of ``_refit_step`` over ``refit_batches`` (the steps of fnn's fit), updating the model and
    optimizer in place from their initial state (restored by ``nnx.update`` first, so that
    shared objects start each fit where fresh ones do); the objects are an ``MLP`` of
    ``nnx.Linear`` layers (``nnx.Rngs(0)``: the same initial weights each time) and
    ``nnx.Optimizer(model, optax.sgd(lr), wrt=nnx.Param)``. A fresh optimizer's optax
    transformation is a new static attribute, so ``fresh`` compiles the step for every fit."""
    sizes = refit_sizes(data, config)
    losses = {"digits": _digits_loss, "quadrant": _quadrant_loss}
    batches = refit_batches(data, config, jnp.asarray)

    def build(task, lr):
        model = MLP(sizes[task], rngs=nnx.Rngs(0))
        optimizer = nnx.Optimizer(model, optax.sgd(lr), wrt=nnx.Param)
        return model, optimizer, nnx.state(model), nnx.state(optimizer)

    def fit(task, objects):
        model, optimizer, model_start, optimizer_start = objects
        nnx.update(model, model_start)
        nnx.update(optimizer, optimizer_start)
        for x, y in batches[task]():
            _refit_step(model, optimizer, x, y, losses[task])
        return nnx.state(model)

    return Runner(blocked(refit_loop(build, fit, config, fresh)), 2 * config["fits"])


def refit_shared(data, config) -> Runner:
    return _refits(data, config, fresh=False)


def refit_fresh(data, config) -> Runner:
    return _refits(data, config, fresh=True)
