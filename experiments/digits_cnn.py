"""A small CNN on the 8x8 digits (NHWC): train/test curves and the test confusion matrix.
Target: >= 98% test accuracy."""
from __future__ import annotations

import fnn
from experiments._classify import classify_to_target, curves_and_confusion
from fnn.data import load_digits

DESCRIPTION = "CNN (conv32-conv64-pool-dense128) on the 8x8 digits (target >= 98%)"
CONFIG = {"channels": [32, 64], "dense": 128, "learning_rate": 1e-3, "epochs": 30,
          "batch_size": 32, "l2": 1e-4, "seed": 0, "target": 0.98}
RANGES = {"target": (0.0, 1.0)}   # a test accuracy: --set target=2 is refused
QUICK = {"epochs": 2, "channels": [8, 16], "dense": 32}


def run(config):
    return classify_to_target(fnn.models.SimpleCNN(config["channels"], config["dense"]),
                              load_digits(flatten=False), config)


def figures(results, out_dir):
    return [curves_and_confusion(results, f"{out_dir}/digits_cnn.png", "CNN")]
