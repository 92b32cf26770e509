"""Logic gates with single units (seed 002): AND and OR are linearly separable, XOR is not.

1. One sigmoid unit h(x) = sigma(theta_0 + theta_1 x1 + theta_2 x2) with theta = (-30, 20, 20)
   computes AND and with theta = (-10, 20, 20) computes OR, as in the notes.
2. The perceptron learning rule learns AND and OR from the four examples; on XOR it keeps
   making mistakes in every epoch. An exhaustive search over a grid of thresholds confirms
   that no single linear threshold unit gets more than 3 of the 4 XOR cases right.
3. A 2-2-1 network (one hidden layer of two sigmoid units) trained with jax.grad learns XOR.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn import plot

DESCRIPTION = "AND/OR with one unit (theta = -30,20,20 / -10,20,20), the perceptron rule, XOR needs 2-2-1"
CONFIG = {"perceptron_epochs": 20, "perceptron_lr": 1.0, "grid_step": 0.25, "grid_limit": 3.0,
          "xor_hidden": 2, "xor_steps": 2000, "xor_learning_rate": 0.1, "seed": 0}
QUICK = {"xor_steps": 1000, "grid_step": 0.5}

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
TRUTH = {"AND": np.array([0, 0, 0, 1]), "OR": np.array([0, 1, 1, 1]), "XOR": np.array([0, 1, 1, 0])}
THETA = {"AND": (-30.0, 20.0, 20.0), "OR": (-10.0, 20.0, 20.0)}


def unit_params(theta):
    """theta = (bias, w1, w2) as the params of ``fnn.Perceptron``."""
    b, w1, w2 = theta
    return {"dense_0": {"w": jnp.array([[w1], [w2]], jnp.float32), "b": jnp.array([b], jnp.float32)}}


def best_linear_accuracy(targets, step: float, limit: float) -> float:
    """Max accuracy of step(b + w1 x1 + w2 x2) over a grid of (b, w1, w2) in [-limit, limit]^3."""
    axis = jnp.arange(-limit, limit + step / 2, step, dtype=jnp.float32)
    b, w1, w2 = (a.ravel() for a in jnp.meshgrid(axis, axis, axis, indexing="ij"))
    pred = jnp.outer(b, jnp.ones(4, jnp.float32)) + jnp.outer(w1, INPUTS[:, 0]) + jnp.outer(w2, INPUTS[:, 1])
    correct = (pred > 0).astype(jnp.int32) == jnp.asarray(targets)[None]
    return float(jnp.max(jnp.mean(correct.astype(jnp.float32), axis=1)))


def train_xor_network(config):
    """2-H-1 network, sigmoid hidden units, binary cross-entropy, Adam, full batch."""
    net = fnn.serial(fnn.Dense(config["xor_hidden"]), fnn.sigmoid, fnn.Dense(1))
    params, _ = net.init(jax.random.key(config["seed"]), (2,))
    targets = TRUTH["XOR"].astype(np.float32)[:, None]
    objective = fnn.supervised(net, fnn.losses.binary_cross_entropy)
    result = fnn.fit(objective, params, fnn.optim.adam(config["xor_learning_rate"]),
                     (INPUTS, targets), epochs=config["xor_steps"], progress=False)
    return net, result


def run(config):
    perceptron = fnn.Perceptron("sigmoid")
    fixed = {}
    for gate, theta in THETA.items():
        out = np.asarray(perceptron(unit_params(theta), INPUTS))[:, 0]
        fixed[gate] = {"theta": theta, "outputs": out, "rounded": np.round(out).astype(int),
                       "correct": bool(np.all(np.round(out) == TRUTH[gate]))}

    learned = {}
    for gate, targets in TRUTH.items():
        run_ = fnn.perceptron_rule(INPUTS, targets, epochs=config["perceptron_epochs"],
                                   learning_rate=config["perceptron_lr"])
        errors = np.asarray(run_.errors)
        converged = np.flatnonzero(errors == 0)
        learned[gate] = {"w": run_.w, "b": run_.b, "errors_per_epoch": errors,
                         "converged_epoch": int(converged[0]) + 1 if converged.size else None,
                         "best_linear_accuracy": best_linear_accuracy(
                             targets, config["grid_step"], config["grid_limit"])}

    net, result = train_xor_network(config)
    logits = np.asarray(net(result.params, INPUTS))[:, 0]
    xor_pred = (logits > 0).astype(int)
    xor_accuracy = float(np.mean(xor_pred == TRUTH["XOR"]))
    summary = (f"theta AND/OR correct: {fixed['AND']['correct']}/{fixed['OR']['correct']}; "
               f"perceptron rule converges on AND in {learned['AND']['converged_epoch']} and OR in "
               f"{learned['OR']['converged_epoch']} epochs, XOR never "
               f"(best linear accuracy {learned['XOR']['best_linear_accuracy']:.2f}); "
               f"2-{config['xor_hidden']}-1 net on XOR: accuracy {xor_accuracy:.2f}")
    return {
        "fixed_theta": fixed,
        "perceptron_rule": learned,
        "xor_network": {"loss": result.history["loss"], "final_loss": float(result.history["loss"][-1]),
                        "predictions": xor_pred, "accuracy": xor_accuracy,
                        "params": jax.tree.map(np.asarray, result.params)},
        "summary": summary,
    }


def figures(results, out_dir):
    fig, axes = plot.figure(5, size=(3.4, 3.2))
    step = lambda z: (np.asarray(z) > 0).astype(int)
    for ax, gate in zip(axes[:3], ("AND", "OR", "XOR")):
        r = results["perceptron_rule"][gate]
        w, b = np.asarray(r["w"]), float(r["b"])
        plot.decision_regions(ax, lambda g, w=w, b=b: step(g @ w + b), INPUTS, TRUTH[gate],
                              num_classes=2, title=f"{gate}: perceptron rule")
    params = jax.tree.map(jnp.asarray, results["xor_network"]["params"])
    net = fnn.serial(fnn.Dense(params["dense_0"]["w"].shape[1]), fnn.sigmoid, fnn.Dense(1))
    plot.decision_regions(axes[3], lambda g: step(np.asarray(net(params, g.astype(np.float32)))[:, 0]),
                          INPUTS, TRUTH["XOR"], num_classes=2, title="XOR: 2-2-1 network")
    for i, gate in enumerate(("AND", "OR", "XOR")):
        errors = results["perceptron_rule"][gate]["errors_per_epoch"]
        axes[4].plot(np.arange(1, len(errors) + 1), errors, marker="o", ms=3, label=gate,
                     color=plot.COLORS[i])
    plot.decorate(axes[4], xlabel="epoch", ylabel="mistakes in epoch", title="perceptron rule",
                  integer_x=True, grid=False)
    return [plot.save(fig, f"{out_dir}/logic_gates.png")]
