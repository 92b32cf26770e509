"""The baseline: minimal hand-written JAX (with optax for the update) - the ceiling fnn should
reach. Whole epochs run as one ``lax.scan`` over device-resident, shuffled minibatches."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from benchmarks.jax_common import blocked, donated_updates, sgd_steps
from benchmarks.workloads import Runner


def _dense(key, n_in, n_out):
    return (jax.random.normal(key, (n_in, n_out)) * jnp.sqrt(2.0 / n_in), jnp.zeros(n_out))


def _xent(logits, y):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def _scan_epochs(loss, params, data, config) -> Runner:
    """One shuffled epoch of Adam minibatch steps per call, as a single jitted lax.scan."""
    tx = optax.adam(config["learning_rate"])
    batch = config["batch_size"]
    x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])
    steps = len(x) // batch

    @jax.jit
    def epoch(p, s, key):
        perm = jax.random.permutation(key, len(x))[: steps * batch].reshape(steps, batch)

        def body(carry, idx):
            p, s = carry
            l, g = jax.value_and_grad(loss)(p, x[idx], y[idx])
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), l

        (p, s), losses = jax.lax.scan(body, (p, s), perm)
        return p, s, jnp.mean(losses)

    state = tx.init(params)
    return Runner(blocked(lambda: epoch(params, state, jax.random.key(0))[0]), steps * batch)


def quadrant(data, config) -> Runner:
    x, t = jnp.asarray(data["x"]), jnp.asarray(data["y"])
    params = tuple(jnp.asarray(data[k]) for k in ("w1", "b1", "w2", "b2"))
    lr, l2 = config["learning_rate"], config["l2"]

    def loss(p):
        w1, b1, w2, b2 = p
        logits = jax.nn.relu(x @ w1 + b1) @ w2 + b2
        return _xent(logits, t) + 0.5 * l2 * (jnp.sum(w1 ** 2) + jnp.sum(w2 ** 2))

    @jax.jit
    def train(p):
        def body(p, _):
            l, g = jax.value_and_grad(loss)(p)
            return jax.tree.map(lambda a, b: a - lr * b, p, g), l
        return jax.lax.scan(body, p, None, length=config["steps"])

    return Runner(blocked(lambda: train(params)), config["steps"])


def _mlp_params(key, sizes):
    keys = jax.random.split(key, len(sizes) - 1)
    return [_dense(k, a, b) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def _mlp_apply(p, x):
    for w, b in p[:-1]:
        x = jax.nn.relu(x @ w + b)
    return x @ p[-1][0] + p[-1][1]


def mlp_model(config):
    """(params, loss(params, x, y)) of the MLP workload."""
    params = _mlp_params(jax.random.key(0), config["sizes"])
    return params, lambda p, x, y: _xent(_mlp_apply(p, x), y)


def mlp(data, config) -> Runner:
    return _scan_epochs(*reversed(mlp_model(config)), data, config)


def _bf16(loss):
    """``loss`` computed in bfloat16 on float32 params and inputs (cast at the boundary; the
    gradient comes back float32); the loss itself returned in float32."""
    cast = lambda t: jax.tree.map(lambda a: a.astype(jnp.bfloat16), t)
    return lambda p, x, y: loss(cast(p), cast(x), y).astype(jnp.float32)


def mlp_bf16(data, config) -> Runner:
    params, loss = mlp_model(config)
    return _scan_epochs(_bf16(loss), params, data, config)


def cnn_model(config):
    """(params, loss(params, x, y)) of the CNN workload."""
    c1, c2 = config["channels"]
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    conv = lambda k, cin, cout: (jax.random.normal(k, (3, 3, cin, cout)) * jnp.sqrt(2 / (9 * cin)),
                                 jnp.zeros(cout))
    params = [conv(k1, 1, c1), conv(k2, c1, c2), _dense(k3, 7 * 7 * c2, 10)]

    def loss(p, x, y):
        for w, b in p[:2]:
            x = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            x = jax.nn.relu(x + b)
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                      "VALID")
        w, b = p[2]
        return _xent(x.reshape(x.shape[0], -1) @ w + b, y)

    return params, loss


def cnn(data, config) -> Runner:
    return _scan_epochs(*reversed(cnn_model(config)), data, config)


def cnn_bf16(data, config) -> Runner:
    params, loss = cnn_model(config)
    return _scan_epochs(_bf16(loss), params, data, config)


def _gru_direction(p, xs, hidden):
    """PyTorch's GRU over time-major xs (T, B, F): gates r, z, n; b_hn inside the reset."""
    def cell(h, x_t):
        gx = x_t @ p["w_ih"] + p["b_ih"]
        gh = h @ p["w_hh"] + p["b_hh"]
        r = jax.nn.sigmoid(gx[:, :hidden] + gh[:, :hidden])
        z = jax.nn.sigmoid(gx[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
        n = jnp.tanh(gx[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
        h = (1 - z) * n + z * h
        return h, h
    return jax.lax.scan(cell, jnp.zeros((xs.shape[1], hidden)), xs)[1]


def gru_mnist1d_model(config):
    """(params, loss(params, x, y)) of the MNIST-1D BiGRU workload."""
    h = config["hidden"]
    keys = jax.random.split(jax.random.key(0), 9)
    u = lambda k, shape: jax.random.uniform(k, shape, minval=-h ** -0.5, maxval=h ** -0.5)
    gru = lambda ks: {"w_ih": u(ks[0], (1, 3 * h)), "w_hh": u(ks[1], (h, 3 * h)),
                      "b_ih": u(ks[2], (3 * h,)), "b_hh": u(ks[3], (3 * h,))}
    params = {"fwd": gru(keys[:4]), "bwd": gru(keys[4:8]), "out": _dense(keys[8], 40 * 2 * h, 10)}

    def loss(p, x, y):
        xs = jnp.swapaxes(x, 0, 1)[..., None]                        # (40, B, 1)
        fwd = _gru_direction(p["fwd"], xs, h)
        bwd = _gru_direction(p["bwd"], xs[::-1], h)[::-1]
        feats = jnp.swapaxes(jnp.concatenate([fwd, bwd], -1), 0, 1).reshape(x.shape[0], -1)
        return _xent(feats @ p["out"][0] + p["out"][1], y)

    return params, loss


def gru_mnist1d(data, config) -> Runner:
    return _scan_epochs(*reversed(gru_mnist1d_model(config)), data, config)


def lstm_model(config):
    """(params, loss(params, x, y)) of the LSTM workload: the textbook LSTM (gates i, f, g, o)
    in a lax.scan, the last hidden state into a dense output, MSE."""
    f, h = config["features"], config["hidden"]
    k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
    params = {"w_ih": _dense(k1, f, 4 * h)[0], "w_hh": _dense(k2, h, 4 * h)[0],
              "b": jnp.zeros(4 * h), "out": _dense(k3, h, 1)}

    def loss(p, x, y):
        def cell(carry, x_t):
            hid, c = carry
            i, fg, g, o = jnp.split(x_t @ p["w_ih"] + hid @ p["w_hh"] + p["b"], 4, axis=-1)
            c = jax.nn.sigmoid(fg) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            return (jax.nn.sigmoid(o) * jnp.tanh(c), c), None
        zeros = jnp.zeros((x.shape[0], h))
        (hid, _), _ = jax.lax.scan(cell, (zeros, zeros), jnp.swapaxes(x, 0, 1))
        return jnp.mean((hid @ p["out"][0] + p["out"][1] - y) ** 2)

    return params, loss


def lstm(data, config) -> Runner:
    """One jitted, donating step of the same batch per call, ``config['steps']`` calls."""
    params, loss = lstm_model(config)
    x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])
    tx = optax.adam(config["learning_rate"])

    def update(p, s):
        u, s = tx.update(jax.grad(loss)(p, x, y), s, p)
        return optax.apply_updates(p, u), s

    step = jax.jit(update, donate_argnums=(0, 1))
    box = [params, tx.init(params)]

    def run():
        for _ in range(config["steps"]):
            box[0], box[1] = step(box[0], box[1])
        return box[0]

    return Runner(blocked(run), config["steps"] * config["batch"])


def adam(data, config) -> Runner:
    """optax.adam, jitted and donating, on the same 10M-parameter tree as fnn's."""
    return donated_updates(optax.adam(config["learning_rate"]), optax.apply_updates, config)


def gemm(data, config) -> Runner:
    n = config["size"]
    a = jax.random.normal(jax.random.key(0), (n, n))
    b = jax.random.normal(jax.random.key(1), (n, n))
    mm = jax.jit(jnp.matmul)
    return Runner(blocked(lambda: mm(a, b)), 2 * n ** 3 / 1e9)


def quadrant_runs_model(data, config):
    """(init(key) -> params, loss(params)) of the hand-written quadrant run."""
    x, t = jnp.asarray(data["x"]), jnp.asarray(data["y"])
    l2, hidden = config["l2"], config["hidden"]

    def init(key):
        k1, k2 = jax.random.split(key)
        return (*_dense(k1, 2, hidden), *_dense(k2, hidden, 4))

    def loss(p):
        w1, b1, w2, b2 = p
        logits = jax.nn.relu(x @ w1 + b1) @ w2 + b2
        return _xent(logits, t) + 0.5 * l2 * (jnp.sum(w1 ** 2) + jnp.sum(w2 ** 2))

    return init, loss


def vmap_quadrant(data, config) -> Runner:
    """A plain jax.vmap of the hand-written quadrant run over ``runs`` random inits."""
    init, loss = quadrant_runs_model(data, config)
    lr = config["learning_rate"]

    def one_run(key):
        def body(p, _):
            l, g = jax.value_and_grad(loss)(p)
            return jax.tree.map(lambda a, b: a - lr * b, p, g), l
        return jax.lax.scan(body, init(key), None, length=config["steps"])

    train = jax.jit(jax.vmap(one_run))
    keys = jax.random.split(jax.random.key(0), config["runs"])
    return Runner(blocked(lambda: train(keys)), config["runs"])


def cpu_grad_model(data, config):
    """(params, loss(params)) of the cpu_grad workload: conv3x3 (SAME) -> relu -> 2x2 max pool
    -> mean over space -> dense, softmax cross-entropy, on one fixed batch."""
    c_in, c_out = config["channels"]
    k1, k2 = jax.random.split(jax.random.key(0))
    params = {"conv": jax.random.normal(k1, (3, 3, c_in, c_out)) * jnp.sqrt(2 / (9 * c_in)),
              "dense": _dense(k2, c_out, config["classes"])}
    x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])

    def loss(p):
        h = jax.lax.conv_general_dilated(x, p["conv"], (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = jax.lax.reduce_window(jax.nn.relu(h), -jnp.inf, jax.lax.max, (1, 2, 2, 1),
                                  (1, 2, 2, 1), "VALID")
        w, b = p["dense"]
        return _xent(jnp.mean(h, axis=(1, 2)) @ w + b, y)

    return params, loss


def cpu_grad(data, config) -> Runner:
    """The plain side of the cpu_grad row: ``jax.value_and_grad`` in the scan."""
    return sgd_steps(jax.value_and_grad, *cpu_grad_model(data, config), config)


def cpu_grad_matmul_model(data, config):
    """(params [runs, ...], loss(params)) of the cpu_grad_matmul workload: the quadrant run's
    net and loss, ``runs`` random inits stacked."""
    init, loss = quadrant_runs_model(data, config)
    return jax.vmap(init)(jax.random.split(jax.random.key(0), config["runs"])), loss


def cpu_grad_matmul(data, config) -> Runner:
    """The plain side of the cpu_grad_matmul row: vmapped ``jax.value_and_grad``."""
    return sgd_steps(jax.value_and_grad, *cpu_grad_matmul_model(data, config), config,
                     vmapped=True)
