"""Equinox, in the idiom of its tutorials: models are ``eqx.Module`` pytrees of single-example
layers (``eqx.nn.MLP``, ``eqx.nn.Conv2d`` / ``eqx.nn.MaxPool2d`` in an ``eqx.nn.Sequential``,
``eqx.nn.LSTMCell`` / ``eqx.nn.GRUCell`` stepped with ``jax.lax.scan``), ``jax.vmap``-ed over
the batch, trained with optax and an ``@eqx.filter_jit`` step using
``eqx.filter_value_and_grad``, called once per minibatch from a Python loop over shuffled
NumPy arrays."""
from __future__ import annotations

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.jax_common import blocked
from benchmarks.workloads import (REFIT, Runner, refit_batches, refit_loop, refit_sizes,
                                  shuffled_epochs)


def _xent(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _batched(loss):
    """A loss of the vmapped model's outputs."""
    return lambda model, x, y: loss(jax.vmap(model)(x), y)


def _trainer(model, tx, loss_fn):
    """``train(batches)``: one ``eqx.filter_jit`` step per ``(x, y)`` batch; the model and
    optimiser state are kept in ``state``; returns once the last update is done."""
    state = [model, tx.init(eqx.filter(model, eqx.is_array))]

    @eqx.filter_jit
    def make_step(model, opt_state, x, y):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x, y)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    def train(batches):
        for x, y in batches:
            state[0], state[1], loss = make_step(state[0], state[1], x, y)
        return jax.block_until_ready((loss, state[0]))

    return train


def _epochs(model, loss_fn, data, config) -> Runner:
    """One shuffled epoch of Adam per call."""
    train = _trainer(model, optax.adam(config["learning_rate"]), loss_fn)
    return shuffled_epochs(train, data, config["batch_size"])


def quadrant(data, config) -> Runner:
    model = eqx.nn.MLP(2, 4, config["hidden"], depth=1, activation=jax.nn.relu,
                       key=jax.random.key(0))
    # eqx.nn.Linear's weight is (out, in): the given (in, out) matrices transposed
    model = eqx.tree_at(
        lambda m: (m.layers[0].weight, m.layers[0].bias, m.layers[1].weight, m.layers[1].bias),
        model, tuple(jnp.asarray(a) for a in (data["w1"].T, data["b1"], data["w2"].T, data["b2"])))
    l2 = config["l2"]

    def loss_fn(model, x, y):
        decay = sum(jnp.sum(layer.weight ** 2) for layer in model.layers)
        return _xent(jax.vmap(model)(x), y) + 0.5 * l2 * decay

    train = _trainer(model, optax.sgd(config["learning_rate"]), loss_fn)
    batch = (jnp.asarray(data["x"]), jnp.asarray(data["y"]))
    steps = config["steps"] // 10  # a Python loop of jitted steps: ~1e4 steps/s
    return Runner(lambda: train(itertools.repeat(batch, steps)), steps)


def mlp(data, config) -> Runner:
    n_in, width, _, n_out = config["sizes"]
    model = eqx.nn.MLP(n_in, n_out, width, depth=len(config["sizes"]) - 2,
                       activation=jax.nn.relu, key=jax.random.key(0))
    return _epochs(model, _batched(_xent), data, config)


def cnn(data, config) -> Runner:
    c1, c2 = config["channels"]
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    model = eqx.nn.Sequential([
        eqx.nn.Conv2d(1, c1, kernel_size=3, padding="SAME", key=k1),
        eqx.nn.Lambda(jax.nn.relu),
        eqx.nn.MaxPool2d(kernel_size=2, stride=2),
        eqx.nn.Conv2d(c1, c2, kernel_size=3, padding="SAME", key=k2),
        eqx.nn.Lambda(jax.nn.relu),
        eqx.nn.MaxPool2d(kernel_size=2, stride=2),
        eqx.nn.Lambda(jnp.ravel),
        eqx.nn.Linear(7 * 7 * c2, 10, key=k3),
    ])
    x = np.ascontiguousarray(data["x"].transpose(0, 3, 1, 2))  # equinox convs are channels-first
    return _epochs(model, _batched(_xent), {**data, "x": x}, config)


class LSTM(eqx.Module):
    cell: eqx.nn.LSTMCell
    linear: eqx.nn.Linear

    def __init__(self, features, hidden, *, key):
        k1, k2 = jax.random.split(key)
        self.cell = eqx.nn.LSTMCell(features, hidden, key=k1)
        self.linear = eqx.nn.Linear(hidden, 1, key=k2)

    def __call__(self, xs):  # (T, F)
        zeros = jnp.zeros(self.cell.hidden_size)
        (h, _), _ = jax.lax.scan(lambda hc, x: (self.cell(x, hc), None), (zeros, zeros), xs)
        return self.linear(h)


def lstm(data, config) -> Runner:
    model = LSTM(config["features"], config["hidden"], key=jax.random.key(1))
    loss_fn = _batched(lambda out, y: jnp.mean((out - y) ** 2))
    train = _trainer(model, optax.adam(config["learning_rate"]), loss_fn)
    batch = (jnp.asarray(data["x"]), jnp.asarray(data["y"]))
    steps = config["steps"]
    return Runner(lambda: train(itertools.repeat(batch, steps)), steps * config["batch"])


class BiGRU(eqx.Module):
    forward: eqx.nn.GRUCell
    backward: eqx.nn.GRUCell
    linear: eqx.nn.Linear

    def __init__(self, hidden, length, *, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.forward = eqx.nn.GRUCell(1, hidden, key=k1)
        self.backward = eqx.nn.GRUCell(1, hidden, key=k2)
        self.linear = eqx.nn.Linear(length * 2 * hidden, 10, key=k3)

    def __call__(self, x):  # (T,)
        def run(cell, reverse):
            step = lambda h, x_t: (cell(x_t, h),) * 2
            return jax.lax.scan(step, jnp.zeros(cell.hidden_size), x[:, None], reverse=reverse)[1]
        h = jnp.concatenate([run(self.forward, False), run(self.backward, True)], axis=-1)
        return self.linear(jnp.ravel(h))  # (T, 2 * hidden), both directions in time order


def gru_mnist1d(data, config) -> Runner:
    model = BiGRU(config["hidden"], data["x"].shape[1], key=jax.random.key(0))
    return _epochs(model, _batched(_xent), data, config)


# ------------------------------------------------------------------------------ refit row

def _digits_loss(model, x, y):
    return _xent(jax.vmap(model)(x), y)


def _quadrant_loss(model, x, y):
    """Cross-entropy plus ``l2 / 2`` times the squared weights (biases not penalised)."""
    decay = sum(jnp.sum(layer.weight ** 2) for layer in model.layers)
    return _xent(jax.vmap(model)(x), y) + 0.5 * REFIT["quadrant"]["l2"] * decay


@eqx.filter_jit
def _refit_step(model, opt_state, x, y, loss_fn, optim):
    """A module-level step: its compilations are cached by ``filter_jit`` across fits, keyed
    by the arrays' shapes and, by identity or equality, the static rest (the model's
    activations, ``loss_fn``, and ``optim``'s functions)."""
    loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x, y)
    updates, opt_state = optim.update(grads, opt_state, eqx.filter(model, eqx.is_array))
    return eqx.apply_updates(model, updates), opt_state, loss


def _refits(data, config, fresh: bool) -> Runner:
    """Equinox's side of the ``refit`` row (``workloads.refit_loop``): a fit is a Python loop
    of ``_refit_step`` over ``refit_batches`` (the steps of fnn's fit) with a fresh
    ``optim.init``; the objects are an ``eqx.nn.MLP`` (built from ``key(0)``, hence the same
    initial weights each time) and ``optax.sgd(lr)``. A fresh ``optax.sgd`` is a new static
    argument of the step, so ``fresh`` compiles the step for every fit. (The MNIST tutorial's
    step, defined inside its ``train`` function, would compile for every fit even with shared
    objects.)"""
    sizes = refit_sizes(data, config)
    losses = {"digits": _digits_loss, "quadrant": _quadrant_loss}
    batches = refit_batches(data, config, jnp.asarray)

    def build(task, lr):
        n_in, width, n_out = sizes[task]
        return (eqx.nn.MLP(n_in, n_out, width, depth=1, activation=jax.nn.relu,
                           key=jax.random.key(0)), optax.sgd(lr))

    def fit(task, objects):
        model, optim = objects
        opt_state = optim.init(eqx.filter(model, eqx.is_array))
        for x, y in batches[task]():
            model, opt_state, _ = _refit_step(model, opt_state, x, y, losses[task], optim)
        return model

    return Runner(blocked(refit_loop(build, fit, config, fresh)), 2 * config["fits"])


def refit_shared(data, config) -> Runner:
    return _refits(data, config, fresh=False)


def refit_fresh(data, config) -> Runner:
    return _refits(data, config, fresh=True)
