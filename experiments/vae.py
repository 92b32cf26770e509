"""A variational autoencoder on the 8x8 digits (Bernoulli decoder, 2-D latent): test ELBO per
epoch, samples from the prior, the 2-D latent manifold, interpolation between two test digits."""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from experiments.autoencoder import image_grid
from fnn import plot
from fnn.data import load_digits
from fnn.models.vae import dense_vae, elbo, interpolate, vae_objective

DESCRIPTION = ("VAE on digits (2-D latent): test ELBO per epoch, prior samples, latent manifold, "
               "interpolation")
CONFIG = {"hidden": [256, 128], "latent": 2, "epochs": 150, "batch_size": 64,
          "learning_rate": 2e-3, "eval_samples": 8, "final_samples": 64, "manifold_size": 12,
          "interpolate_classes": [1, 7], "interpolate_steps": 10, "seed": 0}
QUICK = {"epochs": 3, "hidden": [64], "final_samples": 4}


def run(config):
    split = load_digits()
    vae = dense_vae(64, config["latent"], config["hidden"])
    params, _ = vae.init(jax.random.key(config["seed"]), (64,))
    objective = vae_objective(vae, eval_samples=config["eval_samples"])
    start = time.perf_counter()
    result = fnn.fit(objective, params, fnn.optim.adam(config["learning_rate"]), split.x_train,
                     epochs=config["epochs"], batch_size=config["batch_size"],
                     seed=config["seed"], validation_data=split.x_test, progress=False)
    seconds = time.perf_counter() - start
    params, h = result.params, result.history
    base = jax.random.key(config["seed"] + 1)
    test_elbo = float(jnp.mean(elbo(vae, params, jnp.asarray(split.x_test),
                                    jax.random.fold_in(base, 0),
                                    samples=config["final_samples"])[0]))
    samples = np.asarray(vae.sample(params, jax.random.fold_in(base, 1), 100))
    size = config["manifold_size"]
    grid = np.linspace(-2.5, 2.5, size, dtype=np.float32)
    if config["latent"] == 2:
        z = np.stack(np.meshgrid(grid, grid[::-1]), axis=-1).reshape(-1, 2)
        manifold = np.asarray(vae.mean_image(params, jnp.asarray(z)))
        means = np.asarray(vae.encode(params, jnp.asarray(split.x_test))[0])
    else:
        manifold, means = None, None
    a, b = config["interpolate_classes"]
    i0, i1 = int(np.argmax(split.y_test == a)), int(np.argmax(split.y_test == b))
    path = np.asarray(interpolate(vae, params, jnp.asarray(split.x_test[i0]),
                                  jnp.asarray(split.x_test[i1]), config["interpolate_steps"]))
    return {
        "test_elbo": test_elbo,
        "test_elbo_per_epoch": h["val_elbo"], "train_elbo_per_epoch": h["elbo"],
        "test_kl_per_epoch": h["val_kl"], "test_reconstruction_per_epoch": h["val_reconstruction"],
        "train_seconds": seconds,
        "samples": samples, "manifold": manifold, "manifold_grid": grid, "latent_means": means,
        "latent_labels": split.y_test,
        "interpolation": {"from": split.x_test[i0], "to": split.x_test[i1], "path": path,
                          "classes": [a, b]},
        "summary": (f"test ELBO {test_elbo:.2f} nats/image ({config['final_samples']} samples; "
                    f"KL {float(h['val_kl'][-1]):.2f}), {config['epochs']} epochs in "
                    f"{seconds:.1f}s"),
    }


def figures(results, out_dir):
    fig, (ax_elbo, ax_parts) = plot.figure(2, size=(4.6, 3.6))
    plot.loss_curves(ax_elbo, {"train": -np.asarray(results["train_elbo_per_epoch"]),
                               "test": -np.asarray(results["test_elbo_per_epoch"])},
                     xlabel="epoch", ylabel="-ELBO (nats / image)",
                     title=f"negative ELBO; final test ELBO {results['test_elbo']:.2f}")
    plot.loss_curves(ax_parts, {"-E log p(x|z)": -np.asarray(results["test_reconstruction_per_epoch"]),
                                "KL(q || p)": np.asarray(results["test_kl_per_epoch"])},
                     xlabel="epoch", ylabel="nats / image", logy=False, title="test ELBO terms")
    paths = [plot.save(fig, f"{out_dir}/vae_elbo.png")]

    fig, ax = plot.figure(size=(5.0, 5.2))
    image_grid(ax, results["samples"], ncols=10, title="samples E[x|z], z ~ N(0, I)")
    paths.append(plot.save(fig, f"{out_dir}/vae_samples.png"))

    if results["manifold"] is not None:
        fig, (ax_m, ax_z) = plot.figure(2, size=(5.0, 4.8))
        size = len(results["manifold_grid"])
        image_grid(ax_m, results["manifold"], ncols=size,
                   title="decoded latent grid z in [-2.5, 2.5]^2")
        plot.latent_scatter(fig, ax_z, results["latent_means"], results["latent_labels"],
                            title="posterior means of test digits")
        paths.append(plot.save(fig, f"{out_dir}/vae_manifold.png"))

    interp = results["interpolation"]
    fig, ax = plot.figure(size=(8.0, 1.8))
    row = np.concatenate([np.asarray(interp["from"])[None], np.asarray(interp["path"]),
                          np.asarray(interp["to"])[None]])
    image_grid(ax, row, ncols=len(row),
               title=f"test {interp['classes'][0]} | decoded interpolation of posterior means "
                     f"| test {interp['classes'][1]}")
    paths.append(plot.save(fig, f"{out_dir}/vae_interpolation.png"))
    return paths
