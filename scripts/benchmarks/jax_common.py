"""Pieces shared by the JAX-based implementations (fnn's and the hand-written baseline's)."""
from __future__ import annotations

import jax

from benchmarks.workloads import Runner


def blocked(f):
    """``f`` that returns only when its result has been computed on the device."""
    return lambda: jax.block_until_ready(f())


def adam_problem(config):
    """The 10M-parameter pytree (``leaves`` leaves of ``size``) and a fixed gradient."""
    keys = jax.random.split(jax.random.key(0), config["leaves"])
    params = {f"leaf_{i:02d}": jax.random.normal(k, (config["size"],)) for i, k in enumerate(keys)}
    return params, jax.tree.map(lambda p: 1e-3 * p, params)


def donated_updates(opt, apply_updates, config) -> Runner:
    """``config['steps']`` calls of a jitted, buffer-donating update by the optax-shaped
    ``opt`` on the ``adam_problem`` tree."""
    params, grads = adam_problem(config)

    def update(p, s, g):
        u, s = opt.update(g, s, p)
        return apply_updates(p, u), s

    step = jax.jit(update, donate_argnums=(0, 1))
    box = [params, opt.init(params)]

    def run():
        for _ in range(config["steps"]):
            box[0], box[1] = step(box[0], box[1], grads)
        return box[0]

    return Runner(blocked(run), config["steps"])


def sgd_steps(value_and_grad, params, loss, config, *, vmapped: bool = False) -> Runner:
    """``config['steps']`` SGD steps ``p -= learning_rate * grad loss(p)`` as one jitted
    ``lax.scan``, the gradient from ``value_and_grad`` (``jax.value_and_grad`` or fnn's
    rewrite); with ``vmapped``, every run of ``params``' leading axis at once. ``run()``
    returns the final params and the losses."""
    lr = config["learning_rate"]

    def train(p):
        def body(p, _):
            loss_value, grads = value_and_grad(loss)(p)
            return jax.tree.map(lambda a, g: a - lr * g, p, grads), loss_value
        return jax.lax.scan(body, p, None, length=config["steps"])

    train = jax.jit(jax.vmap(train) if vmapped else train)
    return Runner(blocked(lambda: train(params)), config["steps"])
