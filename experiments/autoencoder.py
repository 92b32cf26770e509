"""Autoencoders on the 8x8 digits: reconstructions and test MSE for a 2-D and a larger
bottleneck (dense, convolutional, denoising), the 2-D latent space coloured by class, and
anomaly detection by reconstruction error (ROC AUC, computed in NumPy by ranking)."""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn import plot
from fnn.data import load_digits
from fnn.models.autoencoder import conv_autoencoder, dense_autoencoder

DESCRIPTION = ("autoencoders on digits: reconstructions, 2-D latent map, test MSE by bottleneck, "
               "anomaly detection (ROC AUC)")
CONFIG = {"hidden": [128], "latent_small": 2, "latent_large": 16, "conv_channels": [16, 32],
          "denoise_std": 0.2, "epochs": 100, "batch_size": 64, "learning_rate": 2e-3,
          "anomaly_noise_stds": [0.1, 0.25, 0.5], "seed": 0,
          "variants": ["dense_small", "dense_large", "conv", "denoising"]}
QUICK = {"epochs": 2, "variants": ["dense_small"]}
VARIANTS = ("dense_small", "dense_large", "conv", "denoising")


def roc_auc(negatives, positives) -> float:
    """Area under the ROC curve for "positives score higher", by ranking (Mann-Whitney U):

        AUC = (sum of the positives' ranks - P (P + 1) / 2) / (P N)

    over the pooled scores ranked 1..P+N, ties given their average rank. 0.5 = chance.
    """
    neg, pos = np.asarray(negatives, np.float64).ravel(), np.asarray(positives, np.float64).ravel()
    scores = np.concatenate([neg, pos])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    end = np.cumsum(counts)
    ranks = ((end - counts + 1 + end) / 2.0)[inverse]
    return float((ranks[len(neg):].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def roc_curve(negatives, positives):
    """(false positive rate, true positive rate) for every threshold, from the top score down."""
    scores = np.concatenate([negatives, positives])
    labels = np.concatenate([np.zeros(len(negatives)), np.ones(len(positives))])
    order = np.argsort(-scores, kind="stable")
    tpr = np.concatenate([[0.0], np.cumsum(labels[order]) / len(positives)])
    fpr = np.concatenate([[0.0], np.cumsum(1 - labels[order]) / len(negatives)])
    return fpr, tpr


def image_grid(ax, images, ncols: int, title: str | None = None, row_labels=None) -> None:
    """Tile (n, 8, 8[, 1]) or (n, 64) images in [0, 1] into one grey image on ``ax``,
    optionally naming each row on the left."""
    images = np.asarray(images, np.float32).reshape(len(images), 8, 8)
    nrows = -(-len(images) // ncols)
    canvas = np.ones((nrows * 9 + 1, ncols * 9 + 1), np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        canvas[1 + 9 * r: 9 * r + 9, 1 + 9 * c: 9 * c + 9] = img
    ax.imshow(canvas, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([] if row_labels is None else [9 * r + 5 for r in range(len(row_labels))])
    if row_labels is not None:
        ax.set_yticklabels(row_labels, fontsize=8)
    if title:
        ax.set_title(title)


def _train(ae, x_train, x_test, config, seed):
    params, state = ae.init(jax.random.key(seed), x_train.shape[1:])
    start = time.perf_counter()
    result = fnn.fit(fnn.supervised(ae, fnn.losses.mse), params,
                     fnn.optim.adam(config["learning_rate"]), (x_train, x_train),
                     model_state=state, epochs=config["epochs"], batch_size=config["batch_size"],
                     seed=seed, validation_data=(x_test, x_test), progress=False)
    seconds = time.perf_counter() - start
    return result.params, result.history, seconds


def _per_image_mse(ae, params, x):
    out = ae(params, jnp.asarray(x))
    return np.mean((np.asarray(out) - np.asarray(x)) ** 2, axis=tuple(range(1, np.ndim(x))))


def run(config):
    flat, images = load_digits(), load_digits(flatten=False)
    seed = config["seed"]
    small, large = config["latent_small"], config["latent_large"]
    unknown = [v for v in config["variants"] if v not in VARIANTS]
    if unknown or "dense_small" not in config["variants"]:
        raise ValueError(f"autoencoder: variants must include 'dense_small' and come from "
                         f"{VARIANTS}, got {config['variants']}")
    builders = {
        "dense_small": (f"dense latent {small}",
                        lambda: dense_autoencoder(64, small, config["hidden"]), flat),
        "dense_large": (f"dense latent {large}",
                        lambda: dense_autoencoder(64, large, config["hidden"]), flat),
        "conv": (f"conv latent {large}",
                 lambda: conv_autoencoder(large, channels=config["conv_channels"]), images),
        "denoising": (f"denoising dense latent {large}",
                      lambda: dense_autoencoder(64, large, config["hidden"],
                                                noise_std=config["denoise_std"]), flat),
    }
    models = {builders[v][0]: (builders[v][1](), builders[v][2]) for v in VARIANTS
              if v in config["variants"]}
    results = {"models": {}, "curves": {}, "reconstructions": {}}
    trained = {}
    for name, (ae, split) in models.items():
        params, history, seconds = _train(ae, split.x_train, split.x_test, config, seed)
        trained[name] = (ae, params, split)
        mse = _per_image_mse(ae, params, split.x_test)
        results["models"][name] = {
            "test_mse": float(mse.mean()), "train_mse": float(history["loss"][-1]),
            "params": int(sum(a.size for a in jax.tree.leaves(params))),
            "train_seconds": seconds}
        results["curves"][name] = {"train": history["loss"], "test": history["val_loss"]}
        results["reconstructions"][name] = np.asarray(ae(params, split.x_test[:10])).reshape(10, 64)
    results["test_images"] = flat.x_test[:10]

    ae, params, _ = trained[builders["dense_small"][0]]
    results["latent_2d"] = {"z": np.asarray(ae.encode(params, flat.x_test)),
                            "label": flat.y_test}

    # Anomaly detection: the same test images, heavily noised or with their pixels shuffled.
    rng = np.random.RandomState(seed)
    x = flat.x_test
    anomalies = {f"noise std {std}": np.clip(x + std * rng.randn(*x.shape), 0, 1).astype(np.float32)
                 for std in config["anomaly_noise_stds"]}
    anomalies["pixel shuffle"] = np.stack([row[rng.permutation(64)] for row in x])
    # Scored by the larger dense bottleneck when it was trained, else by the 2-D one.
    large = builders["dense_large" if "dense_large" in config["variants"] else "dense_small"][0]
    ae, params, _ = trained[large]
    clean = _per_image_mse(ae, params, x)
    results["anomaly"] = {"model": large, "clean_scores": clean, "kinds": {}}
    for kind, xa in anomalies.items():
        scores = _per_image_mse(ae, params, xa)
        results["anomaly"]["kinds"][kind] = {"auc": roc_auc(clean, scores), "scores": scores}

    mses = ", ".join(f"{k}: {v['test_mse']:.4f}" for k, v in results["models"].items())
    aucs = ", ".join(f"{k}: {v['auc']:.3f}" for k, v in results["anomaly"]["kinds"].items())
    results["summary"] = f"test MSE {mses}; anomaly ROC AUC {aucs}"
    return results


def figures(results, out_dir):
    names = list(results["models"])
    fig, axes = plot.figure(2, size=(5.2, 4.2))
    rows = [np.asarray(results["test_images"])] + [np.asarray(results["reconstructions"][n])
                                                   for n in names]
    image_grid(axes[0], np.concatenate(rows), ncols=10, title="test digits and reconstructions",
               row_labels=["test digits", *names])
    plot.loss_curves(axes[1], {f"{n} (test)": results["curves"][n]["test"] for n in names},
                     xlabel="epoch", ylabel="MSE", title="test reconstruction MSE")
    paths = [plot.save(fig, f"{out_dir}/autoencoder_reconstructions.png")]

    fig, ax = plot.figure(size=(5.4, 4.6))
    plot.latent_scatter(fig, ax, results["latent_2d"]["z"], results["latent_2d"]["label"],
                        title="2-D bottleneck: test digits by class")
    paths.append(plot.save(fig, f"{out_dir}/autoencoder_latent.png"))

    fig, (ax_hist, ax_roc) = plot.figure(2, size=(4.6, 3.8))
    anomaly = results["anomaly"]
    clean = np.asarray(anomaly["clean_scores"])
    bins = np.logspace(np.log10(max(clean.min(), 1e-5)),
                       np.log10(max(max(np.max(v["scores"]) for v in anomaly["kinds"].values()),
                                    clean.max() * 1.01)), 40)
    ax_hist.hist(clean, bins=bins, alpha=0.6, label="clean test")
    for kind, v in anomaly["kinds"].items():
        ax_hist.hist(np.asarray(v["scores"]), bins=bins, alpha=0.6, label=kind)
        fpr, tpr = roc_curve(clean, np.asarray(v["scores"]))
        ax_roc.plot(fpr, tpr, label=f"{kind}: AUC {v['auc']:.3f}")
    plot.log_scale(ax_hist, "x")
    ax_hist.set_xlabel("reconstruction MSE per image")
    ax_hist.set_title(f"anomaly scores ({anomaly['model']})")
    ax_hist.legend(frameon=False, fontsize=7)
    ax_roc.plot([0, 1], [0, 1], "k:", lw=1)
    ax_roc.set_xlabel("false positive rate")
    ax_roc.set_ylabel("true positive rate")
    ax_roc.set_title("ROC")
    ax_roc.legend(frameon=False, fontsize=7)
    paths.append(plot.save(fig, f"{out_dir}/autoencoder_anomaly.png"))
    return paths
