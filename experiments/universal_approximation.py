"""One hidden layer can fit any function, given enough units (seeds 000 and 002): a single tanh
hidden layer of growing width fitted to sin, a step and |x| on [-1, 1] - the error against the
width - and, as seed 000 warns (f(x) = rand(x) would need infinitely many units), to a random
function: pure noise, fitted only when there are about as many units as points.
"""
from __future__ import annotations

import jax
import numpy as np

import fnn
from experiments._helpers import stack
from experiments._training import trainer
from fnn.app.claims import check, claim, describe_checks, verdict
from fnn import plot

DESCRIPTION = "one tanh hidden layer of growing width fitting sin / step / |x| / rand"

CONFIG = {"widths": [1, 2, 4, 8, 16, 32, 64, 128, 256], "points": 256, "test_points": 1001,
          "steps": 3000, "learning_rate": 3e-2, "seeds": 2, "enough": 16,
          "functions": ["sin", "step", "abs", "rand"]}
QUICK = {"widths": [1, 64], "steps": 300, "seeds": 1}

CLAIM = claim(
    "实际上保证足够多的单元数目的话，单隐层网络可以拟合任意函数的，这个是有证明的。（seed 000：一层的神经网络是理论上"
    "已经被证明能够表示任何函数……但是隐藏层的节点数是无法确定的，考虑函数 f(x)=rand(x)，这里隐藏层的节点数是∞，"
    "所以理论上能表示，并不代表你能在有限的时间内实现。）",
    "In fact, with enough units a single-hidden-layer network can fit any function; this has "
    "been proved. (Seed 000: a one-layer network is proved to represent any function ... but "
    "the number of hidden nodes cannot be determined; for f(x) = rand(x) it is infinite, so "
    "being representable in theory does not mean you can achieve it in finite time.)",
    "seed 002, 浅层的神经网络 / 层次与单层神经元个数多少才合适; seed 000, Why do we need multiple layers?")


def target(name: str, x, seed: int = 0):
    """The functions on [-1, 1]; 'rand' is i.i.d. uniform noise on the training points (its
    'test' points are the training points themselves: noise has nothing to interpolate)."""
    if name == "sin":
        return np.sin(2 * np.pi * x)
    if name == "step":
        return np.where(x > 0, 1.0, 0.0) - 0.5
    if name == "abs":
        return np.abs(x) - 0.5
    if name == "rand":
        return np.random.default_rng(seed).uniform(-1, 1, x.shape)
    raise ValueError(f"unknown function {name!r}; expected sin, step, abs or rand")


def fit_width(width: int, config, x, ys) -> np.ndarray:
    """Train ``1 -> width tanh -> 1`` on every target and seed at once; the trained params."""
    net = fnn.MLP([width, 1], activation="tanh")
    seeds = config["seeds"]
    rows = [net.init(jax.random.key(s), (1,)) for _ in ys for s in range(seeds)]
    params, state = stack(rows)
    y = np.repeat(np.asarray(ys, np.float32), seeds, axis=0)[..., None]     # (rows, n, 1)
    train = trainer(fnn.supervised(net, fnn.losses.mse), lambda lr: fnn.optim.adam(lr),
                    n=len(x), batch_size=None, epochs=config["steps"])

    @jax.jit
    def run(params, state, x, y):
        return jax.vmap(train, in_axes=(0, 0, (None, 0), None, None))(
            params, state, (x, y), config["learning_rate"], jax.random.key(0))

    params, _, losses = run(params, state, x[:, None].astype(np.float32), y)
    return net, params, np.asarray(losses, np.float64)[..., 0]                # (rows, steps)


def run(config):
    x = np.linspace(-1, 1, config["points"])
    x_test = np.linspace(-1, 1, config["test_points"])
    names = config["functions"]
    ys = [target(f, x) for f in names]
    seeds = config["seeds"]
    errors = {f: [] for f in names}
    fits = {f: {} for f in names}
    shown = [w for w in config["widths"] if w in (1, 4, 16, 256)] or config["widths"]
    for width in config["widths"]:
        net, params, losses = fit_width(width, config, x, ys)
        for i, f in enumerate(names):
            xe, ye = (x, ys[i]) if f == "rand" else (x_test, target(f, x_test))
            rows = range(i * seeds, (i + 1) * seeds)
            pred = [np.asarray(net(jax.tree.map(lambda a: a[r], params),
                                   xe[:, None].astype(np.float32)))[:, 0] for r in rows]
            mse = [float(np.mean((p - ye) ** 2)) for p in pred]
            errors[f].append(float(np.min(mse)))  # the best of the seeds: what the width can do
            if width in shown:  # for the figure, every 5th point is plenty
                fits[f][str(width)] = pred[int(np.argmin(mse))][:: 1 if f == "rand" else 5]
    widths = np.asarray(config["widths"])
    enough = widths >= config["enough"]
    variance = {f: float(np.var(ys[i] if f == "rand" else target(f, x_test)))
                for i, f in enumerate(names)}
    fvu = {f: [e / variance[f] for e in errors[f]] for f in names}  # 1 - R^2
    checks = []
    for f in names:
        if f == "rand" or not enough.any():
            continue
        best = float(np.min(np.asarray(fvu[f])[enough]))
        checks.append(check(f"{f}: best error with >= {config['enough']} units, as a fraction of "
                            f"the target's variance (1 - R^2)", best, "<=", 0.01))
    if "sin" in names and enough.any():
        e = np.asarray(errors["sin"])
        checks.append(check(f"sin: error with {widths[0]} unit(s) / best error with >= "
                            f"{config['enough']} units (too few units cannot)",
                            e[0] / max(e[enough].min(), 1e-30), ">=", 100.0))
    if "rand" in names:
        checks.append(check("rand(x): best error at any width as a fraction of its variance "
                            "(seed 000: representable is not reachable in finite time)",
                            float(np.min(fvu["rand"])), ">=", 0.5))
    result = {"claim": CLAIM, **verdict(checks), "widths": config["widths"],
              "test_mse": errors, "fraction_of_variance_unexplained": fvu,
              "_figure_data": {"x": x, "x_test": x_test[::5], "fits": fits,
                               "targets": {f: ys[i] for i, f in enumerate(names)}}}
    result["summary"] = "test MSE from width {} to {}: ".format(
        config["widths"][0], config["widths"][-1]) + ", ".join(
        f"{f} {errors[f][0]:.2g} -> {errors[f][-1]:.2g}" for f in names)
    result["checks_text"] = describe_checks(checks)
    return result


def figures(results, out_dir):
    paths = []
    widths = results["widths"]
    data = results["_figure_data"]
    names = list(results["test_mse"])
    fig, ax = plot.figure(1, size=(6.0, 4.2))
    for k, f in enumerate(names):
        ax.plot(widths, results["test_mse"][f], "o-", color=plot.COLORS[k],
                label=f + (" (training points: noise)" if f == "rand" else ""))
    plot.log_scale(ax, "x", base=2)
    plot.log_scale(ax, "y")
    ax.set_xlabel("hidden units (one tanh layer)")
    ax.set_ylabel("mean squared error (best of seeds)")
    ax.set_title("error vs width")
    ax.grid(alpha=0.3)
    ax.legend(frameon=True, framealpha=0.85, fontsize=8, loc="lower left")
    paths.append(plot.save(fig, f"{out_dir}/error_vs_width.png"))

    fig, axes = plot.figure(len(names), size=(3.6, 3.0))
    axes = np.atleast_1d(axes)
    x, x_test = np.asarray(data["x"]), np.asarray(data["x_test"])
    for ax, f in zip(axes, names):
        xs = x if f == "rand" else x_test
        truth = np.asarray(data["targets"][f]) if f == "rand" else target(f, x_test)
        ax.plot(xs, truth, color="0.6", lw=3 if f != "rand" else 0.8, label="target")
        for k, (w, fit) in enumerate(data["fits"][f].items()):
            ax.plot(xs, np.asarray(fit), color=plot.COLORS[(k + 1) % 8], lw=1.2,
                    label=f"{w} unit{'s' if w != '1' else ''}")
        ax.set_title(f)
        ax.legend(frameon=True, framealpha=0.8, fontsize=6)
    fig.suptitle("fits of one hidden layer of growing width", fontsize=10)
    paths.append(plot.save(fig, f"{out_dir}/fits.png"))
    return paths
