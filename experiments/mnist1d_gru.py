"""MNIST-1D's GRU row (Greydanus 2020: 91% test accuracy), with the paper's model and setup.

The model of the mnist1d repository: a bidirectional GRU with 6 hidden units reads the 40
values of an example one per time step; the outputs of all 40 steps of both directions
(40 x 12 = 480 features) are flattened into a linear classifier. Training as in the paper:
Adam, learning rate 1e-2, batch 100, 6000 steps (150 epochs of the 4000 training examples),
PyTorch's initialisation U(-1/sqrt(6), 1/sqrt(6)) for the GRU (``fnn.layers.recurrent.torch_init``).
"""
from __future__ import annotations

import fnn
from experiments._classify import classify, curves_and_confusion
from fnn.data import load_mnist1d
from fnn.layers.recurrent import torch_init

DESCRIPTION = "MNIST-1D: bidirectional GRU (hidden 6) vs the published 91%"
PUBLISHED = 0.91
CONFIG = {"hidden": 6, "learning_rate": 1e-2, "batch_size": 100, "epochs": 150,
          "init": "torch", "seed": 0}
QUICK = {"epochs": 1}


def model(hidden: int = 6, init: str = "torch"):
    """x (batch, 40) -> one value per step (batch, 40, 1) -> BiGRU (batch, 40, 2 hidden)
    -> flatten (batch, 80 hidden) -> Dense(10) logits."""
    kwargs = torch_init(hidden) if init == "torch" else {}
    return fnn.serial(fnn.Reshape((-1, 1)),
                      fnn.Bidirectional(fnn.GRUCell(hidden, **kwargs)),
                      fnn.Flatten(), fnn.Dense(10))


def run(config):
    split = load_mnist1d()
    r = classify(model(config["hidden"], config["init"]), split,
                 optimizer=fnn.optim.adam(config["learning_rate"]), epochs=config["epochs"],
                 batch_size=config["batch_size"], seed=config["seed"], progress=False)
    steps = config["epochs"] * (len(split.x_train) // config["batch_size"])
    return {
        **r, "published": PUBLISHED, "steps": steps,
        "difference_from_published": r["test_accuracy"] - PUBLISHED,
        "summary": (f"BiGRU-{config['hidden']}: test accuracy {100 * r['test_accuracy']:.1f}% "
                    f"(paper {100 * PUBLISHED:.0f}%) after {steps} steps, {r['params']} params, "
                    f"{r['train_seconds']:.0f}s"),
    }


def figures(results, out_dir):
    return [curves_and_confusion(results, f"{out_dir}/mnist1d_gru.png",
                                 f"MNIST-1D BiGRU (paper {100 * results['published']:.0f}%)")]
