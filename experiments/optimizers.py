"""Optimizers side by side (seeds 002 and 004): SGD, momentum, Nesterov, Adagrad, RMSProp, Adam
and AdamW on (a) an ill-conditioned quadratic and the Rosenbrock function, drawing each path
over the contours — the "narrow valley oscillation" of seed 002 made visible — and (b) an MLP
on the digits. Every fnn optimizer runs beside optax's optimizer of the same name and
arguments, from the same start; the largest parameter difference between the two is reported.
"""
from __future__ import annotations

import jax
import numpy as np
import optax

import fnn
from fnn import plot
from fnn.data import load_digits
from fnn.optim.compare import Problem, compare, quadratic, rosenbrock

DESCRIPTION = "SGD/momentum/Nesterov/Adagrad/RMSProp/Adam/AdamW paths and curves, fnn vs optax"

# (constructor name, keyword arguments) per optimizer and problem; the same call is made on
# fnn.optim and on optax, which share names, arguments and defaults.
OPTIMIZERS = {
    "quadratic": {"sgd": ("sgd", {"learning_rate": 0.095}),
                  "momentum": ("sgd", {"learning_rate": 0.02, "momentum": 0.9}),
                  "nesterov": ("sgd", {"learning_rate": 0.02, "momentum": 0.9, "nesterov": True}),
                  "adagrad": ("adagrad", {"learning_rate": 1.0}),
                  "rmsprop": ("rmsprop", {"learning_rate": 0.1}),
                  "adam": ("adam", {"learning_rate": 0.3}),
                  "adamw": ("adamw", {"learning_rate": 0.3, "weight_decay": 0.05})},
    "rosenbrock": {"sgd": ("sgd", {"learning_rate": 1e-3}),
                   "momentum": ("sgd", {"learning_rate": 2e-4, "momentum": 0.9}),
                   "nesterov": ("sgd", {"learning_rate": 2e-4, "momentum": 0.9, "nesterov": True}),
                   "adagrad": ("adagrad", {"learning_rate": 0.1}),
                   "rmsprop": ("rmsprop", {"learning_rate": 0.01}),
                   "adam": ("adam", {"learning_rate": 0.05}),
                   "adamw": ("adamw", {"learning_rate": 0.05, "weight_decay": 0.01})},
    "mlp": {"sgd": ("sgd", {"learning_rate": 0.3}),
            "momentum": ("sgd", {"learning_rate": 0.05, "momentum": 0.9}),
            "nesterov": ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
            "adagrad": ("adagrad", {"learning_rate": 0.1}),
            "rmsprop": ("rmsprop", {"learning_rate": 3e-3}),
            "adam": ("adam", {"learning_rate": 3e-3}),
            "adamw": ("adamw", {"learning_rate": 3e-3, "weight_decay": 1e-3})},
}
CONFIG = {"steps": {"quadratic": 100, "rosenbrock": 1000, "mlp": 300}, "condition": 20.0,
          "hidden": 64, "seed": 0}
QUICK = {"steps": {"quadratic": 40, "rosenbrock": 200, "mlp": 40}}


def mlp_problem(hidden: int, seed: int) -> Problem:
    """Full-batch softmax cross-entropy of a 64-hidden-10 ReLU MLP on the digits' train split."""
    digits = load_digits()
    net = fnn.MLP([hidden, 10])
    params, _ = net.init(jax.random.key(seed), (64,))
    x, y = digits.x_train, digits.y_train
    return Problem("mlp", lambda p: fnn.losses.softmax_cross_entropy(net(p, x), y), params)


def problems(config) -> dict[str, Problem]:
    return {"quadratic": quadratic(config["condition"]), "rosenbrock": rosenbrock(),
            "mlp": mlp_problem(config["hidden"], config["seed"])}


def run(config):
    results, worst = {}, 0.0
    # optax's own code relies on standard dtype promotion (fnn runs under either).
    with jax.numpy_dtype_promotion("standard"):
        for pname, problem in problems(config).items():
            optimizers, pairs = {}, []
            for label, (ctor, kwargs) in OPTIMIZERS[pname].items():
                optimizers[f"fnn {label}"] = getattr(fnn.optim, ctor)(**kwargs)
                optimizers[f"optax {label}"] = getattr(optax, ctor)(**kwargs)
                pairs.append((f"fnn {label}", f"optax {label}"))
            c = compare(optimizers, problem, steps=config["steps"][pname], pairs=pairs)
            table = {}
            for label in OPTIMIZERS[pname]:
                diff = float(np.max(c.max_param_diff[f"fnn {label} vs optax {label}"]))
                worst = max(worst, diff)
                table[label] = {
                    "final_loss_fnn": float(c.losses[f"fnn {label}"][-1]),
                    "final_loss_optax": float(c.losses[f"optax {label}"][-1]),
                    "max_param_diff": diff,
                    "us_per_step_fnn": 1e6 * c.seconds_per_step[f"fnn {label}"],
                    "us_per_step_optax": 1e6 * c.seconds_per_step[f"optax {label}"],
                    "loss_fnn": c.losses[f"fnn {label}"],
                    "loss_optax": c.losses[f"optax {label}"],
                }
                if pname != "mlp":
                    table[label]["path"] = c.trajectories[f"fnn {label}"]["xy"]
            results[pname] = table
    best = {p: min(t, key=lambda k: t[k]["final_loss_fnn"]) for p, t in results.items()}
    results["max_param_diff_fnn_vs_optax"] = worst
    results["condition"] = config["condition"]
    results["summary"] = (f"lowest final loss: " + ", ".join(f"{p} {b}" for p, b in best.items())
                          + f"; max |fnn - optax| param difference over all runs: {worst:.1e}")
    return results


def _contours(ax, problem: Problem, xlim, ylim, log: bool):
    gx, gy = np.meshgrid(np.linspace(*xlim, 300), np.linspace(*ylim, 300))
    grid = {"xy": np.stack([gx, gy]).astype(np.float32)}
    z = np.asarray(problem.loss(grid))
    levels = np.logspace(-2, np.log10(z.max()), 20) if log else 20
    ax.contour(gx, gy, z, levels=levels, colors="0.7", linewidths=0.7)


def figures(results, out_dir):
    fig, axes = plot.figure(2, size=(6.0, 4.6))
    limits = {"quadratic": ((-4.5, 1.5), (-2.0, 2.0)), "rosenbrock": ((-2.0, 1.6), (-0.8, 3.2))}
    probs = {"quadratic": quadratic(results.get("condition", 20.0)), "rosenbrock": rosenbrock()}
    for ax, name in zip(axes, ("quadratic", "rosenbrock")):
        xlim, ylim = limits[name]
        _contours(ax, probs[name], xlim, ylim, log=name == "rosenbrock")
        for i, (label, row) in enumerate(results[name].items()):
            path = np.asarray(row["path"])
            ax.plot(path[:, 0], path[:, 1], "-", lw=1.3, ms=2, color=plot.COLORS[i], label=label)
        ax.plot(*((0, 0) if name == "quadratic" else (1, 1)), "k*", ms=12)
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)
        ax.set_title(f"{name}: paths from the same start")
        ax.legend(frameon=False, fontsize=8, loc="upper right")
    paths = plot.save(fig, f"{out_dir}/paths.png")

    fig, ax = plot.figure(1, size=(7.0, 4.6))
    for i, (label, row) in enumerate(results["mlp"].items()):
        color = plot.COLORS[i % len(plot.COLORS)]
        ax.plot(np.asarray(row["loss_fnn"]), color=color, lw=1.8, label=f"{label} (fnn)")
        ax.plot(np.asarray(row["loss_optax"]), color="k", ls=(0, (2, 3)), lw=0.9)
    ax.plot([], [], color="k", ls=(0, (2, 3)), lw=0.9, label="optax (same settings)")
    plot.decorate(ax, xlabel="step", ylabel="train loss", logy=True, legend_size=8,
                  title="digits MLP, full batch: fnn curves with optax's overlaid")
    return [paths, plot.save(fig, f"{out_dir}/mlp_loss.png")]
