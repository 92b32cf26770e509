"""The notes' two-layer network that tells which quadrant a point is in (seed 000).

Points (2,1), (-1,1), (-1,-1), (1,-1) are labelled 0..3 by quadrant; the network is
2 -> 50 ReLU -> 4 with softmax cross-entropy, L2 0.001 on the weights (dW += reg W), SGD with
learning rate 0.001 for 10000 full-batch steps, weights drawn by ``randn`` after
``np.random.seed(1)``. It runs twice in float64: once as the notes' NumPy loop (hand backprop
with ``fnn.manual``'s affine layer) and once as fnn (``jax.grad`` inside one compiled scan),
and compares the loss curves step by step and the time per run.
"""
from __future__ import annotations

import time

import jax
import numpy as np

import fnn
from fnn import manual, plot

DESCRIPTION = "seed 000's 2-50-4 quadrant net: fnn vs the notes' NumPy loop (curves, speed)"
CONFIG = {"steps": 10000, "hidden": 50, "learning_rate": 0.001, "reg": 0.001, "seed": 1,
          "timing_repeats": 5, "unroll": 8}  # unroll: 8 steps per loop iteration (fit's option)
QUICK = {"steps": 500, "timing_repeats": 1}

POINTS = np.array([[2, 1], [-1, 1], [-1, -1], [1, -1]])  # the notes' X (integers, as there)
LABELS = np.array([0, 1, 2, 3])


def initial_weights(hidden: int, seed: int):
    """The notes' init: W1 = randn(2, H), W2 = randn(H, 4) after np.random.seed(seed); b = 0."""
    rng = np.random.RandomState(seed)
    w1 = rng.randn(2, hidden)
    w2 = rng.randn(hidden, 4)
    return w1, np.zeros((1, hidden)), w2, np.zeros((1, 4))


def numpy_reference(steps: int, hidden: int, learning_rate: float, reg: float, seed: int):
    """The notes' NumPy training loop (without its prints). Returns (losses, W1, b1, W2, b2)."""
    X, t = POINTS, LABELS
    W1, b1, W2, b2 = initial_weights(hidden, seed)
    losses = np.empty(steps)
    for j in range(steps):
        H, fc_cache = manual.affine_forward(X, W1, b1)          # first layer
        H = np.maximum(0, H)                                    # ReLU
        relu_cache = H
        Y, cachey = manual.affine_forward(H, W2, b2)            # second layer
        probs = np.exp(Y - np.max(Y, axis=1, keepdims=True))    # softmax
        probs /= np.sum(probs, axis=1, keepdims=True)
        N = Y.shape[0]
        losses[j] = -np.sum(np.log(probs[np.arange(N), t])) / N  # cross-entropy
        dx = probs.copy()                                       # backward through softmax+CE
        dx[np.arange(N), t] -= 1
        dx /= N
        dh1, dW2, db2 = manual.affine_backward(dx, cachey)
        dh1[relu_cache <= 0] = 0                                # backward through ReLU
        dX, dW1, db1 = manual.affine_backward(dh1, fc_cache)
        dW2 += reg * W2                                         # L2 regularisation
        dW1 += reg * W1
        W2 += -learning_rate * dW2                              # SGD update
        b2 += -learning_rate * db2.reshape(b2.shape)
        W1 += -learning_rate * dW1
        b1 += -learning_rate * db1.reshape(b1.shape)
    return losses, W1, b1, W2, b2


def network(hidden: int):
    return fnn.serial(fnn.Dense(hidden), fnn.relu, fnn.Dense(4))


def fnn_trainer(config):
    """The fnn version: ``train()`` runs fnn.fit (full batch, one compiled scan of all steps).

    The objective and optimizer are built once, so repeated calls reuse the compilation, as
    they would in a user's session.
    """
    net = network(config["hidden"])
    w1, b1, w2, b2 = initial_weights(config["hidden"], config["seed"])
    params = {"dense_0": {"w": w1, "b": b1[0]}, "dense_1": {"w": w2, "b": b2[0]}}
    objective = fnn.supervised(net, fnn.losses.softmax_cross_entropy, l2=config["reg"],
                               accuracy=False)  # the notes track the loss only
    optimizer = fnn.optim.sgd(config["learning_rate"])
    data = (POINTS.astype(np.float64), LABELS)
    train = lambda: fnn.fit(objective, params, optimizer, data, epochs=config["steps"],
                            batch_size=None, progress=False, unroll=config["unroll"])
    return net, train


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(config):
    ref = numpy_reference(config["steps"], config["hidden"], config["learning_rate"],
                          config["reg"], config["seed"])
    numpy_seconds = _median_seconds(
        lambda: numpy_reference(config["steps"], config["hidden"], config["learning_rate"],
                                config["reg"], config["seed"]), config["timing_repeats"])
    with jax.enable_x64(True):
        net, train = fnn_trainer(config)
        start = time.perf_counter()
        result = train()                       # first call: trace + compile + run
        first_seconds = time.perf_counter() - start
        fnn_seconds = _median_seconds(lambda: train().params, config["timing_repeats"])
        probs = np.asarray(fnn.softmax(net(result.params, POINTS.astype(np.float64))))

    fnn_losses = result.history["loss"]
    _, W1, b1, W2, b2 = ref
    ref_logits = np.maximum(0, POINTS @ W1 + b1) @ W2 + b2
    ref_probs = np.exp(ref_logits - ref_logits.max(1, keepdims=True))
    ref_probs /= ref_probs.sum(1, keepdims=True)
    diff = float(np.max(np.abs(fnn_losses - ref[0])))
    speedup = numpy_seconds / fnn_seconds
    return {
        "loss_fnn": fnn_losses,
        "loss_numpy": ref[0],
        "loss_max_abs_diff": diff,
        "final_loss": {"fnn": float(fnn_losses[-1]), "numpy": float(ref[0][-1])},
        "correct_class_probability": {"fnn": probs[np.arange(4), LABELS],
                                      "numpy": ref_probs[np.arange(4), LABELS]},
        "numpy_seconds": numpy_seconds,
        "fnn_seconds": fnn_seconds,
        "fnn_compile_seconds": max(first_seconds - fnn_seconds, 0.0),
        "speedup": speedup,
        "summary": (f"{config['steps']} steps: loss {fnn_losses[0]:.4f} -> {fnn_losses[-1]:.4f}; "
                    f"max |fnn - numpy| = {diff:.1e}; fnn {fnn_seconds * 1e3:.1f} ms vs NumPy "
                    f"{numpy_seconds * 1e3:.0f} ms ({speedup:.1f}x)"),
        "params": jax.tree.map(np.asarray, result.params),
    }


def figures(results, out_dir):
    fig, (ax_loss, ax_regions) = plot.figure(2, size=(5.0, 4.0))
    plot.loss_curves(ax_loss, {"fnn (jax.grad, one scan)": results["loss_fnn"],
                                   "NumPy (hand backprop)": results["loss_numpy"]},
                         styles={"NumPy (hand backprop)": {"ls": "--", "lw": 2.5, "alpha": 0.7}},
                         title=f"loss curves agree to {results['loss_max_abs_diff']:.0e}")
    params = jax.tree.map(lambda a: np.asarray(a, np.float32), results["params"])
    net = network(params["dense_0"]["w"].shape[1])
    predict = lambda grid: np.argmax(np.asarray(net(params, grid.astype(np.float32))), axis=1)
    plot.decision_regions(ax_regions, predict, POINTS, LABELS, num_classes=4, margin=1.5,
                              title="learned quadrant regions")
    return [plot.save(fig, f"{out_dir}/quadrant.png")]
