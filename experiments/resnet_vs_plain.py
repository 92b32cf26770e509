"""ResNet vs a plain CNN of the same depth (seed 000: "the deeper the network, the more the
gradient vanishes; the skip connections of residual networks relieve it").

Two 20-layer networks (3 stages of 3 basic blocks, BatchNorm) that differ only in the
shortcuts: (1) the gradient norm of every convolution's kernel at initialisation, from the
first layer to the last; (2) test accuracy on the digits after the same training."""
from __future__ import annotations

import jax
import numpy as np

import fnn
from experiments._classify import classify
from fnn import plot
from fnn.data import load_digits

DESCRIPTION = "20-layer ResNet vs plain CNN: gradient norms per layer at init, digits accuracy"
CONFIG = {"blocks_per_stage": 3, "widths": [16, 32, 64], "learning_rate": 1e-3, "epochs": 15,
          "batch_size": 64, "seed": 0, "grad_batch": 256}
QUICK = {"blocks_per_stage": 1, "widths": [4, 8], "epochs": 1, "grad_batch": 32}


def conv_paths(layer, prefix=()):
    """Key paths of every convolution in execution order (shortcut projections excluded)."""
    if layer.children:
        for name, child in layer.children:
            if name != "projection":
                yield from conv_paths(child, prefix + (name,))
    elif layer.name == "conv":
        yield prefix


def grad_norms_at_init(net, x, y, seed: int) -> list[float]:
    """||dL/dW_l|| for every convolution kernel W_l, first layer first (train-mode BatchNorm)."""
    params, state = net.init(jax.random.key(seed), x.shape[1:])

    def loss(p):
        logits, _ = net.apply(p, state, x, train=True)
        return fnn.losses.softmax_cross_entropy(logits, y)

    grads = jax.grad(loss)(params)
    norms = []
    for path in conv_paths(net):
        g = grads
        for key in path:
            g = g[key]
        norms.append(float(np.linalg.norm(np.asarray(g["w"]))))
    return norms


def run(config):
    split = load_digits(flatten=False)
    stages = [config["blocks_per_stage"]] * len(config["widths"])
    nets = {"resnet": fnn.models.ResNet(stages, config["widths"]),
            "plain": fnn.models.PlainNet(stages, config["widths"])}
    x, y = split.x_train[: config["grad_batch"]], split.y_train[: config["grad_batch"]]
    results = {"depth": 2 * sum(stages) + 2}
    for name, net in nets.items():
        norms = grad_norms_at_init(net, x, y, config["seed"])
        trained = classify(net, split, optimizer=fnn.optim.adam(config["learning_rate"]),
                           epochs=config["epochs"], batch_size=config["batch_size"],
                           seed=config["seed"])
        results[name] = {"grad_norms": norms,
                         "first_to_last_grad_ratio": norms[0] / norms[-1],
                         "test_accuracy": trained["test_accuracy"],
                         "val_accuracy": trained["curves"]["val_accuracy"],
                         "loss": trained["curves"]["loss"],
                         "train_seconds": trained["train_seconds"]}
    r, p = results["resnet"], results["plain"]
    results["summary"] = (
        f"depth {results['depth']}: first/last conv gradient norm ratio resnet "
        f"{r['first_to_last_grad_ratio']:.2f} vs plain {p['first_to_last_grad_ratio']:.2f}; "
        f"test accuracy resnet {100 * r['test_accuracy']:.1f}% vs plain {100 * p['test_accuracy']:.1f}%")
    return results


def figures(results, out_dir):
    fig, (ax_grad, ax_loss, ax_acc) = plot.figure(3, size=(4.4, 3.6))
    for i, name in enumerate(("resnet", "plain")):
        r = results[name]
        norms = np.asarray(r["grad_norms"])
        ax_grad.plot(np.arange(1, len(norms) + 1), norms, "o-", ms=3, color=plot.COLORS[i],
                     label=name)
        ax_loss.plot(np.arange(1, len(r["loss"]) + 1), r["loss"], color=plot.COLORS[i], label=name)
        ax_acc.plot(np.arange(1, len(r["val_accuracy"]) + 1), r["val_accuracy"],
                    color=plot.COLORS[i], label=name)
    ax_grad.set_xlabel("convolution (input side first)")
    ax_grad.set_ylabel("||dL/dW|| at init")
    ax_grad.set_title(f"gradient norms, depth {results['depth']}")
    plot.decorate(ax_grad, logy=True, integer_x=True)
    plot.decorate(ax_loss, xlabel="epoch", title="train loss", logy=True, integer_x=True)
    plot.decorate(ax_acc, xlabel="epoch", title="test accuracy", integer_x=True)
    return [plot.save(fig, f"{out_dir}/resnet_vs_plain.png")]
