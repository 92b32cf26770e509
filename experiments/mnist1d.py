"""MNIST-1D (Greydanus 2020): the published benchmark table — logistic regression 32%, MLP 68%,
CNN 94%, GRU 91% test accuracy — reproduced with fnn, using the paper's models and training
setup (Adam, learning rate 1e-2, batch 100, 4000 train / 1000 test examples of length 40).
The GRU row is the model of the ``mnist1d_gru`` experiment."""
from __future__ import annotations

import fnn
from experiments._classify import classify
from fnn import plot
from fnn.data import load_mnist1d

DESCRIPTION = "MNIST-1D: logistic / MLP / CNN / GRU vs the published 32% / 68% / 94% / 91%"
PUBLISHED = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}
CONFIG = {"models": ["logistic", "mlp", "cnn", "gru"], "learning_rate": 1e-2, "batch_size": 100,
          "epochs": 150, "seed": 0}
QUICK = {"epochs": 1}


def model(name: str):
    """The paper's models: a linear classifier; 100-unit MLP whose second layer is residual;
    three stride-2 1-D convolutions with 25 channels and a linear read-out; a bidirectional
    GRU with 6 hidden units over the 40 steps."""
    if name == "logistic":
        return fnn.Dense(10)
    if name == "mlp":
        return fnn.serial(fnn.Dense(100), fnn.relu, fnn.residual(fnn.serial(fnn.Dense(100), fnn.relu)),
                          fnn.Dense(10))
    if name == "cnn":
        return fnn.serial(fnn.Reshape((40, 1)),
                          fnn.Conv1D(25, 5, strides=2, padding=1), fnn.relu,
                          fnn.Conv1D(25, 3, strides=2, padding=1), fnn.relu,
                          fnn.Conv1D(25, 3, strides=2, padding=1), fnn.relu,
                          fnn.Flatten(), fnn.Dense(10))
    if name == "gru":
        from experiments.mnist1d_gru import model as bidirectional_gru
        return bidirectional_gru()
    raise ValueError(f"mnist1d: unknown model {name!r}; expected one of {sorted(PUBLISHED)}")


def run(config):
    split = load_mnist1d()
    rows = {}
    for name in config["models"]:
        r = classify(model(name), split, optimizer=fnn.optim.adam(config["learning_rate"]),
                     epochs=config["epochs"], batch_size=config["batch_size"], seed=config["seed"])
        rows[name] = {"published": PUBLISHED[name], "fnn": r["test_accuracy"],
                      "params": r["params"], "train_seconds": r["train_seconds"],
                      "val_accuracy": r["curves"]["val_accuracy"]}
    summary = "; ".join(f"{k} {100 * v['fnn']:.1f}% (paper {100 * v['published']:.0f}%)"
                        for k, v in rows.items())
    return {"models": rows, "summary": summary}


def figures(results, out_dir):
    fig, (ax_bar, ax_curve) = plot.figure(2, size=(4.8, 3.6))
    rows = results["models"]
    names = list(rows)
    xs = range(len(names))
    ax_bar.bar([x - 0.2 for x in xs], [rows[n]["published"] for n in names], 0.4, label="paper",
               color=plot.COLORS[7])
    ax_bar.bar([x + 0.2 for x in xs], [rows[n]["fnn"] for n in names], 0.4, label="fnn",
               color=plot.COLORS[0])
    ax_bar.set_xticks(list(xs), names)
    ax_bar.set_ylim(0, 1)
    ax_bar.set_ylabel("test accuracy")
    ax_bar.legend(frameon=False)
    ax_bar.set_title("MNIST-1D")
    for i, n in enumerate(names):
        acc = rows[n]["val_accuracy"]
        ax_curve.plot(range(1, len(acc) + 1), acc, color=plot.COLORS[i], label=n)
    plot.decorate(ax_curve, xlabel="epoch", ylabel="test accuracy", integer_x=True)
    return [plot.save(fig, f"{out_dir}/mnist1d.png")]
