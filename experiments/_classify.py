"""Shared by the classification experiments: train on a split, evaluate, draw the figures."""
from __future__ import annotations

import time

import jax
import numpy as np

import fnn
from fnn import plot


def confusion_matrix(predicted, labels, num_classes: int) -> np.ndarray:
    """counts[i, j] = number of examples of class i predicted as j."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (np.asarray(labels), np.asarray(predicted)), 1)
    return counts


def classify(net, split, *, optimizer, epochs: int, batch_size: int, seed: int = 0,
             l2: float = 0.0, num_classes: int = 10, progress: bool = True) -> dict:
    """Train ``net`` with softmax cross-entropy on ``split`` (x_train, y_train, x_test,
    y_test), the test set as validation data; return curves, accuracy and confusion."""
    params, state = net.init(jax.random.key(seed), split.x_train.shape[1:])
    objective = fnn.supervised(net, fnn.losses.softmax_cross_entropy, l2=l2)
    start = time.perf_counter()
    result = fnn.fit(objective, params, optimizer, (split.x_train, split.y_train),
                     model_state=state, epochs=epochs, batch_size=batch_size, seed=seed,
                     validation_data=(split.x_test, split.y_test), progress=progress)
    seconds = time.perf_counter() - start
    logits, _ = net.apply(result.params, result.model_state, split.x_test)
    predicted = np.asarray(logits).argmax(axis=1)
    h = result.history
    return {
        "test_accuracy": float(np.mean(predicted == split.y_test)),
        "train_accuracy": float(h["accuracy"][-1]),
        "params": int(sum(a.size for a in jax.tree.leaves(result.params))),
        "train_seconds": seconds,
        "curves": {"loss": h["loss"], "accuracy": h["accuracy"], "val_loss": h["val_loss"],
                   "val_accuracy": h["val_accuracy"]},
        "confusion": confusion_matrix(predicted, split.y_test, num_classes),
    }


def classify_to_target(net, split, config) -> dict:
    """:func:`classify` with Adam(config['learning_rate']) and the config's epochs, batch size,
    seed and l2; adds ``target_met`` (test accuracy >= config['target']) and a summary."""
    result = classify(net, split, optimizer=fnn.optim.adam(config["learning_rate"]),
                      epochs=config["epochs"], batch_size=config["batch_size"],
                      seed=config["seed"], l2=config["l2"])
    result["target_met"] = result["test_accuracy"] >= config["target"]
    result["summary"] = (f"test accuracy {100 * result['test_accuracy']:.2f}% (target "
                         f"{100 * config['target']:.0f}%), {result['params']:,} params, "
                         f"{result['train_seconds']:.1f}s")
    return result


def curves_and_confusion(result: dict, path, title: str) -> str:
    """Loss and accuracy per epoch (train and test) beside the test confusion matrix."""
    fig, (ax_loss, ax_acc, ax_conf) = plot.figure(3, size=(4.4, 3.8))
    c = result["curves"]
    plot.loss_curves(ax_loss, {"train": c["loss"], "test": c["val_loss"]}, xlabel="epoch",
                     title=f"{title}: loss")
    plot.loss_curves(ax_acc, {"train": c["accuracy"], "test": c["val_accuracy"]}, xlabel="epoch",
                     ylabel="accuracy", logy=False,
                     title=f"test accuracy {100 * result['test_accuracy']:.2f}%")
    confusion = np.asarray(result["confusion"])
    ax_conf.imshow(confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            ax_conf.text(j, i, str(count), ha="center", va="center", fontsize=7,
                         color="white" if count > confusion.max() / 2 else "black")
    ax_conf.set_xlabel("predicted")
    ax_conf.set_ylabel("true")
    ax_conf.set_xticks(range(len(confusion)))
    ax_conf.set_yticks(range(len(confusion)))
    ax_conf.set_title("test confusion matrix")
    return plot.save(fig, path)
