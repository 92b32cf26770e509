"""An MLP on scikit-learn's 8x8 digits (the built-in image dataset): train/test curves and the
test confusion matrix. Target: >= 97% test accuracy."""
from __future__ import annotations

import fnn
from experiments._classify import classify_to_target, curves_and_confusion
from fnn.data import load_digits

DESCRIPTION = "MLP 64-256-10 on the 8x8 digits: curves, confusion matrix (target >= 97%)"
CONFIG = {"hidden": [256], "learning_rate": 1e-3, "epochs": 60, "batch_size": 32, "l2": 1e-4,
          "seed": 0, "target": 0.97}
RANGES = {"target": (0.0, 1.0)}   # a test accuracy: --set target=2 is refused
QUICK = {"epochs": 3}


def run(config):
    return classify_to_target(fnn.MLP([*config["hidden"], 10]), load_digits(), config)


def figures(results, out_dir):
    return [curves_and_confusion(results, f"{out_dir}/digits_mlp.png", "MLP")]
