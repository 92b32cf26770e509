"""The notes' fully worked backpropagation example (seed 002), by jax.grad and by hand.

A 2-2-2 network with sigmoid hidden and output units: inputs i1 = 0.05, i2 = 0.10, targets
0.01, 0.99, weights w1..w8 = 0.15 ... 0.55 and one shared bias per layer (b1 = 0.35,
b2 = 0.60), E = sum 1/2 (target - out)^2, one gradient step of learning rate 0.5:

    h1 = sigma(w1 i1 + w2 i2 + b1)     o1 = sigma(w5 h1 + w6 h2 + b2)
    h2 = sigma(w3 i1 + w4 i2 + b1)     o2 = sigma(w7 h1 + w8 h2 + b2)

The scalars are the parameters; they are laid into two ``fnn.Dense`` layers (a shared bias
appears in both units, so its gradient is the sum of the two). Everything runs in float64.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn import manual, plot

DESCRIPTION = "seed 002's worked 2-2-2 sigmoid backprop example: jax.grad vs the hand derivation"
CONFIG = {
    "inputs": [0.05, 0.10],
    "targets": [0.01, 0.99],
    "weights": {"w1": 0.15, "w2": 0.20, "w3": 0.25, "w4": 0.30,
                "w5": 0.40, "w6": 0.45, "w7": 0.50, "w8": 0.55, "b1": 0.35, "b2": 0.60},
    "learning_rate": 0.5,
}
QUICK = {}

# The numbers printed in the notes, as printed (the string keeps the digits given).
NOTES = {"E_total": "0.298371109", "dE/dw5": "0.082167041", "dE/dw1": "0.000438568",
         "w5": "0.35891648", "w6": "0.408666186", "w7": "0.511301270", "w8": "0.561370121",
         "w1": "0.149780716"}
WEIGHTS = ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8")
PARAMETERS = WEIGHTS + ("b1", "b2")


def network():
    return fnn.serial(fnn.Dense(2), fnn.sigmoid, fnn.Dense(2), fnn.sigmoid)


def dense_params(s):
    """Scalars -> fnn params. Dense computes x W + b, so W[i, j] connects input i to unit j."""
    xp = jnp if isinstance(s["w1"], jax.Array) else np
    return {"dense_0": {"w": xp.array([[s["w1"], s["w3"]], [s["w2"], s["w4"]]]),
                        "b": xp.array([s["b1"], s["b1"]])},
            "dense_1": {"w": xp.array([[s["w5"], s["w7"]], [s["w6"], s["w8"]]]),
                        "b": xp.array([s["b2"], s["b2"]])}}


def scalar_grads(g):
    """fnn-layout gradients -> d/dw1..w8, d/db1, d/db2 (a shared bias sums its units)."""
    (w0, b0), (w1, b1) = (g["dense_0"]["w"], g["dense_0"]["b"]), (g["dense_1"]["w"], g["dense_1"]["b"])
    return {"w1": w0[0, 0], "w2": w0[1, 0], "w3": w0[0, 1], "w4": w0[1, 1],
            "w5": w1[0, 0], "w6": w1[1, 0], "w7": w1[0, 1], "w8": w1[1, 1],
            "b1": b0.sum(), "b2": b1.sum()}


def by_jax(config):
    """E_total and dE/d(every scalar) from jax.grad of the fnn network, in float64."""
    net = network()
    x = jnp.array([config["inputs"]], jnp.float64)
    t = jnp.array([config["targets"]], jnp.float64)
    scalars = {k: jnp.float64(v) for k, v in config["weights"].items()}
    loss = lambda s: fnn.losses.sum_of_halves(net(dense_params(s), x), t)
    e_total, grads = jax.value_and_grad(loss)(scalars)
    return float(e_total), {k: float(grads[k]) for k in PARAMETERS}


def by_hand(config):
    """The same numbers from the notes' hand derivation (``fnn.manual``, NumPy)."""
    p = dense_params({k: np.float64(v) for k, v in config["weights"].items()})
    x = np.array([config["inputs"]])
    t = np.array([config["targets"]])
    net_h, cache_1 = manual.affine_forward(x, p["dense_0"]["w"], p["dense_0"]["b"])
    out_h = manual.sigmoid(net_h)
    net_o, cache_2 = manual.affine_forward(out_h, p["dense_1"]["w"], p["dense_1"]["b"])
    out_o = manual.sigmoid(net_o)
    e_total, d_out_o = manual.sum_of_halves(out_o, t)       # dE/dout_o = -(t - o)
    delta_o = manual.sigmoid_backward(d_out_o, net_o)       # * o (1 - o)
    d_out_h, dw2, db2 = manual.affine_backward(delta_o, cache_2)
    delta_h = manual.sigmoid_backward(d_out_h, net_h)       # sum over outputs, * h (1 - h)
    _, dw1, db1 = manual.affine_backward(delta_h, cache_1)
    grads = scalar_grads({"dense_0": {"w": dw1, "b": db1}, "dense_1": {"w": dw2, "b": db2}})
    return float(e_total), {k: float(grads[k]) for k in PARAMETERS}


def rounds_to(value: float, published: str) -> bool:
    """True when ``value``, rounded to as many decimals as ``published`` shows, prints as it."""
    decimals = len(published.split(".")[1])
    return f"{value:.{decimals}f}" == published


def run(config):
    with jax.enable_x64(True):
        e_jax, g_jax = by_jax(config)
    e_hand, g_hand = by_hand(config)
    lr, w = config["learning_rate"], config["weights"]
    updated = {k: w[k] - lr * g_jax[k] for k in WEIGHTS}
    updated_hand = {k: w[k] - lr * g_hand[k] for k in WEIGHTS}
    diff = max(abs(e_jax - e_hand), *(abs(g_jax[k] - g_hand[k]) for k in g_jax))
    ours = {"E_total": e_jax, "dE/dw5": g_jax["w5"], "dE/dw1": g_jax["w1"], **updated}
    matches = {k: rounds_to(ours[k], v) for k, v in NOTES.items()}
    return {
        "E_total": e_jax,
        "grads": g_jax,
        "updated": updated,
        "manual": {"E_total": e_hand, "grads": g_hand, "updated": updated_hand},
        "max_abs_diff": diff,
        "notes": NOTES,
        "matches_notes": matches,
        "summary": (f"E_total = {e_jax:.9f}; w5+ = {updated['w5']:.8f}, w1+ = {updated['w1']:.9f}; "
                    f"jax.grad vs hand: max |diff| = {diff:.1e}; "
                    f"{sum(matches.values())}/{len(matches)} published numbers reproduced"),
    }


def figures(results, out_dir):
    return [plot.save(draw(results), f"{out_dir}/backprop_example.png")]


def draw(results):
    """The figure: jax.grad's and the hand derivation's gradients side by side, and their
    difference per parameter on a log axis."""
    names = list(PARAMETERS)
    fig, (ax_grad, ax_diff) = plot.figure(2, size=(5.2, 3.8))
    xs = np.arange(len(names))
    ax_grad.bar(xs - 0.2, [results["grads"][k] for k in names], 0.4, label="jax.grad",
                color=plot.COLORS[0])
    ax_grad.bar(xs + 0.2, [results["manual"]["grads"][k] for k in names], 0.4,
                label="hand derivation", color=plot.COLORS[1])
    ax_grad.set_xticks(xs, names)
    plot.decorate(ax_grad, xlabel="parameter", ylabel="dE_total / dparam",
                  title=f"gradients (E_total = {results['E_total']:.9f})", grid=False)
    diffs = [abs(results["grads"][k] - results["manual"]["grads"][k]) for k in names]
    ax_diff.bar(xs, np.maximum(diffs, 1e-20), color=plot.COLORS[2])
    plot.decorate(ax_diff, xlabel="parameter", ylabel="|jax.grad - hand| (1e-20 = equal)",
                  title="difference (float64)", logy=True, grid=False)
    ax_diff.set_ylim(1e-20, 1e-10)
    ax_diff.set_xticks(xs, names)
    return fig
