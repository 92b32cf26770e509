"""The learning rate (seed 002's TensorFlow Playground notes): the same ReLU net, the same
initial weights, full-batch gradient descent at learning rates from 1e-4 to 10, on the
playground's spiral and circle.

Too small is slow, a good rate converges, a larger one makes the loss oscillate, the largest
diverges (non-finite losses are recorded as diverged and drawn clipped). The notes' other
Playground observation - at learning rate 1 "the output disappeared and the weights were all
tiny" - is looked for too: a run whose output no longer depends on the input (every ReLU unit
of a layer dead).

The same grid is then run over ``seeds`` initialisations, learning rates x seeds in one
``fnn.sweep`` per set: the median final loss per rate with its min-max band over seeds
(diverged runs counted, not averaged), to see which of the one-initialisation findings hold
for other starts.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from experiments import _lr_curves
from experiments._helpers import finite_or_none
from experiments._training import trainer
from fnn.app.claims import check, claim, describe_checks, verdict
from fnn import plot
from fnn.data import playground

DESCRIPTION = "learning rates 1e-4..10 on one net: slow / good / oscillating / diverging / dead"

CONFIG = {"learning_rates": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0],
          "datasets": ["circle", "spiral"], "n": 400, "noise": 0.05, "hidden": [16, 16],
          "steps": 1000, "seed": 0, "oscillation": 0.25, "slow": 0.9, "seeds": 5}
QUICK = {"learning_rates": [1e-4, 1e-2, 1.0, 3.0, 10.0], "steps": 150, "seeds": 3}

CLAIM = claim(
    "（tensorflow playground）刚尝试了一组，但是不知道为什么输出一直在震荡，而且震荡的非常厉害，什么原因呢？"
    "……还有一次learning rate设置为1，算着算着没有了，看了下线上的 w 都非常小。",
    "(TensorFlow Playground) I tried a setting and, for some reason, the output kept "
    "oscillating, and violently - why? ... Another time, with the learning rate set to 1, the "
    "output disappeared part-way through training; the weights on the connections were all "
    "very small. (The usual answer, tested here: a learning rate that is too large makes the "
    "loss oscillate or diverge, one that is too small is slow.)",
    "seed 002, 一个很Nice的网站：tensorflow playground")


def _rounded(values) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in np.asarray(values, np.float64)) + "]"


def classify(curve, initial: float, config) -> str:
    """diverged (non-finite, or ending at or above the initial loss) > oscillating (the loss
    rises on >= ``oscillation`` of the steps) > slow (ends above ``slow`` x the initial loss)
    > good."""
    curve = np.asarray(curve, np.float64)
    if not np.all(np.isfinite(curve)) or curve[-1] >= initial:
        return "diverged"
    if np.mean(np.diff(curve) > 0) >= config["oscillation"]:
        return "oscillating"
    if curve[-1] >= config["slow"] * initial:
        return "slow"
    return "good"


def run(config):
    sets = [playground(d, n=config["n"], noise=config["noise"], seed=config["seed"])
            for d in config["datasets"]]
    xs = np.stack([s[0] for s in sets])
    ys = np.stack([s[1] for s in sets])
    lrs = np.asarray(config["learning_rates"], np.float32)
    net = fnn.MLP([*config["hidden"], 2])
    params, state = net.init(jax.random.key(config["seed"]), (2,))  # the same start for all
    objective = fnn.supervised(net)
    train = trainer(objective, lambda lr: fnn.optim.sgd(lr), n=config["n"], batch_size=None,
                    epochs=config["steps"])
    depth = len(config["hidden"])

    @jax.jit
    def sweep(params, state, xs, ys, lrs):
        per_lr = jax.vmap(train, in_axes=(None, None, None, 0, None))
        final, _, losses = jax.vmap(per_lr, in_axes=(None, None, (0, 0), None, None))(
            params, state, (xs, ys), lrs, jax.random.key(1))

        def analyse(p, x):
            h, dead = x, []
            for i in range(depth):
                z = h @ p[f"dense_{i}"]["w"] + p[f"dense_{i}"]["b"][None]
                dead.append(jnp.mean(jnp.all(z <= 0, axis=0).astype(jnp.float32)))
                h = fnn.relu(z)
            out = net(p, x)
            mean_abs_w = jnp.stack([jnp.mean(jnp.abs(p[f"dense_{i}"]["w"]))
                                    for i in range(depth + 1)])
            return jnp.stack(dead), jnp.std(out[:, 1] - out[:, 0]), mean_abs_w

        stats = jax.vmap(jax.vmap(analyse, in_axes=(0, None)), in_axes=(0, 0))(final, xs)
        return losses[..., 0], stats

    losses, (dead, out_std, mean_abs_w) = jax.device_get(sweep(params, state, xs, ys, lrs))
    losses = np.asarray(losses, np.float64)                       # (datasets, lrs, steps)
    w0 = [float(np.mean(np.abs(np.asarray(params[f"dense_{i}"]["w"])))) for i in range(depth + 1)]
    results = {}
    for d, name in enumerate(config["datasets"]):
        initial = float(losses[d, 0, 0])
        rows = {}
        for i, lr in enumerate(config["learning_rates"]):
            curve = losses[d, i]
            finite = curve[np.isfinite(curve)]
            rows[f"{lr:g}"] = {
                "learning_rate": lr,
                "kind": classify(curve, initial, config),
                # the notes' "the output disappeared": the logits no longer depend on the input
                "output_died": bool(np.isfinite(out_std[d, i]) and out_std[d, i] < 1e-3),
                "final_loss": float(curve[-1]) if np.isfinite(curve[-1]) else None,
                "best_loss": float(finite.min()) if finite.size else None,
                "rising_step_fraction": (float(np.mean(np.diff(finite) > 0))
                                         if finite.size > 1 else None),
                "first_nonfinite_step": int(np.flatnonzero(~np.isfinite(curve))[0]) + 1
                if not np.all(np.isfinite(curve)) else None,
                "output_std": float(out_std[d, i]) if np.isfinite(out_std[d, i]) else None,
                "dead_relu_fraction_per_layer": dead[d, i],
                "mean_abs_weight_per_layer": mean_abs_w[d, i],
                "curve": finite_or_none(curve),
            }
        results[name] = {"initial_loss": initial, "by_learning_rate": rows,
                         "kinds": {k: r["kind"] for k, r in rows.items()}}

    main = results[config["datasets"][0]]
    rows = list(main["by_learning_rate"].values())
    finals = [r["final_loss"] if r["kind"] != "diverged" and r["final_loss"] is not None
              else np.inf for r in rows]
    best = int(np.argmin(finals))
    main["best_learning_rate"] = rows[best]["learning_rate"]
    dead_runs = [f"{name} lr {k}" for name, r in results.items()
                 for k, row in r["by_learning_rate"].items() if row["output_died"]]
    first = config["datasets"][0]
    checks = [
        check(f"{first}: final / initial loss at the smallest rate {rows[0]['learning_rate']:g} "
              f"(too small: slow)", (rows[0]["final_loss"] or np.inf) / main["initial_loss"],
              ">=", config["slow"]),
        check(f"{first}: index of the best rate in the grid (strictly inside: both ends worse)",
              best, ">", 0),
        check(f"{first}: index of the best rate, counted from the largest", len(rows) - 1 - best,
              ">", 0),
        check(f"{first}: rates whose loss oscillates (rises on >= "
              f"{config['oscillation']:.0%} of the steps without diverging)",
              sum(r["kind"] == "oscillating" for r in rows), ">=", 1),
        check(f"{first}: the largest rate {rows[-1]['learning_rate']:g} diverges",
              rows[-1]["kind"] == "diverged", "==", True),
        check("runs (any set) whose output died - constant whatever the input, every ReLU of a "
              "layer dead - the notes' 'the output disappeared'", len(dead_runs), ">=", 1),
    ]
    out = {"claim": CLAIM, **verdict(checks), "datasets": results,
           "initial_mean_abs_weight_per_layer": w0,
           "runs_whose_output_died": dead_runs,
           "kinds": {name: r["kinds"] for name, r in results.items()}}
    out["summary"] = "; ".join(
        f"{name}: " + ", ".join(f"{k} {v}" for k, v in r["kinds"].items())
        for name, r in results.items()) + (
        f"; output died (constant, all ReLUs of a layer dead) at: {', '.join(dead_runs)} "
        f"(mean |w| per layer there vs at init {_rounded(w0)}: "
        + ", ".join(_rounded(results[k.split(' lr ')[0]]['by_learning_rate'][k.split(' lr ')[1]]
                             ['mean_abs_weight_per_layer']) for k in dead_runs)
        + ")" if dead_runs else "; no run's output died")
    out["checks_text"] = describe_checks(checks)
    out["over_seeds"] = over_seeds(config, sets, net, objective)
    out["summary"] += "; " + _seeds_sentence(out["over_seeds"])
    return out


def over_seeds(config, sets, net, objective) -> dict:
    """Per set, one ``fnn.sweep`` over learning rates x ``config['seeds']`` seeds (seed ``s``:
    its own initialisation ``net.init(key(s))``; seed ``config['seed']`` is the start used
    above), full-batch as above; the final loss per rate: median, min-max band, diverged count
    (non-finite, or not below that run's initial loss, as in :func:`classify`)."""
    n_seeds, lrs = config["seeds"], config["learning_rates"]
    lr_runs, seed_runs = _lr_curves.grid(lrs, n_seeds, config["seed"])
    init = lambda key: net.init(key, (2,))[0]
    out = {"seeds": [int(s) for s in seed_runs[:n_seeds]], "runs_per_set": int(lr_runs.size),
           "datasets": {}}
    for name, (x, y) in zip(config["datasets"], sets):
        start = time.perf_counter()
        res = fnn.sweep(objective, init, fnn.optim.sgd, (x, y), seeds=seed_runs,
                        hparams={"learning_rate": lr_runs}, epochs=config["steps"])
        seconds = time.perf_counter() - start
        loss = np.asarray(res.history["loss"], np.float64).reshape(len(lrs), n_seeds, -1)
        initial, final = loss[..., 0], loss[..., -1]  # each epoch's loss is before its step
        diverged = ~np.isfinite(final) | (final >= initial)
        rows = _lr_curves.band(final, diverged)
        best = _lr_curves.best(rows)
        out["datasets"][name] = {
            "initial_loss": finite_or_none(initial[0]),
            "by_learning_rate": {f"{lr:g}": {"learning_rate": lr, "runs": n_seeds, **row}
                                 for lr, row in zip(lrs, rows)},
            "best_learning_rate": None if best is None else lrs[best],
            "diverged_runs": int(diverged.sum()),
            "seconds": seconds,  # the first set's includes the compilation
        }
    return out


def _seeds_sentence(seeds: dict) -> str:
    n_seeds, parts = len(seeds["seeds"]), []
    for name, d in seeds["datasets"].items():
        rows = d["by_learning_rate"]
        if d["best_learning_rate"] is None:
            parts.append(f"{name}: every rate has a diverged run")
            continue
        b = rows[f"{d['best_learning_rate']:g}"]
        diverged = [k for k, r in rows.items() if r["diverged"]]
        parts.append(f"{name}: lowest median final loss at lr {d['best_learning_rate']:g} "
                     f"({b['median']:.2g}, seeds {b['min']:.2g}-{b['max']:.2g}), "
                     f"{d['diverged_runs']} run(s) diverged"
                     + (f" (at lr {', '.join(diverged)})" if diverged else ""))
    return (f"over {n_seeds} initialisations (one fnn.sweep of {seeds['runs_per_set']} runs per "
            f"set): " + "; ".join(parts))


COLORS_BY_KIND = {"slow": "#7f7f7f", "good": "#2ca02c", "oscillating": "#ff7f0e",
                  "diverged": "#d62728"}


def figures(results, out_dir):
    paths = []
    datasets = results["datasets"]
    fig, axes = plot.figure(2, len(datasets), size=(5.0, 3.8))
    axes = np.asarray(axes).reshape(len(datasets), 2)
    for r, (name, data) in enumerate(datasets.items()):
        ax_final, ax_curves = axes[r]
        rows = list(data["by_learning_rate"].values())
        clip = 10 * data["initial_loss"]
        for row in rows:
            value = row["final_loss"]
            shown = clip if value is None or value > clip else value
            ax_final.plot(row["learning_rate"], shown, "o", ms=8, color=COLORS_BY_KIND[row["kind"]],
                          markerfacecolor="none" if value is None or value > clip else None)
            if row.get("output_died"):
                ax_final.plot(row["learning_rate"], shown, "kx", ms=12)
        ax_final.plot([r_["learning_rate"] for r_ in rows],
                      [min(r_["final_loss"] if r_["final_loss"] is not None else clip, clip)
                       for r_ in rows], color="0.7", lw=1, zorder=0)
        for kind, color in COLORS_BY_KIND.items():
            ax_final.plot([], [], "o", color=color, label=kind)
        ax_final.plot([], [], "kx", ms=10, label="output died (constant)")
        ax_final.axhline(data["initial_loss"], color="k", ls=":", lw=1, label="initial loss")
        plot.log_scale(ax_final, "x")
        plot.decorate(ax_final, xlabel="learning rate",
                      ylabel=f"final loss (clipped at {clip:.2g}; open = clipped)",
                      title=f"{name}: final loss after {len(rows[0]['curve'])} steps",
                      logy=True, legend_size=7)

        shown = {}
        for kind in ("slow", "good", "oscillating", "diverged"):
            match = [row for row in rows if row["kind"] == kind]
            if match:  # the largest rate of each kind
                shown[kind] = match[-1]
        for kind, row in shown.items():
            curve = np.asarray([clip if v is None else min(v, clip) for v in row["curve"]])
            ax_curves.plot(np.arange(1, len(curve) + 1), curve, color=COLORS_BY_KIND[kind], lw=1.2,
                           label=f"lr {row['learning_rate']:g}: {kind}")
        plot.decorate(ax_curves, xlabel="step (full batch)", ylabel="training loss (clipped)",
                      title=f"{name}: one curve per behaviour", logy=True, legend_size=7)
    paths.append(plot.save(fig, f"{out_dir}/learning_rate.png"))
    paths.append(_seeds_figure(results["over_seeds"], out_dir))
    return paths


def _seeds_figure(seeds: dict, out_dir) -> str:
    sets = seeds["datasets"]
    fig, axes = plot.figure(len(sets), size=(5.0, 3.8))
    for ax, (name, d) in zip(np.atleast_1d(axes), sets.items()):
        rows = list(d["by_learning_rate"].values())
        initial = [v for v in d["initial_loss"] if v is not None]
        clip = 10 * max(initial)
        _lr_curves.draw(ax, [r["learning_rate"] for r in rows], rows, color=plot.COLORS[0],
                        label="median over seeds (band: min-max)", clip=clip, points=True)
        ax.plot([], [], "x", color=plot.COLORS[0], label="diverged run (label: count/seeds)")
        ax.axhline(float(np.median(initial)), color="k", ls=":", lw=1, label="initial loss")
        plot.log_scale(ax, "x")
        plot.decorate(ax, xlabel="learning rate",
                      ylabel=f"final loss (clipped at {clip:.2g})", logy=True, legend_size=7,
                      title=f"{name}: {len(initial)} seeds, each its own init")
    return plot.save(fig, f"{out_dir}/learning_rate_seeds.png")
