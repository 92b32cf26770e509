"""Input preprocessing (seed 002): two correlated features on very different scales (one within
about +-1, the other within about +-100), fed raw, standardised, or PCA-whitened.

* A 2-parameter linear model y = w1 x1 + w2 x2: the contours of its loss surface over (w1, w2)
  (the raw inputs make the seed's "narrow valley": the Hessian's condition number is ~1e4;
  standardising leaves the tilt of the correlation, whitening makes circles), and minibatch
  SGD's path over them at each preprocessing's best learning rate.
* A small tanh MLP on the same kind of inputs (a two-moons problem mapped to the two scales):
  SGD training curves at each preprocessing's best learning rate.
Learning rates come from the same grid for every preprocessing; each gets its best one (for the
linear model: the fastest to cut the excess loss to 1% of its start; for the MLP: the lowest
final training loss).
"""
from __future__ import annotations

import jax
import numpy as np

import fnn
from experiments._training import trainer
from fnn.app.claims import check, claim, describe_checks, verdict
from fnn import plot
from fnn.data import fit_pca_whiten, fit_standardize, playground

DESCRIPTION = "+-1 vs +-100 correlated features: raw / standardised / PCA-whitened; narrow valley"

CONFIG = {"n": 512, "scale": 100.0, "correlation": 0.9, "seed": 0, "batch_size": 32,
          "linear_epochs": 30, "mlp_epochs": 100, "hidden": [16, 16],
          "learning_rates": [float(v) for v in np.logspace(-7, 1, 17)], "tolerance": 0.01}
QUICK = {"linear_epochs": 10, "mlp_epochs": 10, "n": 256,
         "learning_rates": [float(v) for v in np.logspace(-6, 0, 7)]}

PREPROCESSING = ("raw", "standardised", "whitened")

CLAIM = claim(
    "如果各个维度的scale不一致，将导致对应的Error Surface容易出现狭窄区域，不利于优化算法寻找局部最优。如果一个维度"
    "的范围是-1~+1 ，另一个维度的范围是从+100到-100， 那么会出现狭窄区域，而因为我们用的是随机梯度下降，会导致在这个"
    "狭窄区域震荡……如果输入数据各个维度数据是相关的，将导致各个权重互相影响……对于线性的神经网络，做去除相关 会使效果"
    "大大提升。比如PCA……要做一个白化处理，压成圆形。",
    "If the dimensions have different scales, the error surface easily gets narrow regions that "
    "hinder the optimiser: with one dimension in -1..+1 and another in -100..+100 a narrow "
    "valley appears, and since we use stochastic gradient descent it oscillates in the valley "
    "... correlated input dimensions make the weights interfere ... for a linear network, "
    "decorrelating improves results greatly, e.g. PCA followed by whitening, which squeezes "
    "the data into a circle.", "seed 002, 如果不对数据进行处理的话存在的问题 / 输入数据的处理")


def mix(latent, scale: float, correlation: float) -> np.ndarray:
    """Map standardised latent coordinates (a, b) to raw features:
    x1 = a / 2 (within about +-1), x2 = scale/2 * (c a + sqrt(1 - c^2) b) (about +-scale),
    corr(x1, x2) = c."""
    a, b = latent[:, 0], latent[:, 1]
    x2 = correlation * a + np.sqrt(1 - correlation ** 2) * b
    return (np.stack([a, scale * x2], axis=1) / 2).astype(np.float32)


def preprocess(x) -> dict:
    """The three versions of ``x``: raw, standardised, PCA-whitened (fitted on ``x`` itself)."""
    return {"raw": x, "standardised": np.asarray(fit_standardize(x)(x), np.float32),
            "whitened": np.asarray(fit_pca_whiten(x)(x), np.float32)}


def linear_problem(config):
    rng = np.random.default_rng(config["seed"])
    latent = rng.uniform(-np.sqrt(3), np.sqrt(3), (config["n"], 2))  # unit variance
    raw = mix(latent, config["scale"], config["correlation"])
    # both features matter, with opposite signs: the target lies along the correlated
    # features' difference, the direction of least variance (the valley floor)
    w_true = np.array([2.0, -3.0 / config["scale"]])
    y = raw @ w_true + 0.1 * rng.standard_normal(config["n"])
    y = (y - y.mean()).astype(np.float32)
    return preprocess(raw - raw.mean(axis=0)), y


def quadratic(x, y):
    """L(w) = mean((x w - y)^2): Hessian 2 x^T x / n, minimiser, minimum."""
    x = np.asarray(x, np.float64)
    hessian = 2 * x.T @ x / len(x)
    w_star = np.linalg.lstsq(x, np.asarray(y, np.float64), rcond=None)[0]
    loss_star = float(np.mean((x @ w_star - y) ** 2))
    eig = np.linalg.eigvalsh(hessian)
    return {"hessian": hessian, "w_star": w_star, "loss_star": loss_star,
            "eigenvalues": eig, "condition_number": float(eig[-1] / eig[0])}


def _steps_to(excess, tolerance) -> int | None:
    """First step (1-based) where the excess loss falls below ``tolerance`` x its start."""
    excess = np.nan_to_num(np.asarray(excess, np.float64), nan=np.inf)
    hit = np.flatnonzero(excess <= tolerance * excess[0])
    return int(hit[0]) if hit.size else None


def run_linear(config) -> dict:
    xs, y = linear_problem(config)
    net = fnn.Dense(1, use_bias=False, w_init=fnn.initializers.zeros)
    objective = fnn.supervised(net, fnn.losses.mse)
    train = trainer(objective, lambda lr: fnn.optim.sgd(lr), n=len(y),
                    batch_size=config["batch_size"], epochs=config["linear_epochs"],
                    record_params=True)
    lrs = np.asarray(config["learning_rates"], np.float32)
    data_x = np.stack([xs[p] for p in PREPROCESSING])               # (3, n, 2)
    params, state = net.init(jax.random.key(0), (2,))
    run = jax.vmap(jax.vmap(train, in_axes=(None, None, (None, None), 0, None)),  # lrs
                   in_axes=(None, None, (0, None), None, None))                  # preprocessing
    _, _, out = jax.jit(run)(params, state, (data_x, y[:, None]), lrs, jax.random.key(1))
    path = np.asarray(out["params"]["w"], np.float64)[..., 0]   # (3, lrs, epochs, steps, 2)
    path = path.reshape(len(PREPROCESSING), len(lrs), -1, 2)
    path = np.concatenate([np.zeros_like(path[:, :, :1]), path], axis=2)  # start at w = 0
    out = {}
    for i, p in enumerate(PREPROCESSING):
        q = quadratic(xs[p], y)
        residual = np.einsum("lsk,nk->lsn", path[i], np.asarray(xs[p], np.float64)) - y
        with np.errstate(over="ignore", invalid="ignore"):
            excess = np.mean(residual ** 2, axis=-1) - q["loss_star"]  # (lrs, steps + 1)
        final = np.where(np.isfinite(excess[:, -1]), excess[:, -1], np.inf)
        # each preprocessing's best rate: the one that reaches the tolerance in the fewest steps
        # (ties, or none reaching it: the lowest final excess loss)
        reach = [_steps_to(e, config["tolerance"]) for e in excess]
        best = min(range(len(lrs)), key=lambda i: (np.inf if reach[i] is None else reach[i],
                                                   final[i]))
        out[p] = {"condition_number": q["condition_number"],
                  "hessian_eigenvalues": q["eigenvalues"],
                  "w_star": q["w_star"], "loss_star": q["loss_star"],
                  "best_learning_rate": float(lrs[best]),
                  "final_excess_by_learning_rate": [float(v) if np.isfinite(v) else None
                                                    for v in final],
                  "steps_to_tolerance": _steps_to(excess[best], config["tolerance"]),
                  "excess_curve": excess[best], "path": path[i, best],
                  "x": np.asarray(xs[p])}
    out["learning_rates"] = lrs
    out["y"] = y
    return out


def mlp_problem(config):
    x, labels = playground("moons", n=config["n"], noise=0.1, seed=config["seed"])
    latent = (x - x.mean(0)) / x.std(0)
    return preprocess(mix(latent, config["scale"], config["correlation"])), labels


def run_mlp(config) -> dict:
    xs, labels = mlp_problem(config)
    net = fnn.MLP([*config["hidden"], 2], activation="tanh")
    objective = fnn.supervised(net)
    train = trainer(objective, lambda lr: fnn.optim.sgd(lr), n=len(labels),
                    batch_size=config["batch_size"], epochs=config["mlp_epochs"])
    lrs = np.asarray(config["learning_rates"], np.float32)
    params, state = net.init(jax.random.key(2), (2,))
    data_x = np.stack([xs[p] for p in PREPROCESSING])
    run = jax.vmap(jax.vmap(train, in_axes=(None, None, (None, None), 0, None)),
                   in_axes=(None, None, (0, None), None, None))
    _, _, losses = jax.jit(run)(params, state, (data_x, labels), lrs, jax.random.key(3))
    per_epoch = np.asarray(losses, np.float64).mean(axis=-1)        # (3, lrs, epochs)
    out = {}
    for i, p in enumerate(PREPROCESSING):
        final = np.where(np.isfinite(per_epoch[i, :, -1]), per_epoch[i, :, -1], np.inf)
        best = int(np.argmin(final))
        out[p] = {"best_learning_rate": float(lrs[best]), "final_loss": float(final[best]),
                  "final_loss_by_learning_rate": [float(v) if np.isfinite(v) else None
                                                  for v in final],
                  "curve": per_epoch[i, best]}
    return out


def run(config):
    linear = run_linear(config)
    mlp = run_mlp(config)
    steps = {p: linear[p]["steps_to_tolerance"] for p in PREPROCESSING}
    total = config["linear_epochs"] * (config["n"] // config["batch_size"])
    reach = lambda p: steps[p] if steps[p] is not None else total + 1
    kappa = {p: linear[p]["condition_number"] for p in PREPROCESSING}
    tol = config["tolerance"]
    checks = [
        check("condition number of the raw inputs' loss surface (the narrow valley)",
              kappa["raw"], ">=", 1e3),
        check("condition number after PCA whitening (a circle)", kappa["whitened"], "<=", 1.5),
        check(f"linear model, SGD at each one's best rate: steps to cut the excess loss to "
              f"{tol:g} of its start, raw / whitened (not reached = {total + 1})",
              reach("raw") / max(reach("whitened"), 1), ">=", 10.0),
        check("same, standardised / whitened (decorrelating helps a linear model)",
              reach("standardised") / max(reach("whitened"), 1), ">=", 2.0),
        check("tanh MLP, best final training loss: raw - the better of standardised / whitened",
              mlp["raw"]["final_loss"] - min(mlp["standardised"]["final_loss"],
                                             mlp["whitened"]["final_loss"]), ">", 0.0),
    ]
    result = {
        "claim": CLAIM, **verdict(checks),
        "condition_number": kappa,
        "linear": {p: {k: v for k, v in linear[p].items() if k not in ("x", "path")}
                   for p in PREPROCESSING},
        "linear_steps_to_tolerance": steps,
        "mlp": mlp,
        "learning_rates": linear["learning_rates"],
        "_figure_data": {"paths": {p: linear[p]["path"] for p in PREPROCESSING},
                         "x": {p: linear[p]["x"] for p in PREPROCESSING}, "y": linear["y"]},
    }
    fmt = lambda p: "never" if steps[p] is None else str(steps[p])
    result["summary"] = (
        "condition number raw {:.0f}, standardised {:.1f}, whitened {:.2f}; SGD steps to 1% excess "
        "loss (linear): raw {}, standardised {}, whitened {}; MLP final loss raw {:.3f}, "
        "standardised {:.3f}, whitened {:.3f}".format(
            kappa["raw"], kappa["standardised"], kappa["whitened"], fmt("raw"),
            fmt("standardised"), fmt("whitened"), mlp["raw"]["final_loss"],
            mlp["standardised"]["final_loss"], mlp["whitened"]["final_loss"]))
    result["checks_text"] = describe_checks(checks)
    return result


def _contour_panel(ax, x, y, path, info, title, equal=True, zoom=None):
    w_star = np.asarray(info["w_star"], np.float64)
    finite = path[np.all(np.isfinite(path), axis=1)]
    if zoom is None:
        pts = np.vstack([finite, w_star[None], np.zeros((1, 2))])
        centre = (pts.max(0) + pts.min(0)) / 2
        half = np.full(2, 0.6 * max(np.ptp(pts, axis=0).max(), 1e-3))
    else:  # the path's own extent, each axis on its own scale
        centre = (finite.max(0) + finite.min(0)) / 2
        half = 0.6 * np.maximum(np.ptp(finite, axis=0), 1e-6)
    g1, g2 = np.meshgrid(np.linspace(centre[0] - half[0], centre[0] + half[0], 200),
                         np.linspace(centre[1] - half[1], centre[1] + half[1], 200))
    w = np.stack([g1.ravel(), g2.ravel()], axis=1)
    loss = np.mean((x @ w.T - y[:, None]) ** 2, axis=0).reshape(g1.shape) - info["loss_star"]
    loss = np.maximum(loss, 1e-12)
    levels = np.logspace(np.log10(loss.min()) + 0.05, np.log10(loss.max()), 18)
    ax.contour(g1, g2, loss, levels=levels, colors="0.6", linewidths=0.7)
    ax.plot(path[:, 0], path[:, 1], ".-", color=plot.COLORS[1], lw=0.9, ms=2, label="SGD path")
    ax.plot(0, 0, "ko", ms=4, label="start")
    if zoom is None:
        ax.plot(*w_star, "k*", ms=12, label="minimum")
    ax.set_xlim(centre[0] - half[0], centre[0] + half[0])
    ax.set_ylim(centre[1] - half[1], centre[1] + half[1])
    if equal:
        ax.set_aspect("equal")
    ax.set_xlabel("w1")
    ax.set_ylabel("w2")
    ax.set_title(title, fontsize=9)
    ax.legend(frameon=True, framealpha=0.8, fontsize=7, loc="upper right")


def figures(results, out_dir):
    paths = []
    data = results["_figure_data"]
    y = np.asarray(data["y"], np.float64)
    fig, axes = plot.figure(4, size=(4.0, 4.0))
    panels = [("raw", True, None), ("raw", False, "zoom"), ("standardised", True, None),
              ("whitened", True, None)]
    for ax, (p, equal, zoom) in zip(axes, panels):
        info = results["linear"][p]
        steps = info["steps_to_tolerance"]
        reached = "never reaches 1% excess" if steps is None else f"1% excess after {steps} steps"
        title = (f"{p}: condition number {info['condition_number']:.3g}\n"
                 f"lr {info['best_learning_rate']:.2g}, {reached}")
        if zoom:
            title = "raw, zoomed on the path (w2 stretched):\nSGD zig-zags across the valley"
        _contour_panel(ax, np.asarray(data["x"][p], np.float64), y,
                       np.asarray(data["paths"][p], np.float64), info, title, equal, zoom)
    fig.suptitle("loss contours of y = w1 x1 + w2 x2 and the path of minibatch SGD", fontsize=10)
    paths.append(plot.save(fig, f"{out_dir}/loss_surface.png"))

    fig, (ax_lin, ax_mlp) = plot.figure(2, size=(5.2, 4.0))
    excess = lambda p: np.maximum(np.asarray(results["linear"][p]["excess_curve"], np.float64),
                                  1e-12)
    plot.loss_curves(ax_lin, {f"{p} (lr {results['linear'][p]['best_learning_rate']:.2g})":
                              excess(p) for p in PREPROCESSING},
                     xlabel="SGD step", ylabel="loss - minimum",
                     title="linear model: excess loss (best rate each)")
    plot.loss_curves(ax_mlp, {f"{p} (lr {results['mlp'][p]['best_learning_rate']:.2g})":
                              np.asarray(results["mlp"][p]["curve"], np.float64)
                              for p in PREPROCESSING},
                     xlabel="epoch", ylabel="training loss",
                     title="tanh MLP on two moons: SGD (best rate each)")
    paths.append(plot.save(fig, f"{out_dir}/loss_curves.png"))
    return paths
