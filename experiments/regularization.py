"""Regularisation against overfitting (seeds 002 and 004) on a deliberately small digits
training set: none vs L2 vs L1 vs dropout vs input noise vs data augmentation (random shifts:
seed 002's random 24x24 crops of a 27x27 image, scaled to the 8x8 digits: a random 7x7 crop
placed back at a random position, i.e. shifts of up to one pixel) vs early stopping.

For each: train and validation curves, final train / validation / test accuracy; for none, L2
and L1 the histogram of the first layer's weights (L1 drives most of them to zero and keeps a
few large ones; L2 shrinks them all and spreads the weight over many inputs).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from experiments._helpers import split_off
from fnn.app.claims import check, claim, describe_checks, verdict
from fnn import plot
from fnn.data import load_digits

DESCRIPTION = "none/L2/L1/dropout/input noise/random shifts/early stopping on 200 digits"

# The penalties, dropout rate and noise level were picked on the validation split (never on
# the test set) from l2 in {1e-3, 1e-2, 3e-2}, l1 in {3e-5, 1e-4, 3e-4}, dropout in {0.2, 0.5},
# noise in {0.1, 0.3}.
CONFIG = {"train_size": 200, "val_size": 300, "hidden": [256, 256], "small_hidden": [16],
          "learning_rate": 1e-3, "batch_size": 20, "epochs": 200, "l2": 1e-2, "l1": 1e-4,
          "dropout": 0.5, "input_noise": 0.3, "max_shift": 1, "patience": 30, "seeds": 3,
          "variants": ["none", "l2", "l1", "dropout", "input_noise", "augmentation",
                       "early_stopping", "small_net"],
          "near_zero": 1e-3}
QUICK = {"epochs": 25, "hidden": [64, 64], "patience": 5, "seeds": 1,
         "variants": ["none", "l2", "l1", "early_stopping"]}

LABELS = {"none": "none", "l2": "L2", "l1": "L1", "dropout": "dropout",
          "input_noise": "input noise", "augmentation": "random shifts (crops)",
          "early_stopping": "early stopping", "small_net": "smaller net, no regulariser"}
REGULARISERS = ("l2", "l1", "dropout", "input_noise", "augmentation", "early_stopping")

CLAIM = claim(
    "不要试图通过降低神经网络参数量来减缓过拟合，而要用一些正则化手段或者dropout。比如说L1正则化，L2正则化。"
    "……在训练的过程中对样本/权重增加噪声……24*24就是从27*27里面随机切取的……Early Stop机制。"
    "（seed 004：L2……偏向于在大量特征上均匀分布权重……L1惩罚会导致模型将权重集中在一小部分特征上，"
    "而将其他权重清除为零。）",
    "Do not fight overfitting by cutting the number of parameters; use regularisation or "
    "dropout instead, e.g. L1 or L2 regularisation ... add noise to the samples/weights during "
    "training ... the 24x24 input is a random crop of the 27x27 image ... early stopping. (Seed "
    "004: L2 spreads the weight evenly over many features; L1 concentrates it on a few features "
    "and clears the other weights to zero.)",
    "seed 002, 添加惩罚 / 过拟合要怎么避免或者处理 / 训练网络的时候还有什么需要注意的; seed 004, 常用的缓解过拟合的方法")


def RandomShift(max_shift: int = 1, image_shape=(8, 8), name: str = "random_shift") -> fnn.Layer:
    """Data augmentation as a layer: in training every flattened image is zero-padded by
    ``max_shift`` pixels and a random window of the original size is cut out of it (a random
    crop of the central (h - s) x (w - s) region placed back at a random position: shifts of
    -max_shift..max_shift pixels). In evaluation: y = x. Shapes: (batch, h*w) -> same."""
    h, w = image_shape

    def apply_fn(params, state, x, key, train):
        if not train or max_shift == 0:
            return x, state
        if key is None:
            raise ValueError(f"{name}: training draws random shifts and needs a key")
        images = jnp.pad(x.reshape(-1, h, w), ((0, 0), (max_shift, max_shift),
                                               (max_shift, max_shift)))
        offsets = jax.random.randint(key, (x.shape[0], 2), 0, 2 * max_shift + 1)
        crop = jax.vmap(lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1]), (h, w)))
        return crop(images, offsets).reshape(x.shape), state

    return fnn.Layer(name, lambda key, shape: (shape, {}, {}), apply_fn)


def network(variant: str, config):
    layers = []
    if variant == "input_noise":
        layers.append(fnn.GaussianNoise(config["input_noise"]))
    if variant == "augmentation":
        layers.append(RandomShift(config["max_shift"]))
    for units in config["small_hidden" if variant == "small_net" else "hidden"]:
        layers += [fnn.Dense(units), fnn.relu]
        if variant == "dropout":
            layers.append(fnn.Dropout(config["dropout"]))
    return fnn.serial(*layers, fnn.Dense(10))


def _first_dense(params):
    return next(np.asarray(v["w"]) for k, v in params.items() if k.startswith("dense"))


def weight_stats(w, near_zero: float) -> dict:
    """Fraction of weights with |w| < near_zero, and the share of sum |w| held by the largest
    10% of the weights (high: concentrated on a few; low: spread over many)."""
    a = np.sort(np.abs(np.asarray(w, np.float64)).ravel())[::-1]
    top = a[: max(1, len(a) // 10)].sum() / max(a.sum(), 1e-30)
    return {"near_zero_fraction": float(np.mean(a < near_zero)), "top10_share": float(top),
            "mean_abs": float(a.mean()), "max_abs": float(a[0])}


@jax.jit
def _logits(params, x):
    """The logits of the ReLU MLP whose Dense params are ``params`` (dense_0, dense_1, ...)."""
    names = sorted(params, key=lambda k: int(k.rsplit("_", 1)[1]))
    h = x
    for i, name in enumerate(names):
        h = h @ params[name]["w"] + params[name]["b"][None]
        if i < len(names) - 1:
            h = fnn.relu(h)
    return h


def make_variant(variant: str, config):
    """(net, objective, optimizer, early stopping) of a variant, built once so that its fits
    for every seed share one compilation."""
    net = network(variant, config)
    objective = fnn.supervised(net, l2=config["l2"] if variant == "l2" else 0.0,
                               l1=config["l1"] if variant == "l1" else 0.0)
    early = (fnn.EarlyStopping(monitor="val_loss", patience=config["patience"], restore_best=True)
             if variant == "early_stopping" else None)
    return net, objective, fnn.optim.adam(config["learning_rate"]), early


def train_variant(made, config, seed: int, train, val, test) -> dict:
    net, objective, optimizer, early = made
    params, state = net.init(jax.random.key(seed), train[0].shape[1:])
    result = fnn.fit(objective, params, optimizer, train, model_state=state,
                     epochs=config["epochs"], batch_size=config["batch_size"], seed=seed,
                     validation_data=val, early_stopping=early, progress=False)
    h = result.history
    # In evaluation every variant is the plain MLP (dropout, noise and shifts are off), so one
    # compiled forward pass over train + validation + test serves all of them.
    sets = (train, val, test)
    logits = np.asarray(_logits(result.params, np.concatenate([d[0] for d in sets])), np.float64)
    labels = np.concatenate([d[1] for d in sets])
    hits = logits.argmax(axis=1) == labels
    shifted = logits - logits.max(axis=1, keepdims=True)
    nll = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(labels)), labels]
    bounds = np.cumsum([0] + [len(d[1]) for d in sets])
    parts = list(zip(bounds[:-1], bounds[1:]))
    tr, va, te = (float(hits[a:b].mean()) for a, b in parts)
    w = _first_dense(result.params)
    out = {"train_accuracy": tr, "val_accuracy": va, "test_accuracy": te, "gap": tr - te,
           "train_loss": float(nll[parts[0][0]:parts[0][1]].mean()),
           "test_loss": float(nll[parts[2][0]:parts[2][1]].mean()),
           "epochs_run": int(len(h["loss"])), "params": int(sum(np.size(a) for a in
                                                                 jax.tree.leaves(result.params))),
           "curves": {"loss": h["loss"], "val_loss": h["val_loss"], "accuracy": h["accuracy"],
                      "val_accuracy": h["val_accuracy"]},
           "first_layer": weight_stats(w, config["near_zero"]), "first_layer_weights": w.ravel()}
    if early is not None:
        out["best_epoch"] = int(np.argmin(h["val_loss"])) + 1
    return out


def _mean_over_seeds(runs: list[dict]) -> dict:
    """Scalars and first-layer statistics averaged over seeds; curves and weights of seed 0."""
    out = {k: float(np.mean([r[k] for r in runs])) for k in
           ("train_accuracy", "val_accuracy", "test_accuracy", "gap", "train_loss", "test_loss",
            "epochs_run")}
    out["test_accuracy_per_seed"] = [r["test_accuracy"] for r in runs]
    out["params"] = runs[0]["params"]
    out["first_layer"] = {k: float(np.mean([r["first_layer"][k] for r in runs]))
                          for k in runs[0]["first_layer"]}
    out["curves"] = runs[0]["curves"]
    if "best_epoch" in runs[0]:
        out["best_epoch"] = runs[0]["best_epoch"]
    return out


def _histograms(weights: dict) -> dict:
    """Histograms (shared bins) of the first-layer weights: {variant: {counts, edges}}."""
    if not weights:
        return {}
    hi = max(np.abs(np.asarray(w, np.float64)).max() for w in weights.values())
    edges = np.linspace(-hi, hi, 81)
    return {v: {"counts": np.histogram(np.asarray(w, np.float64), bins=edges)[0], "edges": edges}
            for v, w in weights.items()}


def run(config):
    digits = load_digits()
    test = (digits.x_test, digits.y_test)
    made = {v: make_variant(v, config) for v in config["variants"]}
    per_seed = {v: [] for v in config["variants"]}
    for seed in range(config["seeds"]):  # a different training subset and init per seed
        train, rest = split_off(digits.x_train, digits.y_train, config["train_size"], seed)
        val = (rest[0][: config["val_size"]], rest[1][: config["val_size"]])
        for v in config["variants"]:
            per_seed[v].append(train_variant(made[v], config, seed, train, val, test))
    results = {v: _mean_over_seeds(runs) for v, runs in per_seed.items()}

    none = results["none"]
    regs = [v for v in results if v in REGULARISERS]
    checks = [check("the unregularised net overfits: train accuracy - test accuracy",
                    none["gap"], ">=", 0.05)]
    if {"l1", "l2"} <= set(results):
        l1, l2 = results["l1"]["first_layer"], results["l2"]["first_layer"]
        checks.append(check(f"L1 / L2: fraction of first-layer weights with |w| < "
                            f"{config['near_zero']:g}",
                            l1["near_zero_fraction"] / max(l2["near_zero_fraction"], 1e-6),
                            ">=", 2.0))
        checks.append(check("L1 - L2: share of sum|w| held by the largest 10% of the first "
                            "layer's weights (L1 concentrates, L2 spreads)",
                            l1["top10_share"] - l2["top10_share"], ">", 0.0))
    if regs:
        # overfitting shows first in the held-out loss (over-confident wrong answers); the
        # accuracy is the coarser measure, used for the "best regulariser" checks
        better = sum(results[v]["test_loss"] < none["test_loss"] for v in regs)
        checks.append(check(f"fraction of the {len(regs)} regularisers with a lower mean test "
                            f"loss than none", better / len(regs), ">=", 0.5))
        best = max(regs, key=lambda v: results[v]["test_accuracy"])
        checks.append(check(f"best regulariser's ({best}) mean test accuracy - none's",
                            results[best]["test_accuracy"] - none["test_accuracy"], ">=", 0.01))
        if "small_net" in results:
            checks.append(check(f"best regulariser's ({best}) mean test accuracy - the smaller "
                                f"net's (fewer parameters instead of regularisation)",
                                results[best]["test_accuracy"]
                                - results["small_net"]["test_accuracy"], ">", 0.0))
    table = {v: {k: r[k] for k in ("train_accuracy", "val_accuracy", "test_accuracy", "gap",
                                   "test_loss", "epochs_run", "params")}
             for v, r in results.items()}
    train_size = config["train_size"]
    out = {"claim": CLAIM, **verdict(checks), "table": table, "variants": results,
           "train_size": train_size, "seeds": config["seeds"],
           "_figure_data": _histograms({v: per_seed[v][0]["first_layer_weights"]
                                        for v in ("none", "l2", "l1") if v in per_seed})}
    out["summary"] = (f"{train_size} training digits, mean of {config['seeds']} seed(s); test "
                      f"accuracy / loss " + ", ".join(
                          f"{LABELS[v]} {100 * r['test_accuracy']:.1f}% / {r['test_loss']:.3f}"
                          for v, r in results.items())
                      + (f"; |w|<{config['near_zero']:g}: L1 "
                         f"{100 * results['l1']['first_layer']['near_zero_fraction']:.0f}% vs L2 "
                         f"{100 * results['l2']['first_layer']['near_zero_fraction']:.0f}%"
                         if {"l1", "l2"} <= set(results) else ""))
    out["checks_text"] = describe_checks(checks)
    return out


def figures(results, out_dir):
    paths = []
    variants = results["variants"]
    cols = min(4, len(variants))
    rows = -(-len(variants) // cols)
    fig, axes = plot.figure(cols, rows, size=(3.4, 2.9))
    axes = np.asarray(axes).ravel()
    for ax, (v, r) in zip(axes, variants.items()):
        curves = r["curves"]
        plot.loss_curves(ax, {"train": np.asarray(curves["loss"], np.float64),
                              "validation": np.asarray(curves["val_loss"], np.float64)},
                         xlabel="epoch")
        ax.set_title(f"{LABELS[v]}\ntrain {100 * r['train_accuracy']:.0f}%, val "
                     f"{100 * r['val_accuracy']:.1f}%, test {100 * r['test_accuracy']:.1f}%",
                     fontsize=8)
        ax.legend(frameon=False, fontsize=7)
        if v == "early_stopping" and "best_epoch" in r:
            ax.axvline(r["best_epoch"], color="k", ls=":", lw=1)
    for ax in axes[len(variants):]:
        ax.set_visible(False)
    fig.suptitle(f"{results.get('train_size', '')} training digits: train vs validation loss "
                 f"(curves of seed 0, accuracies: mean over seeds)", fontsize=10)
    paths.append(plot.save(fig, f"{out_dir}/curves.png"))

    weights = results.get("_figure_data", {})
    if weights:
        fig, axes = plot.figure(len(weights), size=(3.6, 3.0))
        axes = np.atleast_1d(axes)
        for k, (ax, (v, h)) in enumerate(zip(axes, weights.items())):
            ax.stairs(np.asarray(h["counts"]), np.asarray(h["edges"], np.float64), fill=True,
                      color=plot.COLORS[k])
            plot.log_scale(ax, "y")
            stats = variants[v]["first_layer"]
            ax.set_title(f"{LABELS[v]}: {100 * stats['near_zero_fraction']:.0f}% below "
                         f"{results.get('config', {}).get('near_zero', CONFIG['near_zero']):g}, "
                         f"top 10% hold {100 * stats['top10_share']:.0f}% of sum|w|", fontsize=7)
            ax.set_xlabel("first-layer weight")
        fig.suptitle("weight histograms (log counts)", fontsize=10)
        paths.append(plot.save(fig, f"{out_dir}/weight_histograms.png"))

    fig, ax = plot.figure(1, size=(7.6, 3.8))
    names = list(variants)
    x = np.arange(len(names))
    for k, key in enumerate(("train_accuracy", "val_accuracy", "test_accuracy")):
        ax.bar(x + (k - 1) * 0.27, [100 * variants[v][key] for v in names], 0.27,
               color=plot.COLORS[k], label=key.replace("_", " "))
    ax.set_xticks(x, [LABELS[v].replace(", ", ",\n").replace(" (", "\n(") for v in names],
                  fontsize=7, rotation=30, ha="right")
    ax.set_ylim(min(100 * variants[v]["test_accuracy"] for v in names) - 5, 101)
    ax.set_ylabel("%")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(f"final accuracy (mean of {results.get('seeds', 1)} seed(s))")
    paths.append(plot.save(fig, f"{out_dir}/accuracy.png"))
    return paths
