"""An MLP on scikit-learn's 8x8 digits (the built-in image dataset): train/test curves and the
test confusion matrix. Target: >= 97% test accuracy."""
from __future__ import annotations

import fnn
from experiments._classify import classify, curves_and_confusion
from fnn.data import load_digits

DESCRIPTION = "MLP 64-256-10 on the 8x8 digits: curves, confusion matrix (target >= 97%)"
CONFIG = {"hidden": [256], "learning_rate": 1e-3, "epochs": 60, "batch_size": 32, "l2": 1e-4,
          "seed": 0, "target": 0.97}
QUICK = {"epochs": 3}


def run(config):
    net = fnn.MLP([*config["hidden"], 10])
    result = classify(net, load_digits(), optimizer=fnn.optim.adam(config["learning_rate"]),
                      epochs=config["epochs"], batch_size=config["batch_size"],
                      seed=config["seed"], l2=config["l2"])
    result["target_met"] = result["test_accuracy"] >= config["target"]
    result["summary"] = (f"test accuracy {100 * result['test_accuracy']:.2f}% (target "
                         f"{100 * config['target']:.0f}%), {result['params']:,} params, "
                         f"{result['train_seconds']:.1f}s")
    return result


def figures(results, out_dir):
    return [curves_and_confusion(results, f"{out_dir}/digits_mlp.png", "MLP")]
