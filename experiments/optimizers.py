"""Optimizers side by side (seeds 002 and 004): SGD, momentum, Nesterov, Adagrad, RMSProp, Adam
and AdamW on (a) an ill-conditioned quadratic and the Rosenbrock function, drawing each path
over the contours — the "narrow valley oscillation" of seed 002 made visible — and (b) an MLP
on the digits. Every fnn optimizer runs beside optax's optimizer of the same name and
arguments, from the same start; the largest parameter difference between the two is reported.

(c) Learning-rate curves over seeds on the same digits MLP, with minibatches: every optimizer x
a log grid of rates x seeds (each seed its own initialisation and shuffles) in one
``fnn.sweep``, the final training loss and test accuracy per rate as a median with a min-max
band; diverged runs are counted, not averaged.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn
from experiments import _lr_curves
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
          "hidden": 64, "seed": 0,
          # (c): learning rate x seed x optimizer, minibatches (the other arguments as in "mlp")
          "lr_optimizers": list(OPTIMIZERS["mlp"]),
          "lr_grid": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0],
          "lr_seeds": 5, "lr_epochs": 10, "lr_batch_size": 64}
QUICK = {"steps": {"quadratic": 40, "rosenbrock": 200, "mlp": 40},
         "lr_optimizers": ["sgd", "momentum", "adam"], "lr_grid": [1e-3, 1e-2, 0.1, 1.0],
         "lr_seeds": 2, "lr_epochs": 2}


def mlp_problem(hidden: int, seed: int) -> Problem:
    """Full-batch softmax cross-entropy of a 64-hidden-10 ReLU MLP on the digits' train split."""
    digits = load_digits()
    net = fnn.MLP([hidden, 10])
    params, _ = net.init(jax.random.key(seed), (64,))
    x, y = digits.x_train, digits.y_train
    return Problem("mlp", lambda p: fnn.losses.softmax_cross_entropy(net(p, x), y), params)


def one_of(factories: list):
    """``make(learning_rate, which) -> factories[which](learning_rate)`` as one optimizer, so
    that runs of different optimizers share one ``fnn.sweep`` (one compilation).

    Its state holds every factory's state; ``update`` is a ``lax.switch`` on ``which`` that
    updates only the chosen one. Under ``vmap`` with a per-run ``which`` the switch becomes a
    select: each step computes every optimizer's update and keeps the run's own, so a run's
    numbers are the chosen optimizer's (up to rounding) at the price of computing all of them.
    """

    def make(learning_rate, which):
        optimizers = [f(learning_rate) for f in factories]

        def init(params):
            return tuple(o.init(params) for o in optimizers)

        def branch(k):
            def update(grads, state, params):
                updates, new = optimizers[k].update(grads, state[k], params)
                return updates, (*state[:k], new, *state[k + 1:])
            return update

        def update(grads, state, params=None):
            return jax.lax.switch(which, [branch(k) for k in range(len(optimizers))], grads,
                                  state, params)

        return fnn.optim.GradientTransformation(init, update)

    return make


def lr_factory(name: str):
    """``learning_rate -> optimizer`` for ``OPTIMIZERS['mlp'][name]`` (its other arguments)."""
    ctor, kwargs = OPTIMIZERS["mlp"][name]
    rest = {k: v for k, v in kwargs.items() if k != "learning_rate"}
    return lambda learning_rate: getattr(fnn.optim, ctor)(learning_rate, **rest)


def lr_sensitivity(config) -> dict:
    """(c): one ``fnn.sweep`` over optimizers x ``lr_grid`` x ``lr_seeds`` on the digits MLP
    (minibatches of ``lr_batch_size``, ``lr_epochs`` epochs); per optimizer and rate the final
    training loss (whole train split) and test accuracy over seeds. A run diverged if its final
    loss is non-finite or not below its initial loss."""
    digits = load_digits()
    net = fnn.MLP([config["hidden"], 10])
    objective = fnn.supervised(net)
    init = lambda key: net.init(key, (64,))[0]
    names, lrs, n_seeds = config["lr_optimizers"], config["lr_grid"], config["lr_seeds"]
    lr_runs, seed_runs = _lr_curves.grid(lrs, n_seeds, config["seed"])
    which = np.repeat(np.arange(len(names), dtype=np.int32), lr_runs.size)
    start = time.perf_counter()
    res = fnn.sweep(objective, init, one_of([lr_factory(n) for n in names]),
                    (digits.x_train, digits.y_train), seeds=np.tile(seed_runs, len(names)),
                    hparams={"learning_rate": np.tile(lr_runs, len(names)), "which": which},
                    epochs=config["lr_epochs"], batch_size=config["lr_batch_size"])

    @jax.jit
    def evaluate(params):
        def one(p):
            loss = fnn.losses.softmax_cross_entropy(net(p, digits.x_train), digits.y_train)
            correct = jnp.argmax(net(p, digits.x_test), axis=-1) == digits.y_test
            return loss, jnp.mean(correct.astype(jnp.float32))
        return jax.vmap(one)(params)

    seeds = seed_runs[:n_seeds]
    initial = [fnn.losses.softmax_cross_entropy(net(init(jax.random.key(int(s))), digits.x_train),
                                                digits.y_train) for s in seeds]  # eager: no compile
    train_loss, test_acc = jax.device_get(evaluate(res.params))
    seconds = time.perf_counter() - start
    shape = (len(names), len(lrs), n_seeds)
    train_loss = np.asarray(train_loss, np.float64).reshape(shape)
    test_acc = np.asarray(test_acc, np.float64).reshape(shape)
    initial = np.asarray(initial, np.float64)
    table = {}
    for k, name in enumerate(names):
        diverged = ~np.isfinite(train_loss[k]) | (train_loss[k] >= initial[None])
        loss_rows = _lr_curves.band(train_loss[k], diverged)
        acc_rows = [{key: r[key] for key in ("median", "min", "max", "values")}
                    for r in _lr_curves.band(test_acc[k])]
        b = _lr_curves.best(loss_rows)
        table[name] = {
            "settings": {key: v for key, v in OPTIMIZERS["mlp"][name][1].items()
                         if key != "learning_rate"},
            "best_learning_rate": None if b is None else lrs[b],
            "best_median_train_loss": None if b is None else loss_rows[b]["median"],
            "best_median_test_accuracy": None if b is None else acc_rows[b]["median"],
            "by_learning_rate": {f"{lr:g}": {"learning_rate": lr, "train_loss": lr_row,
                                             "test_accuracy": acc_row}
                                 for lr, lr_row, acc_row in zip(lrs, loss_rows, acc_rows)},
        }
    return {"learning_rates": list(lrs), "seeds": [int(s) for s in seeds],
            "epochs": config["lr_epochs"], "batch_size": config["lr_batch_size"],
            "runs": int(which.size), "seconds": seconds,
            "initial_loss": initial, "optimizers": table}


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
    results["lr_sensitivity"] = sens = lr_sensitivity(config)
    results["summary"] = (
        f"lowest final loss: " + ", ".join(f"{p} {b}" for p, b in best.items())
        + f"; max |fnn - optax| param difference over all runs: {worst:.1e}"
        + f"; best learning rate (median over {len(sens['seeds'])} seeds, {sens['runs']} runs in "
        f"one fnn.sweep, {sens['epochs']} epochs of batches of {sens['batch_size']}): "
        + ", ".join(f"{name} {t['best_learning_rate']:g} ({t['best_median_test_accuracy']:.1%})"
                    if t["best_learning_rate"] is not None else f"{name} none"
                    for name, t in sens["optimizers"].items()))
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
    paths = [paths, plot.save(fig, f"{out_dir}/mlp_loss.png")]

    sens = results["lr_sensitivity"]
    fig, (ax_loss, ax_acc) = plot.figure(2, size=(5.6, 4.2))
    clip = 10 * max(v for v in np.asarray(sens["initial_loss"], np.float64).ravel())
    colors = {name: plot.COLORS[i % len(plot.COLORS)] for i, name in enumerate(OPTIMIZERS["mlp"])}
    for name, t in sens["optimizers"].items():
        rows = list(t["by_learning_rate"].values())
        lrs = [r["learning_rate"] for r in rows]
        _lr_curves.draw(ax_loss, lrs, [r["train_loss"] for r in rows], color=colors[name],
                        label=name, clip=clip, counts=False)
        _lr_curves.draw(ax_acc, lrs, [r["test_accuracy"] for r in rows], color=colors[name],
                        label=name, diverged_marker=False)
    ax_loss.plot([], [], "x", color="k", label="run not below its initial loss")
    what = (f"{len(sens['seeds'])} seeds, {sens['epochs']} epochs, batch {sens['batch_size']}; "
            f"band: min-max")
    for ax in (ax_loss, ax_acc):
        plot.log_scale(ax, "x")
    plot.decorate(ax_loss, xlabel="learning rate", ylabel=f"final train loss (clipped at "
                  f"{clip:.2g})", logy=True, legend_size=7, title=f"digits MLP: {what}")
    plot.decorate(ax_acc, xlabel="learning rate", ylabel="test accuracy", legend_size=7,
                  title="test accuracy: median over seeds, band min-max")
    paths.append(plot.save(fig, f"{out_dir}/lr_sensitivity.png"))
    return paths
