"""Grouped convolution (seed 001): Conv2d(32, 64, 3, groups=g) has 64 filters of 3x3x(32/g),
so its weight count halves with every doubling of g — 64*3*3*32, 64*3*3*16, 64*3*3*8 — and
the same CNN is trained on the digits with groups = 1, 2, 4 to see what the savings cost."""
from __future__ import annotations

import jax
import numpy as np

import fnn
from experiments._classify import classify
from fnn import plot
from fnn.data import load_digits

DESCRIPTION = "Conv2d(32, 64, 3, groups=1/2/4): parameter counts as in the notes, digits accuracy"
CONFIG = {"groups": [1, 2, 4], "channels": [32, 64, 64], "dense": 128, "learning_rate": 1e-3,
          "epochs": 30, "batch_size": 32, "seed": 0}
QUICK = {"epochs": 1, "channels": [8, 16], "dense": 16}

NOTES_WEIGHTS = {1: 64 * 3 * 3 * 32, 2: 64 * 3 * 3 * 16, 4: 64 * 3 * 3 * 8}


def layer_params(groups: int) -> dict:
    """Weight and bias counts of Conv2D(64, 3, groups) on a 32-channel input."""
    params, _ = fnn.Conv2D(64, 3, groups=groups).init(jax.random.key(0), (8, 8, 32))
    return {"weights": int(params["w"].size), "biases": int(params["b"].size),
            "kernel_shape": list(params["w"].shape)}


def run(config):
    split = load_digits(flatten=False)
    rows = {}
    for g in config["groups"]:
        counts = layer_params(g)
        net = fnn.models.SimpleCNN(config["channels"], config["dense"], groups=g)
        trained = classify(net, split, optimizer=fnn.optim.adam(config["learning_rate"]),
                           epochs=config["epochs"], batch_size=config["batch_size"],
                           seed=config["seed"])
        rows[str(g)] = {**counts, "notes_weights": NOTES_WEIGHTS.get(g),
                        "matches_notes": counts["weights"] == NOTES_WEIGHTS.get(g),
                        "network_params": trained["params"],
                        "test_accuracy": trained["test_accuracy"],
                        "val_accuracy": trained["curves"]["val_accuracy"],
                        "train_seconds": trained["train_seconds"]}
    summary = "; ".join(f"groups={g}: {r['weights']:,} weights, test {100 * r['test_accuracy']:.1f}%"
                        for g, r in rows.items())
    return {"groups": rows, "summary": summary}


def figures(results, out_dir):
    rows = results["groups"]
    fig, (ax_params, ax_acc) = plot.figure(2, size=(4.6, 3.6))
    labels = [f"g={g}" for g in rows]
    ax_params.bar(labels, [r["weights"] for r in rows.values()], color=plot.COLORS[0])
    for i, r in enumerate(rows.values()):
        ax_params.text(i, r["weights"], f"{r['weights']:,}", ha="center", va="bottom")
    ax_params.set_title("Conv2d(32, 64, 3) weights")
    for i, (g, r) in enumerate(rows.items()):
        acc = np.asarray(r["val_accuracy"])
        ax_acc.plot(np.arange(1, len(acc) + 1), acc, color=plot.COLORS[i], label=f"groups={g}")
    plot.decorate(ax_acc, xlabel="epoch", ylabel="test accuracy",
                  title="digits CNN with grouped convolutions", integer_x=True)
    return [plot.save(fig, f"{out_dir}/grouped_conv.png")]
