"""Benchmarks, measured side by side in one run and reported as ratios.

    python scripts/bench.py                 # every workload
    python scripts/bench.py adam quadrant   # some
    python scripts/bench.py --json out.json

Workloads:
  adam      one jitted, buffer-donating Adam update of a 10M-parameter pytree (50 leaves):
            fnn.optim.adam vs optax.adam, updates per second.
  quadrant  the notes' 2-50-4 quadrant net, 10000 full-batch SGD steps (float32):
            fnn.fit vs a hand-written jax.lax.scan loop vs the notes' NumPy loop, steps/s.
  lstm      an LSTM (input 32, hidden 128, 100 steps, batch 64) -> last state -> Dense(1), MSE,
            Adam: fnn's jitted train step (fnn.Recurrent(fnn.LSTMCell)) vs a minimal
            hand-written JAX LSTM (lax.scan) with optax.adam, training samples/s.
  mlp       784-256-256-10, Adam, batch 128, one epoch of 60000 synthetic samples per call:
            fnn.fit vs a hand-written JAX scan, samples/s.
  cnn       2 conv + pool + dense on 28x28x1, Adam, batch 128: fnn.fit vs hand-written JAX.
  gemm      a 2048^3 float32 matmul in JAX and NumPy, GFLOP/s: the machine's ceiling.
  sweep     32 quadrant runs (32 seeds) in one fnn.sweep vs 32 sequential fits, and 16
            learning rates of a digits MLP likewise, runs per second.

Timings are medians over repeats after a warm-up (compilation excluded). Implementations of a
workload alternate within each repeat so that machine noise hits them alike.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fnn  # noqa: E402


def _timed(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def _median_rates(runners: dict, work: float, repeats: int) -> dict:
    """{name: work per second}: median over ``repeats`` rounds of every runner in turn."""
    for run in runners.values():
        jax.block_until_ready(run())  # warm-up: compile
    times = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            times[name].append(_timed(run))
    return {name: work / statistics.median(t) for name, t in times.items()}


def bench_adam(repeats: int = 5, leaves: int = 50, size: int = 200_000, steps: int = 10) -> dict:
    import optax

    keys = jax.random.split(jax.random.key(0), leaves)
    params = {f"leaf_{i:02d}": jax.random.normal(k, (size,)) for i, k in enumerate(keys)}
    grads = jax.tree.map(lambda p: 1e-3 * p, params)
    runners = {}
    for name, opt in (("fnn", fnn.optim.adam(1e-3)), ("optax", optax.adam(1e-3))):
        def update(p, s, g, opt=opt):
            u, s = opt.update(g, s, p)
            return fnn.optim.apply_updates(p, u), s

        step = jax.jit(update, donate_argnums=(0, 1))
        box = {"p": jax.tree.map(jnp.copy, params)}
        box["s"] = opt.init(box["p"])

        def run(step=step, box=box):
            for _ in range(steps):
                box["p"], box["s"] = step(box["p"], box["s"], grads)
            return box["p"]

        runners[name] = run
    rates = _median_rates(runners, steps, repeats)
    return {"unit": "updates/s", "params": leaves * size, "rates": rates,
            "ratio fnn/optax": rates["fnn"] / rates["optax"]}


def bench_quadrant(repeats: int = 5, steps: int = 10_000) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from experiments import quadrant

    cfg = {**quadrant.CONFIG, "steps": steps}
    net, train = quadrant.fnn_trainer(cfg)
    w1, b1, w2, b2 = (jnp.asarray(a, jnp.float32) for a in quadrant.initial_weights(50, 1))
    params = {"dense_0": {"w": w1, "b": b1[0]}, "dense_1": {"w": w2, "b": b2[0]}}
    x, t = jnp.asarray(quadrant.POINTS, jnp.float32), jnp.asarray(quadrant.LABELS)

    def loss(p):
        h = jax.nn.relu(x @ p["dense_0"]["w"] + p["dense_0"]["b"][None])
        logits = h @ p["dense_1"]["w"] + p["dense_1"]["b"][None]
        ce = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), t[:, None], axis=1))
        return ce + 0.0005 * (jnp.sum(p["dense_0"]["w"] ** 2) + jnp.sum(p["dense_1"]["w"] ** 2)), ce

    @jax.jit
    def hand_scan(p):
        def body(p, _):
            (_, ce), g = jax.value_and_grad(loss, has_aux=True)(p)
            return jax.tree.map(lambda a, b: a - 0.001 * b, p, g), ce
        return jax.lax.scan(body, p, None, length=steps)

    runners = {"fnn": lambda: train().params, "jax": lambda: hand_scan(params),
               "numpy": lambda: quadrant.numpy_reference(steps, 50, 0.001, 0.001, 1)[0]}
    rates = _median_rates(runners, steps, repeats)
    return {"unit": "steps/s", "rates": rates, "ratio fnn/jax": rates["fnn"] / rates["jax"],
            "ratio fnn/numpy": rates["fnn"] / rates["numpy"]}


def bench_lstm(repeats: int = 5, features: int = 32, hidden: int = 128, length: int = 100,
               batch: int = 64, steps: int = 10) -> dict:
    import optax

    kx, ky = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (batch, length, features))
    y = jax.random.normal(ky, (batch, 1))
    net = fnn.serial(fnn.Recurrent(fnn.LSTMCell(hidden), return_sequences=False), fnn.Dense(1))
    params, state = net.init(jax.random.key(1), (length, features))
    opt = fnn.optim.adam(1e-3)
    fnn_step = jax.jit(fnn.train_step(fnn.supervised(net, fnn.losses.mse), opt), donate_argnums=0)
    box = {"ts": fnn.TrainState(params, state, opt.init(params), jnp.zeros((), jnp.int32))}

    def run_fnn():
        for _ in range(steps):
            box["ts"], _ = fnn_step(box["ts"], (x, y), None)
        return box["ts"].params

    # the baseline: the textbook LSTM written out, gates i, f, g, o
    def lstm_loss(p, x, y):
        def cell(carry, x_t):
            h, c = carry
            z = x_t @ p["w_ih"] + h @ p["w_hh"] + p["b"]
            i, f, g, o = jnp.split(z, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), None
        zeros = jnp.zeros((x.shape[0], hidden))
        (h, _), _ = jax.lax.scan(cell, (zeros, zeros), jnp.swapaxes(x, 0, 1))
        return jnp.mean((h @ p["w_out"] + p["b_out"] - y) ** 2)

    tx = optax.adam(1e-3)

    def jax_update(p, s, x, y):
        g = jax.grad(lstm_loss)(p, x, y)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    jax_step = jax.jit(jax_update, donate_argnums=(0, 1))
    cell = params["lstm_0"]
    hand = {"w_ih": cell["w_ih"], "w_hh": cell["w_hh"], "b": cell["b"],
            "w_out": params["dense_0"]["w"], "b_out": params["dense_0"]["b"]}
    hbox = {"p": jax.tree.map(jnp.copy, hand)}
    hbox["s"] = tx.init(hbox["p"])

    def run_jax():
        for _ in range(steps):
            hbox["p"], hbox["s"] = jax_step(hbox["p"], hbox["s"], x, y)
        return hbox["p"]

    rates = _median_rates({"fnn": run_fnn, "jax": run_jax}, steps * batch, repeats)
    return {"unit": "samples/s", "shape": f"batch {batch}, length {length}, input {features}, "
                                          f"hidden {hidden}",
            "rates": rates, "ratio fnn/jax": rates["fnn"] / rates["jax"]}


WORKLOADS = {"adam": bench_adam, "quadrant": bench_quadrant}
WORKLOADS["lstm"] = bench_lstm


def _adam_scan_epoch(loss, tx, batch_size: int):
    """A minimal hand-written JAX epoch: shuffle, then lax.scan of value_and_grad + optax."""

    @jax.jit
    def epoch(p, s, x, y, key):
        steps = x.shape[0] // batch_size
        perm = jax.random.permutation(key, x.shape[0])[: steps * batch_size]

        def body(carry, idx):
            p, s = carry
            l, g = jax.value_and_grad(loss)(p, x[idx], y[idx])
            u, s = tx.update(g, s, p)
            return (jax.tree.map(lambda a, b: a + b, p, u), s), l

        (p, s), losses = jax.lax.scan(body, (p, s), perm.reshape(steps, batch_size))
        return p, s, jnp.mean(losses)

    return epoch


def _fit_vs_hand(net, params, hand_params, hand_loss, x, y, batch_size, repeats):
    """samples/s of one fnn.fit epoch (Adam 1e-3) vs the hand-written JAX epoch on the same data."""
    import optax

    objective = fnn.supervised(net, accuracy=False)
    opt = fnn.optim.adam(1e-3)
    fnn_epoch = lambda: fnn.fit(objective, params, opt, (x, y), epochs=1, batch_size=batch_size,
                                progress=False).params
    tx = optax.adam(1e-3)
    hand = _adam_scan_epoch(hand_loss, tx, batch_size)
    state = tx.init(hand_params)
    jax_epoch = lambda: hand(hand_params, state, x, y, jax.random.key(0))[0]
    samples = (x.shape[0] // batch_size) * batch_size
    return _median_rates({"fnn": fnn_epoch, "jax": jax_epoch}, samples, repeats)


def _xent(logits, y):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def bench_mlp(repeats: int = 5, n: int = 60_000, batch_size: int = 128) -> dict:
    """784-256-256-10 ReLU MLP, Adam, batch 128, one epoch of 60000 synthetic examples per
    compiled call: fnn.fit(epochs=1) vs a hand-written shuffled lax.scan epoch (optax.adam)."""
    kx, ky, kp = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (n, 784))
    y = jax.random.randint(ky, (n,), 0, 10)
    net = fnn.serial(fnn.Dense(256), fnn.relu, fnn.Dense(256), fnn.relu, fnn.Dense(10))
    params, _ = net.init(kp, (784,))
    hand_params = [(params[f"dense_{i}"]["w"], params[f"dense_{i}"]["b"]) for i in range(3)]

    def hand_loss(p, x, y):
        for w, b in p[:-1]:
            x = jax.nn.relu(x @ w + b[None])
        return _xent(x @ p[-1][0] + p[-1][1][None], y)

    rates = _fit_vs_hand(net, params, hand_params, hand_loss, x, y, batch_size, min(repeats, 3))
    return {"unit": "samples/s", "shape": f"784-256-256-10, batch {batch_size}, {n} examples",
            "rates": rates, "ratio fnn/jax": rates["fnn"] / rates["jax"]}


def bench_cnn(repeats: int = 5, n: int = 128 * 8, batch_size: int = 128) -> dict:
    """conv3x3(16)-relu-maxpool2-conv3x3(32)-relu-maxpool2-dense(10) on 28x28x1 synthetic images,
    Adam, batch 128, one epoch per call: fnn.fit vs hand-written lax.conv/reduce_window + optax."""
    kx, ky, kp = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (n, 28, 28, 1))
    y = jax.random.randint(ky, (n,), 0, 10)
    net = fnn.serial(fnn.Conv2D(16, 3), fnn.relu, fnn.MaxPool(2), fnn.Conv2D(32, 3), fnn.relu,
                     fnn.MaxPool(2), fnn.Flatten(), fnn.Dense(10))
    params, _ = net.init(kp, (28, 28, 1))
    hand_params = {k: (v["w"], v["b"]) for k, v in params.items() if v}
    convs = sorted(k for k in hand_params if k.startswith("conv"))
    dense = [k for k in hand_params if k.startswith("dense")][0]

    def hand_loss(p, x, y):
        for k in convs:
            w, b = p[k]
            x = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            x = jax.nn.relu(x + b[None, None, None])
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                      "VALID")
        w, b = p[dense]
        return _xent(x.reshape(x.shape[0], -1) @ w + b[None], y)

    rates = _fit_vs_hand(net, params, hand_params, hand_loss, x, y, batch_size, repeats)
    return {"unit": "samples/s", "shape": f"28x28x1, batch {batch_size}, {n} examples/epoch",
            "rates": rates, "ratio fnn/jax": rates["fnn"] / rates["jax"]}


def bench_gemm(repeats: int = 5, size: int = 2048) -> dict:
    """The machine ceiling: a jitted size^3 float32 matmul (and NumPy's), GFLOP/s."""
    a = jax.random.normal(jax.random.key(0), (size, size))
    b = jax.random.normal(jax.random.key(1), (size, size))
    na, nb = np.asarray(a), np.asarray(b)
    mm = jax.jit(jnp.matmul)
    rates = _median_rates({"jax": lambda: mm(a, b), "numpy": lambda: na @ nb},
                          2 * size ** 3 / 1e9, repeats)
    return {"unit": "GFLOP/s", "shape": f"{size}^3 float32", "rates": rates,
            "ratio jax/numpy": rates["jax"] / rates["numpy"]}


def bench_sweep(repeats: int = 5, runs: int = 32, steps: int = 10_000, lrs: int = 16,
                epochs: int = 10) -> dict:
    """fnn.sweep vs sequential fnn.fit calls, runs/s. (1) ``runs`` seeds of the quadrant net
    (2-50-4, float32, full-batch SGD 0.001, L2 0.001, ``steps`` steps); (2) ``lrs`` SGD learning
    rates of a 64-64-10 digits MLP (batch 32, ``epochs`` epochs)."""
    from experiments import quadrant

    rates, out = {}, {}
    net = quadrant.network(50)
    init = lambda key: net.init(key, (2,))[0]
    objective = fnn.supervised(net, fnn.losses.softmax_cross_entropy, l2=0.001, accuracy=False)
    data = (jnp.asarray(quadrant.POINTS, jnp.float32), jnp.asarray(quadrant.LABELS))
    seeds = np.arange(runs)
    starts = [init(jax.random.key(s)) for s in range(runs)]
    opt = fnn.optim.sgd(0.001)
    q = _median_rates({
        "sweep": lambda: fnn.sweep(objective, init, fnn.optim.sgd, data, seeds=seeds,
                                   hparams={"learning_rate": 0.001}, epochs=steps).params,
        "fits": lambda: [fnn.fit(objective, starts[s], opt, data, seed=s, epochs=steps,
                                 progress=False).params for s in range(runs)],
    }, runs, repeats)
    rates.update({f"quadrant x{runs} {k}": v for k, v in q.items()})
    out["ratio quadrant sweep/fits"] = q["sweep"] / q["fits"]

    from fnn.data import load_digits

    split = load_digits()
    digits = (jnp.asarray(split.x_train), jnp.asarray(split.y_train))
    mlp = fnn.serial(fnn.Dense(64), fnn.relu, fnn.Dense(10))
    mlp_init = lambda key: mlp.init(key, (64,))[0]
    mlp_objective = fnn.supervised(mlp)
    learning_rates = np.geomspace(1e-3, 0.5, lrs).astype(np.float32)
    p0 = mlp_init(jax.random.key(0))
    optimizers = [fnn.optim.sgd(float(lr)) for lr in learning_rates]
    d = _median_rates({
        "sweep": lambda: fnn.sweep(mlp_objective, p0, fnn.optim.sgd, digits, seeds=0,
                                   hparams={"learning_rate": learning_rates}, epochs=epochs,
                                   batch_size=32).params,
        "fits": lambda: [fnn.fit(mlp_objective, p0, o, digits, seed=0, epochs=epochs,
                                 batch_size=32, progress=False).params for o in optimizers],
    }, lrs, repeats)
    rates.update({f"digits x{lrs} {k}": v for k, v in d.items()})
    out["ratio digits sweep/fits"] = d["sweep"] / d["fits"]
    return {"unit": "runs/s", "rates": rates, **out}


WORKLOADS["mlp"] = bench_mlp
WORKLOADS["cnn"] = bench_cnn
WORKLOADS["gemm"] = bench_gemm
WORKLOADS["sweep"] = bench_sweep


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workloads", nargs="*", choices=[[], *WORKLOADS], default=[])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    names = args.workloads or list(WORKLOADS)
    print(f"fnn {fnn.__version__}, jax {jax.__version__}, {jax.default_backend()} "
          f"({jax.devices()[0].device_kind}), {platform.processor() or platform.machine()}\n")
    print("| workload | unit | " + "implementation: rate | " + "ratio |")
    print("|---|---|---|---|")
    results = {}
    for name in names:
        r = WORKLOADS[name](repeats=args.repeats)
        results[name] = r
        rates = ", ".join(f"{k}: {v:,.0f}" for k, v in r["rates"].items())
        ratios = ", ".join(f"{k.removeprefix('ratio ')} = {v:.2f}x" for k, v in r.items()
                           if k.startswith("ratio"))
        print(f"| {name} | {r['unit']} | {rates} | {ratios} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
