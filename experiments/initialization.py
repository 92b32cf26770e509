"""Weight initialisation (seed 002): zeros, 0.001*randn, randn/sqrt(n) (LeCun, fan-in), Xavier and
He, in a deep tanh and a deep ReLU network.

* At initialisation: the mean and standard deviation of every layer's activations (the
  digits as input). 0.001*randn makes them collapse towards 0 layer after layer; fan-in
  scaling keeps the variance roughly constant for tanh, He's factor 2 does so for ReLU.
* Training curves of each initialisation (same net, same SGD, digits).
* Symmetry: with zeros (and with any constant) every hidden unit of a layer computes the same
  thing and gets the same gradient, so after training all its units are still identical.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from experiments._choice import Choice, choose
from experiments._helpers import stack
from experiments._training import trainer
from fnn.app.claims import check, claim, describe_checks, verdict
from fnn import initializers, plot
from fnn.data import fit_standardize, load_digits

DESCRIPTION = "zeros / 0.001*randn / randn/sqrt(n) / Xavier / He: activations, curves, symmetry"

CONFIG = {"inits": ["zeros", "small", "lecun", "xavier", "he", "constant"],
          "activations": ["tanh", "relu"], "stats_depth": 10, "stats_width": 256,
          "train_depth": 5, "train_width": 64, "epochs": 30, "batch_size": 64,
          "learning_rate": 0.01, "momentum": 0.9, "seeds": 2, "constant": 0.05}
QUICK = {"stats_depth": 6, "stats_width": 64, "train_depth": 3, "train_width": 32, "epochs": 4,
         "seeds": 1}

LABELS = {"zeros": "zeros", "small": "0.001*randn", "lecun": "randn/sqrt(n) (LeCun)",
          "xavier": "Xavier (Glorot)", "he": "He (Kaiming)", "constant": "constant"}
ACTIVATIONS = {"tanh": fnn.tanh, "relu": fnn.relu}

CLAIM = claim(
    "利⽤用随机分布初始化W，来消除对称性，因为对称的网络每个神经元将学习到相同的权重……采用小的数值：0.001 * "
    "randn(D, H)……根据 Fan-in 的大小计算：w = randn(n) / sqrt(n) 就是使每一层的Var基本不变。",
    "Initialise W from a random distribution to break the symmetry: in a symmetric network every "
    "neuron learns the same weights. ... Small values: 0.001 * randn(D, H). ... Scaled by the "
    "fan-in: w = randn(n) / sqrt(n), which keeps the variance of every layer roughly unchanged.",
    "seed 002, 权重 W 的初始化")


def initializer(name: str, constant: float = 0.05):
    return {"zeros": initializers.zeros, "small": initializers.small_random(0.001),
            "lecun": initializers.lecun_normal(), "xavier": initializers.glorot_normal(),
            "he": initializers.he_normal(), "constant": initializers.constant(constant)}[name]


def network(depth: int, width: int, init, activation=None, classes: int = 10):
    """``depth`` hidden Dense layers of ``width`` with ``init`` weights (zero biases). The
    activation is ``activation`` or, when None, a ``Choice`` of tanh / ReLU picked by state."""
    act = activation if activation is not None else Choice(ACTIVATIONS)
    layers = []
    for _ in range(depth):
        layers += [fnn.Dense(width, w_init=init), act]
    return fnn.serial(*layers, fnn.Dense(classes, w_init=init))


def activation_stats(config, x) -> dict:
    """Mean and std of each hidden layer's output at init, for every (activation, init)."""
    depth, width = config["stats_depth"], config["stats_width"]
    out = {}
    for act_name, act in ACTIVATIONS.items():
        if act_name not in config["activations"]:
            continue
        out[act_name] = {}
        for init in config["inits"]:
            if init == "constant":  # only in the training / symmetry part
                continue
            net = network(depth, width, initializer(init, config["constant"]), act)
            params, _ = net.init(jax.random.key(0), x.shape[1:])
            h, means, stds = jnp.asarray(x), [], []
            for i in range(depth):
                h = act(h @ params[f"dense_{i}"]["w"] + params[f"dense_{i}"]["b"][None])
                means.append(float(jnp.mean(h)))
                stds.append(float(jnp.std(h)))
            values = np.asarray(h, np.float64).ravel()
            edges = np.linspace(-1, 1, 41) if act_name == "tanh" else np.linspace(0, 3, 41)
            scale = max(np.abs(values).max(), 1e-300)
            if scale < 0.1 * edges[-1]:  # collapsed: show the shape, with the scale in the title
                edges = edges * scale / edges[-1]
            counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
            out[act_name][init] = {"mean": means, "std": stds,
                                   "last_hidden": {"counts": counts, "edges": edges}}
    return out


def symmetry(params, depth: int) -> dict:
    """Per hidden layer, the largest difference between any unit's incoming weights (and bias)
    and unit 0's, relative to the layer's largest weight (0 means all units are identical)."""
    spread = []
    for i in range(depth):
        w, b = np.asarray(params[f"dense_{i}"]["w"]), np.asarray(params[f"dense_{i}"]["b"])
        diff = max(np.abs(w - w[:, :1]).max(), np.abs(b - b[0]).max())
        scale = max(np.abs(w).max(), np.abs(b).max())
        spread.append(float(diff / scale) if scale > 0 else 0.0)
    return {"relative_spread_per_layer": spread, "max_relative_spread": max(spread)}


def train_all(config, split) -> dict:
    """Every (activation, init, seed) in one compiled, vmapped run of the same network."""
    depth, width, seeds = config["train_depth"], config["train_width"], config["seeds"]
    runs = [(a, i) for a in config["activations"] for i in config["inits"]]
    rows = []
    for act_name, init in runs:
        net = network(depth, width, initializer(init, config["constant"]))
        for s in range(seeds):
            params, state = net.init(jax.random.key(100 + s), split.x_train.shape[1:])
            rows.append((params, choose(state, list(ACTIVATIONS).index(act_name))))
    params0, state0 = stack(rows)
    net = network(depth, width, initializers.zeros)  # apply does not depend on the init
    objective = fnn.supervised(net)
    train = trainer(objective, lambda lr: fnn.optim.sgd(lr, momentum=config["momentum"]),
                    n=len(split.x_train), batch_size=config["batch_size"], epochs=config["epochs"])
    keys = jnp.stack([jax.random.key(7)] * len(rows))  # the same batches for every run

    @jax.jit
    def train_and_test(params, state, keys, data, x_test, y_test):  # one compiled program
        params, state, losses = jax.vmap(train, in_axes=(0, 0, None, None, 0))(
            params, state, data, config["learning_rate"], keys)

        def accuracy(p, st):
            logits = net.apply(p, st, x_test)[0]
            return jnp.mean((jnp.argmax(logits, axis=1) == y_test).astype(jnp.float32))

        return params, losses, jax.vmap(accuracy)(params, state)

    params, losses, accuracy = train_and_test(params0, state0, keys,
                                              (split.x_train, split.y_train), split.x_test,
                                              split.y_test)
    accuracy = np.asarray(accuracy).reshape(len(runs), seeds)
    per_epoch = np.asarray(losses, np.float64).mean(axis=-1).reshape(len(runs), seeds, -1)
    out = {}
    for r, (act_name, init) in enumerate(runs):
        row = {"curve": per_epoch[r].mean(axis=0), "final_loss": float(per_epoch[r, :, -1].mean()),
               "test_accuracy": float(accuracy[r].mean())}
        if init in ("zeros", "constant"):
            sym = [symmetry(jax.tree.map(lambda a: a[r * seeds + s], params), depth)
                   for s in range(seeds)]
            moved = [float(max(np.abs(np.asarray(params[f"dense_{l}"]["w"][r * seeds + s])
                                      - np.asarray(params0[f"dense_{l}"]["w"][r * seeds + s])).max()
                               for l in range(depth))) for s in range(seeds)]
            row["symmetry"] = {"max_relative_spread": max(x["max_relative_spread"] for x in sym),
                               "relative_spread_per_layer": sym[0]["relative_spread_per_layer"],
                               "max_hidden_weight_change": max(moved)}
            row["first_layer_weights"] = np.asarray(params["dense_0"]["w"][r * seeds])
        if init == "he":
            row["first_layer_weights"] = np.asarray(params["dense_0"]["w"][r * seeds])
        out.setdefault(act_name, {})[init] = row
    return out


def run(config):
    digits = load_digits()
    scaler = fit_standardize(digits.x_train)
    split = digits._replace(x_train=np.asarray(scaler(digits.x_train)),
                            x_test=np.asarray(scaler(digits.x_test)))
    stats = activation_stats(config, split.x_train)
    trained = train_all(config, split)

    ratio = {a: {i: (s["std"][-1] / s["std"][0] if s["std"][0] > 0 else 0.0)
                 for i, s in by_init.items()} for a, by_init in stats.items()}
    checks = []
    for a in config["activations"]:
        if "zeros" in trained[a]:
            spread = trained[a]["zeros"]["symmetry"]["max_relative_spread"]
            checks.append(check(f"{a}, zeros init: hidden units' largest relative difference "
                                f"after training", spread, "<=", 1e-6))
    for a in config["activations"]:
        if "constant" in trained[a]:
            sym = trained[a]["constant"]["symmetry"]
            checks.append(check(f"{a}, constant init: largest change of a hidden weight in "
                                f"training (the units do learn...)",
                                sym["max_hidden_weight_change"], ">", 0.0))
            checks.append(check(f"{a}, constant init: hidden units' largest relative difference "
                                f"after training (...but stay identical)",
                                sym["max_relative_spread"], "<=", 1e-6))
    for a in config["activations"]:
        if "small" in ratio.get(a, {}):
            checks.append(check(f"{a}, 0.001*randn: std of the last / first hidden layer at init",
                                ratio[a]["small"], "<", 1e-6))
    if "lecun" in ratio.get("tanh", {}):
        checks.append(check("tanh, randn/sqrt(n): std last / first hidden layer (>= 0.1: the "
                            "variance is roughly kept)", ratio["tanh"]["lecun"], ">=", 0.1))
    if "he" in ratio.get("relu", {}):
        checks.append(check("ReLU, He: std last / first hidden layer", ratio["relu"]["he"],
                            ">=", 0.1))
    for a, good in (("tanh", "xavier"), ("relu", "he")):
        if a in trained and {good, "small", "zeros"} <= set(trained[a]):
            worst = min(trained[a]["small"]["final_loss"], trained[a]["zeros"]["final_loss"])
            checks.append(check(f"{a}: final training loss with {good} / the lower of zeros' "
                                f"and 0.001*randn's", trained[a][good]["final_loss"] / worst,
                                "<", 0.5))
    result = {
        "claim": CLAIM, **verdict(checks),
        "activation_stats_at_init": {a: {i: {"mean": s["mean"], "std": s["std"]}
                                         for i, s in by.items()} for a, by in stats.items()},
        "std_last_over_first_hidden": ratio,
        "training": {a: {i: {k: v for k, v in row.items() if k != "first_layer_weights"}
                         for i, row in by.items()} for a, by in trained.items()},
        "final_loss": {a: {i: row["final_loss"] for i, row in by.items()}
                       for a, by in trained.items()},
        "test_accuracy": {a: {i: row["test_accuracy"] for i, row in by.items()}
                          for a, by in trained.items()},
        "_figure_data": {
            "last_hidden": {a: {i: s["last_hidden"] for i, s in by.items()}
                            for a, by in stats.items()},
            "first_layer_weights": {f"{a} {i}": row["first_layer_weights"]
                                    for a, by in trained.items() for i, row in by.items()
                                    if "first_layer_weights" in row}},
    }
    parts = []
    for a in config["activations"]:
        losses = ", ".join(f"{i} {row['final_loss']:.2f}" for i, row in trained[a].items())
        parts.append(f"{a}: last/first-layer std at init "
                     + ", ".join(f"{i} {ratio[a][i]:.1e}" for i in ratio[a])
                     + f"; final loss {losses}")
    result["summary"] = " | ".join(parts) + (
        f" | zeros: hidden units identical after training "
        f"(spread "
        f"{max(trained[a]['zeros']['symmetry']['max_relative_spread'] for a in trained):.0e})"
        if all("zeros" in trained[a] for a in trained) else "")
    result["checks_text"] = describe_checks(checks)
    return result


def _label(init, results):
    if init == "constant":
        return f"constant {results.get('config', {}).get('constant', CONFIG['constant'])}"
    return LABELS[init]


def figures(results, out_dir):
    paths = []
    stats = results["activation_stats_at_init"]
    fig, axes = plot.figure(len(stats), size=(5.2, 4.0))
    axes = np.atleast_1d(axes)
    for ax, (a, by) in zip(axes, stats.items()):
        for k, (init, s) in enumerate(by.items()):
            std = np.asarray(s["std"], np.float64)
            if not np.any(std > 0):  # zeros: nothing to draw on a log axis
                ax.text(0.03, 0.03, f"{LABELS[init]}: every activation is exactly 0",
                        transform=ax.transAxes, fontsize=8, color=plot.COLORS[k])
                continue
            ax.plot(np.arange(1, len(std) + 1), std, marker="o", ms=3, color=plot.COLORS[k],
                    label=LABELS[init])
        plot.decorate(ax, xlabel="hidden layer", ylabel="std of the activations at init",
                      title=f"deep {a} net: activation std per layer", logy=True,
                      legend_size=7)
    paths.append(plot.save(fig, f"{out_dir}/activation_std.png"))

    hist = results.get("_figure_data", {}).get("last_hidden", {})
    if hist:
        inits = list(next(iter(hist.values())))
        fig, axes = plot.figure(len(inits), len(hist), size=(2.6, 2.0))
        axes = np.asarray(axes).reshape(len(hist), len(inits))
        for r, (a, by) in enumerate(hist.items()):
            for c, init in enumerate(inits):
                ax = axes[r, c]
                counts = np.asarray(by[init]["counts"])
                edges = np.asarray(by[init]["edges"], np.float64)
                ax.set_yticks([])
                ax.tick_params(labelsize=6)
                if stats[a][init]["std"][-1] == 0:
                    ax.text(0.5, 0.5, "all exactly 0", ha="center", va="center",
                            transform=ax.transAxes, fontsize=8)
                    ax.set_xticks([])
                    ax.set_title(f"{a}, {LABELS[init]}", fontsize=7)
                    continue
                ax.stairs(counts, edges, fill=True, color=plot.COLORS[c])
                ax.set_title(f"{a}, {LABELS[init]}\n(range +-{max(abs(edges[0]), edges[-1]):.1g})",
                             fontsize=7)
        fig.suptitle("last hidden layer's activations at init", fontsize=9)
        paths.append(plot.save(fig, f"{out_dir}/last_layer_histograms.png"))

    training = results["training"]
    fig, axes = plot.figure(len(training), size=(5.2, 4.0))
    axes = np.atleast_1d(axes)
    for ax, (a, by) in zip(axes, training.items()):
        plot.loss_curves(ax, {_label(i, results): np.asarray(row["curve"], np.float64)
                              for i, row in by.items()}, xlabel="epoch",
                         ylabel="training loss", title=f"{a} net on the digits: training curves")
        ax.legend(frameon=False, fontsize=7)
    paths.append(plot.save(fig, f"{out_dir}/training_curves.png"))

    weights = results.get("_figure_data", {}).get("first_layer_weights", {})
    if weights:
        acts = list(dict.fromkeys(label.split(" ")[0] for label in weights))
        inits = list(dict.fromkeys(label.split(" ")[1] for label in weights))
        fig, axes = plot.figure(len(inits), len(acts), size=(3.4, 2.8))
        axes = np.asarray(axes).reshape(len(acts), len(inits))
        for r, a in enumerate(acts):
            for c, init in enumerate(inits):
                ax = axes[r, c]
                w = np.asarray(weights.get(f"{a} {init}", np.zeros((1, 1))), np.float64)
                vmax = np.abs(w).max()
                ax.imshow(w.T, cmap="RdBu_r", vmin=-max(vmax, 1e-12), vmax=max(vmax, 1e-12),
                          aspect="auto", interpolation="nearest")
                spread = results["training"][a][init].get("symmetry", {}).get("max_relative_spread")
                note = "" if spread is None else f"\nunits differ by {spread:.0e} (relative)"
                if vmax == 0:
                    note += "\n(all weights still exactly 0)"
                ax.set_title(f"{a}, {_label(init, results)}{note}", fontsize=7)
                ax.set_xlabel("input pixel", fontsize=7)
                ax.set_ylabel("hidden unit", fontsize=7)
                ax.tick_params(labelsize=6)
        fig.suptitle("first-layer weights after training: with zeros or a constant every hidden "
                     "unit (row) is the same", fontsize=9)
        paths.append(plot.save(fig, f"{out_dir}/symmetry.png"))
    return paths
