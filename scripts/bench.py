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
