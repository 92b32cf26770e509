"""The TensorFlow Playground's data sets (seed 002): circle, xor, gaussian, spiral and moons, each
learned by networks of growing depth (0 hidden layers = logistic regression, then 1, 2, 3
hidden tanh layers of 8 units), in one grid of decision regions.

A linear classifier can only cut the plane with one line; one hidden layer combines
half-planes (the notes' AND: convex regions); a second one combines those regions (the
notes' OR), so deeper nets draw more complex shapes - the spiral needs them.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from experiments._helpers import stack
from experiments._training import trainer
from fnn.app.claims import check, claim, describe_checks, verdict
from fnn import plot
from fnn.data import fit_standardize, playground

DESCRIPTION = "circle/xor/gaussian/spiral/moons: decision regions of 0-3 hidden layers, one grid"

CONFIG = {"datasets": ["circle", "xor", "gaussian", "spiral", "moons"], "depths": [0, 1, 2, 3],
          "width": 8, "n": 300, "noise": 0.05, "steps": 1500, "learning_rate": 0.03,
          "seed": 0, "resolution": 150}
QUICK = {"depths": [0, 2], "steps": 150, "n": 200, "resolution": 60}

CLAIM = claim(
    "加了一层就可以求and，就可以把一块区域抠出来，得到开的凸区域或者封闭的凸区域。如果再加一层，可以在他的基础上or，"
    "刚才抠出来的区域就可以用or组起来，所以你任意的空间的形状都可以去通过增加神经元的方式，把抠出来的区域再重新并在一起。",
    "Adding a layer lets the network compute an AND, cutting out a region - an open or closed "
    "convex region. Adding another layer lets it OR those regions together, so any shape in "
    "the space can be built by adding neurons and joining the cut-out regions again.",
    "seed 002, 对线性分类器的 与 或 的组合")


def network(depth: int, width: int):
    return fnn.MLP([*([width] * depth), 2], activation="tanh")


def _sets(config):
    """Standardised train and test samples of every data set (the test set is a fresh draw)."""
    train, test = [], []
    for name in config["datasets"]:
        x, y = playground(name, n=config["n"], noise=config["noise"], seed=config["seed"])
        xt, yt = playground(name, n=config["n"], noise=config["noise"], seed=config["seed"] + 1)
        scaler = fit_standardize(x)
        train.append((np.asarray(scaler(x), np.float32), y))
        test.append((np.asarray(scaler(xt), np.float32), yt))
    return train, test


def train_depth(depth: int, config, train, test):
    """Every data set at once for one depth (one compiled, vmapped run)."""
    net = network(depth, config["width"])
    rows = [net.init(jax.random.key(config["seed"]), (2,)) for _ in train]
    params, state = stack(rows)
    fit = trainer(fnn.supervised(net), lambda lr: fnn.optim.adam(lr), n=config["n"],
                  batch_size=None, epochs=config["steps"])
    xs, ys = np.stack([t[0] for t in train]), np.stack([t[1] for t in train])
    xt, yt = np.stack([t[0] for t in test]), np.stack([t[1] for t in test])

    @jax.jit
    def run(params, state, xs, ys, xt, yt):
        params, _, losses = jax.vmap(fit, in_axes=(0, 0, (0, 0), None, None))(
            params, state, (xs, ys), config["learning_rate"], jax.random.key(0))
        acc = lambda p, x, y: jnp.mean((jnp.argmax(net(p, x), axis=-1) == y).astype(jnp.float32))
        return params, losses[..., 0], jax.vmap(acc)(params, xs, ys), jax.vmap(acc)(params, xt, yt)

    params, losses, train_acc, test_acc = jax.device_get(run(params, state, xs, ys, xt, yt))
    return net, params, np.asarray(losses, np.float64), train_acc, test_acc


def run(config):
    train, test = _sets(config)
    names = config["datasets"]
    table = {name: {} for name in names}
    figure_data = {"train": {n: t for n, t in zip(names, train)}, "params": {},
                   "width": config["width"], "resolution": config["resolution"]}
    for depth in config["depths"]:
        net, params, losses, train_acc, test_acc = train_depth(depth, config, train, test)
        for i, name in enumerate(names):
            p = jax.tree.map(lambda a: a[i], params)
            table[name][str(depth)] = {"train_accuracy": float(train_acc[i]),
                                       "test_accuracy": float(test_acc[i]),
                                       "final_loss": float(losses[i, -1]),
                                       "params": int(sum(np.size(a) for a in jax.tree.leaves(p)))}
            figure_data["params"][f"{name} {depth}"] = p

    acc = lambda name, depth: table[name].get(str(depth), {}).get("test_accuracy", np.nan)
    deep = [d for d in config["depths"] if d >= 1]
    checks = []
    if 0 in config["depths"]:
        for name in ("circle", "xor", "spiral"):
            if name in names:
                checks.append(check(f"{name}: test accuracy with no hidden layer (one line cannot "
                                    f"separate it)", acc(name, 0), "<", 0.75))
        if "gaussian" in names:
            checks.append(check("gaussian: test accuracy with no hidden layer (linearly "
                                "separable)", acc("gaussian", 0), ">=", 0.95))
    for name in ("circle", "xor", "moons"):
        if name in names and deep:
            checks.append(check(f"{name}: best test accuracy with hidden layers",
                                max(acc(name, d) for d in deep), ">=", 0.95))
    if "spiral" in names and 1 in config["depths"] and any(d >= 2 for d in config["depths"]):
        checks.append(check("spiral: best test accuracy with >= 2 hidden layers - with 1 (the "
                            "second layer's OR of regions)",
                            max(acc("spiral", d) for d in config["depths"] if d >= 2)
                            - acc("spiral", 1), ">", 0.0))
    result = {"claim": CLAIM, **verdict(checks), "table": table, "depths": config["depths"],
              "_figure_data": figure_data}
    result["summary"] = (f"test accuracy by hidden layers {config['depths']}: " + "; ".join(
        f"{name} " + "/".join(f"{100 * acc(name, d):.0f}" for d in config["depths"])
        for name in names) + " %")
    result["checks_text"] = describe_checks(checks)
    return result


def figures(results, out_dir):
    data = results["_figure_data"]
    names = list(results["table"])
    depths = results["depths"]
    fig, axes = plot.figure(len(depths), len(names), size=(2.6, 2.5))
    axes = np.asarray(axes).reshape(len(names), len(depths))
    for r, name in enumerate(names):
        x, y = (np.asarray(a) for a in data["train"][name])
        for c, depth in enumerate(depths):
            ax = axes[r, c]
            net = network(depth, data["width"])
            params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32),
                                  data["params"][f"{name} {depth}"])
            predict = lambda grid: np.asarray(net(params, grid.astype(np.float32))).argmax(axis=1)
            row = results["table"][name][str(depth)]
            plot.decision_regions(ax, predict, x, y, num_classes=2,
                                  resolution=data["resolution"],
                                  title=f"{row['test_accuracy'] * 100:.0f}% test")
            ax.collections[-1].set_sizes([7])           # smaller points for 300-point sets
            ax.collections[-1].set_linewidths([0.2])
            ax.title.set_fontsize(8)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.annotate(f"{depth} hidden layer{'s' if depth != 1 else ''}", (0.5, 1.25),
                            xycoords="axes fraction", ha="center", fontsize=9, weight="bold")
            if c == 0:
                ax.set_ylabel(name, fontsize=10, weight="bold")
    fig.suptitle("decision regions (training points shown) by depth", fontsize=11)
    return [plot.save(fig, f"{out_dir}/playground.png", dpi=100)]
