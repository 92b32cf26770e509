"""Depth or width? (seed 002): one hidden layer of 1000 units against two of 100 on the digits,
then a grid of depths at roughly equal parameter budgets (the width of each depth solved for
the budget). Every architecture is trained with the same Adam settings from several seeds;
the table gives test accuracy (mean and spread over seeds) and parameter counts.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from experiments._helpers import stack_init
from experiments._training import trainer
from fnn.app.claims import check, claim, describe_checks, verdict
from fnn import plot
from fnn.data import load_digits

DESCRIPTION = "1 x 1000 vs 2 x 100 hidden units; depth x width at equal parameter budgets"

CONFIG = {"pair": [[1000], [100, 100]], "depths": [1, 2, 3, 4, 6], "budgets": [10000, 40000],
          "epochs": 40, "batch_size": 64, "learning_rate": 1e-3, "seeds": 5}
QUICK = {"pair": [[200], [40, 40]], "depths": [], "budgets": [], "epochs": 3, "seeds": 2}

CLAIM = claim(
    "虽然从数学上看表达能力一致，但是多隐藏层的神经网络比单隐藏层的神经网络工程效果好很多。比如1000个节点的单隐层效果"
    "不如2层的100个节点的。",
    "Although mathematically their expressive power is the same, networks with several hidden "
    "layers work much better in practice than networks with one: for example, a single hidden "
    "layer of 1000 nodes does worse than two layers of 100 nodes.",
    "seed 002, 层次与单层神经元个数多少才合适？")


def mlp_params(n_in: int, hidden, n_out: int = 10) -> int:
    sizes = [n_in, *hidden, n_out]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def width_for(depth: int, budget: int, n_in: int = 64, n_out: int = 10) -> int:
    """The width w whose ``depth`` x w MLP has the parameter count closest to ``budget``."""
    best = min(range(1, 4096), key=lambda w: abs(mlp_params(n_in, [w] * depth, n_out) - budget))
    return int(best)


def train_architecture(hidden, config, digits) -> dict:
    """Train ``hidden`` from every seed at once (one compiled, vmapped run); test accuracy."""
    net = fnn.MLP([*hidden, 10])
    seeds = config["seeds"]
    params, state = stack_init(net, jax.random.split(jax.random.key(0), seeds), (64,))
    train = trainer(fnn.supervised(net), lambda lr: fnn.optim.adam(lr), n=len(digits.y_train),
                    batch_size=config["batch_size"], epochs=config["epochs"])

    @jax.jit
    def run(params, state, keys, d):  # the data as arguments, not as compiled-in constants
        params, state, losses = jax.vmap(train, in_axes=(0, 0, None, None, 0))(
            params, state, (d.x_train, d.y_train), config["learning_rate"], keys)
        acc = lambda x, y: jnp.mean((jnp.argmax(jax.vmap(lambda p: net(p, x))(params), axis=-1)
                                     == y[None]).astype(jnp.float32), axis=1)
        return losses, acc(d.x_test, d.y_test), acc(d.x_train, d.y_train)

    losses, test_acc, train_acc = jax.device_get(
        run(params, state, jax.random.split(jax.random.key(1), seeds), digits))
    test_acc = np.asarray(test_acc, np.float64)
    return {"hidden": list(hidden), "params": mlp_params(64, hidden),
            "test_accuracy": float(test_acc.mean()),
            "test_accuracy_std": float(test_acc.std(ddof=1)) if seeds > 1 else 0.0,
            "test_accuracy_per_seed": test_acc,
            "train_accuracy": float(np.mean(train_acc)),
            "curve": np.asarray(losses, np.float64).mean(axis=(0, 2))}


def run(config):
    digits = load_digits()
    pair = [train_architecture(h, config, digits) for h in config["pair"]]
    grid = {}
    for budget in config["budgets"]:
        grid[str(budget)] = [train_architecture([width_for(d, budget)] * d, config, digits)
                             for d in config["depths"]]
    wide, deep = pair
    diff = deep["test_accuracy"] - wide["test_accuracy"]
    se = math.sqrt((wide["test_accuracy_std"] ** 2 + deep["test_accuracy_std"] ** 2)
                   / config["seeds"])
    name = lambda h: " x ".join(map(str, [len(h["hidden"]), h["hidden"][0]])) \
        if len(set(h["hidden"])) == 1 else str(h["hidden"])
    checks = [check(f"mean test accuracy, {name(deep)} - {name(wide)}, in standard errors of "
                    f"the difference over {config['seeds']} seeds", diff / se if se > 0 else
                    (np.inf if diff > 0 else -np.inf if diff < 0 else 0.0), ">", 2.0)]
    best_depth = {}
    for budget, rows in grid.items():
        best = max(rows, key=lambda r: r["test_accuracy"])
        best_depth[budget] = len(best["hidden"])
        checks.append(check(f"budget ~{int(budget):,} params: depth of the most accurate "
                            f"architecture", best_depth[budget], ">=", 2))
    result = {"claim": CLAIM, **verdict(checks),
              "pair": {name(r): r for r in pair},
              "difference_deep_minus_wide": diff, "standard_error": se,
              "grid": grid, "best_depth_per_budget": best_depth,
              "table": {f"{len(r['hidden'])} x {r['hidden'][0]}": {
                  "params": r["params"], "test_accuracy": r["test_accuracy"],
                  "std": r["test_accuracy_std"]} for r in pair + [r for rows in grid.values()
                                                                   for r in rows]}}
    result["summary"] = (
        f"{name(wide)} ({wide['params']:,} params): {100 * wide['test_accuracy']:.2f} +- "
        f"{100 * wide['test_accuracy_std']:.2f}%; {name(deep)} ({deep['params']:,} params): "
        f"{100 * deep['test_accuracy']:.2f} +- {100 * deep['test_accuracy_std']:.2f}% "
        f"(difference {100 * diff:+.2f} pts, {diff / se if se else float('nan'):+.1f} SE)"
        + "".join(f"; ~{int(b):,} params: best depth {d}" for b, d in best_depth.items()))
    result["checks_text"] = describe_checks(checks)
    return result


def figures(results, out_dir):
    paths = []
    grid = results["grid"]
    fig, axes = plot.figure(2 if grid else 1, size=(5.2, 4.0))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    pair = results["pair"]
    for k, (label, r) in enumerate(pair.items()):
        accs = 100 * np.asarray(r["test_accuracy_per_seed"], np.float64)
        ax.bar(k, accs.mean(), yerr=accs.std(ddof=1) if len(accs) > 1 else 0, capsize=6,
               color=plot.COLORS[k], alpha=0.8)
        ax.plot(np.full(len(accs), k), accs, "k.", ms=6)
    ax.set_xticks(range(len(pair)),
                  [f"{label}\n{r['params']:,} params" for label, r in pair.items()])
    low = min(100 * min(r["test_accuracy_per_seed"]) for r in pair.values())
    ax.set_ylim(low - 2, 100)
    ax.set_ylabel("test accuracy % (dots: seeds)")
    ax.set_title("one wide layer vs two narrow ones")
    ax.grid(alpha=0.3, axis="y")
    if grid:
        ax = axes[1]
        for k, (budget, rows) in enumerate(grid.items()):
            depths = [len(r["hidden"]) for r in rows]
            acc = [100 * r["test_accuracy"] for r in rows]
            err = [100 * r["test_accuracy_std"] for r in rows]
            ax.errorbar(depths, acc, yerr=err, marker="o", capsize=4, color=plot.COLORS[k],
                        label=f"~{int(budget):,} params")
            for d, a, r in zip(depths, acc, rows):
                ax.annotate(f"w={r['hidden'][0]}", (d, a), textcoords="offset points",
                            xytext=(4, -12 if k else 6), fontsize=7, color=plot.COLORS[k])
        plot.decorate(ax, xlabel="hidden layers (width solved for the budget)",
                      ylabel="test accuracy % (mean +- std over seeds)",
                      title="depth x width at equal parameter budgets")
    paths.append(plot.save(fig, f"{out_dir}/depth_vs_width.png"))
    return paths
