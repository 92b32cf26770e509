"""Haiku, in its documented idiom: a model function of ``hk`` modules under
``hk.without_apply_rng(hk.transform(...))``, optax for the update, and a ``@jax.jit`` train
step (``jax.value_and_grad`` of the loss over the params dict, then ``tx.update``) called once
per minibatch from a Python loop over NumPy-shuffled epochs."""
from __future__ import annotations

import itertools

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.workloads import Runner


def _xent(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _trainer(forward, loss_of_output, tx, x0, extra_loss=None):
    """Init params on ``x0``; return them, ``tx``'s state and the jitted train step."""
    net = hk.without_apply_rng(hk.transform(forward))
    params = net.init(jax.random.PRNGKey(0), x0)

    def loss_fn(params, x, y):
        loss = loss_of_output(net.apply(params, x), y)
        return loss + extra_loss(params) if extra_loss else loss

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return params, tx.init(params), step


def _runner(step, params, opt_state, batches, work) -> Runner:
    """``run()`` calls the step on each ``(x, y)`` of ``batches()`` and returns the params and
    the last loss once they are computed."""
    state = [params, opt_state]

    def run():
        for x, y in batches():
            state[0], state[1], loss = step(state[0], state[1], x, y)
        return jax.block_until_ready((state[0], loss))

    return Runner(run, work)


def _epochs(forward, loss_of_output, data, config) -> Runner:
    """One NumPy-shuffled epoch of Adam minibatch steps per call (last partial batch dropped)."""
    x, y = data["x"], data["y"]
    batch = config["batch_size"]
    steps = len(x) // batch
    params, opt_state, step = _trainer(forward, loss_of_output,
                                       optax.adam(config["learning_rate"]), x[:batch])
    rng = np.random.default_rng(0)

    def batches():
        perm = rng.permutation(len(x))
        xs, ys = x[perm], y[perm]
        for i in range(steps):
            yield xs[i * batch:(i + 1) * batch], ys[i * batch:(i + 1) * batch]

    return _runner(step, params, opt_state, batches, steps * batch)


def quadrant(data, config) -> Runner:
    """The 2-50-4 ReLU net from the given weights; full-batch SGD, L2 on the weights only."""
    init = hk.initializers.Constant

    def forward(x):
        x = jax.nn.relu(hk.Linear(config["hidden"], w_init=init(data["w1"]),
                                  b_init=init(data["b1"]))(x))
        return hk.Linear(4, w_init=init(data["w2"]), b_init=init(data["b2"]))(x)

    l2 = config["l2"]
    weight_decay = lambda params: 0.5 * l2 * sum(jnp.sum(p["w"] ** 2) for p in params.values())
    x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])  # the one batch, on device once
    params, opt_state, step = _trainer(forward, _xent, optax.sgd(config["learning_rate"]), x,
                                       weight_decay)
    steps = config["steps"] // 10  # a Python loop of jitted steps: a tenth keeps a call short
    return _runner(step, params, opt_state, lambda: itertools.repeat((x, y), steps), steps)


def mlp(data, config) -> Runner:
    *hidden, out = config["sizes"][1:]

    def forward(x):
        layers = [m for h in hidden for m in (hk.Linear(h), jax.nn.relu)]
        return hk.Sequential([*layers, hk.Linear(out)])(x)

    return _epochs(forward, _xent, data, config)


def cnn(data, config) -> Runner:
    c1, c2 = config["channels"]

    def forward(x):
        for c in (c1, c2):
            x = jax.nn.relu(hk.Conv2D(c, kernel_shape=3, padding="SAME")(x))
            x = hk.max_pool(x, window_shape=2, strides=2, padding="VALID")
        return hk.Linear(10)(hk.Flatten()(x))

    return _epochs(forward, _xent, data, config)


def lstm(data, config) -> Runner:
    """``config['steps']`` jitted train steps on the one (64, 100, 32) batch per call."""
    def forward(x):
        core = hk.LSTM(config["hidden"])
        outputs, _ = hk.dynamic_unroll(core, x, core.initial_state(x.shape[0]), time_major=False)
        return hk.Linear(1)(outputs[:, -1])

    mse = lambda pred, y: jnp.mean((pred - y) ** 2)
    x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])  # the one batch, on device once
    params, opt_state, step = _trainer(forward, mse, optax.adam(config["learning_rate"]), x)
    steps = config["steps"]
    return _runner(step, params, opt_state, lambda: itertools.repeat((x, y), steps),
                   steps * config["batch"])


def gru_mnist1d(data, config) -> Runner:
    """Bidirectional GRU: a second hk.GRU over the reversed sequence, outputs re-reversed."""
    hidden = config["hidden"]

    def forward(x):
        xs = x[..., None]                                                  # (B, 40, 1)
        fwd, bwd = hk.GRU(hidden, name="forward"), hk.GRU(hidden, name="backward")
        out_f, _ = hk.dynamic_unroll(fwd, xs, fwd.initial_state(x.shape[0]), time_major=False)
        out_b, _ = hk.dynamic_unroll(bwd, xs[:, ::-1], bwd.initial_state(x.shape[0]),
                                     time_major=False)
        feats = jnp.concatenate([out_f, out_b[:, ::-1]], axis=-1)          # (B, 40, 2h)
        return hk.Linear(10)(hk.Flatten()(feats))

    return _epochs(forward, _xent, data, config)
