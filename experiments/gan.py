"""A GAN on the 8x8 digits (MLP generator and discriminator, non-saturating generator loss,
one jitted step for both): fixed-noise sample grids over training, both losses, and sample
quality judged by a digits classifier trained with fnn (confidence and class coverage).

Config: ``generator`` is 'dense' (MLP with hidden sizes ``g_hidden``) or 'conv' (a DCGAN-style
ConvTranspose2D stack on 8x8x1 images, ``g_hidden`` then lists its channels, e.g. [32, 16]);
the discriminator is an MLP with hidden sizes ``d_hidden``. Both use Adam(lr, b1)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from experiments.autoencoder import image_grid
from fnn import plot
from fnn.data import load_digits
from fnn.models.gan import GAN, conv_generator, dense_discriminator, dense_generator
from fnn.train.gan import fit_gan

DESCRIPTION = ("GAN on digits: sample grids over training, D/G losses, sample quality by an fnn "
               "classifier (mean max-probability, class-histogram entropy)")
CONFIG = {"latent": 16, "generator": "dense", "g_hidden": [128, 256], "d_hidden": [256, 128],
          "epochs": 300, "batch_size": 64, "g_learning_rate": 1e-3, "d_learning_rate": 1e-3,
          "b1": 0.5, "snapshot_epochs": [0, 5, 25, 100, 300], "num_samples": 1000,
          "classifier_epochs": 40, "seed": 0}
QUICK = {"epochs": 2, "snapshot_epochs": [0, 2], "classifier_epochs": 1, "num_samples": 200}


def quality(probabilities) -> dict:
    """Sample quality from a classifier's class probabilities p (n, 10):

        confidence = mean_i max_c p_ic        (sharp, digit-like samples -> near 1)
        entropy    = -sum_c h_c log h_c, h = histogram of argmax_c p_ic / n   (nats)

    The entropy is log 10 = 2.303 when all classes are produced equally often and falls
    towards 0 under mode collapse. ``histogram`` is the class counts.
    """
    p = np.asarray(probabilities, np.float64)
    counts = np.bincount(p.argmax(axis=1), minlength=p.shape[1])
    h = counts / counts.sum()
    entropy = float(-np.sum(h[h > 0] * np.log(h[h > 0])))
    return {"confidence": float(p.max(axis=1).mean()), "entropy": entropy,
            "max_entropy": math.log(p.shape[1]), "histogram": counts.tolist()}


def _classifier(split, epochs, seed):
    net = fnn.MLP([256, 10])
    params, _ = net.init(jax.random.key(seed), (64,))
    result = fnn.fit(fnn.supervised(net), params, fnn.optim.adam(1e-3),
                     (split.x_train, split.y_train), epochs=epochs, batch_size=32, seed=seed,
                     progress=False)
    accuracy = float(np.mean(np.asarray(net(result.params, split.x_test)).argmax(1)
                             == split.y_test))
    return jax.jit(lambda x: jax.nn.softmax(net(result.params, x.reshape(x.shape[0], 64)))), \
        accuracy


def run(config):
    split = load_digits()
    seed = config["seed"]
    latent = config["latent"]
    if config["generator"] == "dense":
        generator, data = dense_generator(latent, 64, config["g_hidden"]), split.x_train
    else:  # DCGAN-style ConvTranspose generator on NHWC images
        generator = conv_generator((8, 8, 1), config["g_hidden"])
        data = split.x_train.reshape(-1, 8, 8, 1)
    discriminator = fnn.serial(fnn.Flatten(), dense_discriminator(config["d_hidden"]),
                               name="discriminator")
    gan = GAN(generator, discriminator, latent)
    trees, _ = gan.init(jax.random.key(seed), data.shape[1:])   # no BatchNorm: no state
    opt = lambda lr: fnn.optim.adam(lr, b1=config["b1"])
    gan_run = fit_gan(gan, trees, opt(config["d_learning_rate"]), opt(config["g_learning_rate"]),
                      data, epochs=config["epochs"], batch_size=config["batch_size"], seed=seed,
                      snapshot_epochs=config["snapshot_epochs"])

    classify, accuracy = _classifier(split, config["classifier_epochs"], seed)
    z = gan.noise(jax.random.fold_in(jax.random.key(seed), 3), config["num_samples"])
    samples = gan.generate(gan_run.trees["generator"], z)
    fake = quality(classify(samples))
    real = quality(classify(jnp.asarray(split.x_test)))
    h = gan_run.history
    steps = len(h["discriminator_loss"])
    per_epoch = steps // config["epochs"]
    epoch_mean = lambda v: np.asarray(v)[: per_epoch * config["epochs"]].reshape(
        config["epochs"], per_epoch).mean(1)
    return {
        "sample_quality": fake, "test_set_quality": real, "classifier_test_accuracy": accuracy,
        "losses_per_epoch": {"discriminator": epoch_mean(h["discriminator_loss"]),
                             "generator": epoch_mean(h["generator_loss"])},
        "d_real_per_epoch": epoch_mean(h["discriminator_d_real"]),
        "d_fake_per_epoch": epoch_mean(h["discriminator_d_fake"]),
        "snapshots": {str(k): np.asarray(v).reshape(len(v), 64)
                      for k, v in gan_run.snapshots.items()},
        "final_samples": np.asarray(samples[:100]).reshape(-1, 64),
        "steps": steps, "train_seconds": gan_run.seconds,
        "summary": (f"{config['num_samples']} samples: classifier confidence "
                    f"{fake['confidence']:.3f} (test digits {real['confidence']:.3f}), "
                    f"class-histogram entropy {fake['entropy']:.3f} of {fake['max_entropy']:.3f} "
                    f"(test digits {real['entropy']:.3f}); {steps} steps in "
                    f"{gan_run.seconds:.1f}s; classifier test accuracy {accuracy:.3f}"),
    }


def figures(results, out_dir):
    snaps = results["snapshots"]
    fig, axes = plot.figure(len(snaps), size=(3.2, 3.5))
    axes = np.atleast_1d(axes)
    for ax, (epoch, images) in zip(axes, snaps.items()):
        image_grid(ax, np.asarray(images)[:64], ncols=8, title=f"epoch {epoch}")
    paths = [plot.save(fig, f"{out_dir}/gan_samples_over_training.png")]

    fig, (ax_loss, ax_d, ax_hist) = plot.figure(3, size=(4.2, 3.6))
    losses = results["losses_per_epoch"]
    plot.loss_curves(ax_loss, {"discriminator": losses["discriminator"],
                               "generator (non-saturating)": losses["generator"]},
                     xlabel="epoch", logy=False, title="losses (epoch means)")
    plot.loss_curves(ax_d, {"D(x) real": results["d_real_per_epoch"],
                            "D(G(z)) fake": results["d_fake_per_epoch"]},
                     xlabel="epoch", ylabel="mean sigmoid(D)", logy=False,
                     title="discriminator outputs")
    q, r = results["sample_quality"], results["test_set_quality"]
    width = 0.4
    ax_hist.bar(np.arange(10) - width / 2, np.asarray(q["histogram"]) / sum(q["histogram"]),
                width, label=f"GAN samples (H={q['entropy']:.2f})")
    ax_hist.bar(np.arange(10) + width / 2, np.asarray(r["histogram"]) / sum(r["histogram"]),
                width, label=f"test digits (H={r['entropy']:.2f})")
    ax_hist.set_xticks(range(10))
    ax_hist.set_xlabel("predicted class")
    ax_hist.set_ylabel("fraction")
    ax_hist.set_title(f"confidence {q['confidence']:.3f} (test {r['confidence']:.3f})")
    ax_hist.legend(frameon=False, fontsize=7)
    paths.append(plot.save(fig, f"{out_dir}/gan_losses_quality.png"))

    fig, ax = plot.figure(size=(5.0, 5.2))
    image_grid(ax, results["final_samples"], ncols=10, title="final samples")
    paths.append(plot.save(fig, f"{out_dir}/gan_final_samples.png"))
    return paths
