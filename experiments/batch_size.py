"""Batch size (seeds 002 and 004): full-batch gradient descent vs mini-batches of 128, 64 and 32
vs single-sample SGD, the same MLP and learning rate on the digits.

* Per-step vs per-epoch curves: the loss of each minibatch jumps up and down from step to
  step; its mean over an epoch (what ``fnn.fit`` reports) falls smoothly.
* At equal epochs: smaller batches make more updates per pass, so they get further.
* At equal wall time: full batch makes one (large) step per epoch and falls behind. The notes
  make no claim about single-sample SGD's speed; it is measured and reported (on a CPU a tiny
  step costs microseconds, so it does well here; on an accelerator each step has a fixed
  launch cost and large batches use the parallel hardware).
The training-set loss is evaluated (full batch, evaluation mode) after every epoch. Full
batch runs as many epochs as mini-batch 32 makes steps, so that its curve covers the same
wall time. Timings are measured here (after compilation) and vary between machines.
"""
from __future__ import annotations

import time

import jax
import numpy as np

import fnn
from experiments._training import trainer
from fnn.app.claims import check, claim, describe_checks, verdict
from fnn import plot
from fnn.data import load_digits

DESCRIPTION = "full batch vs 128/64/32 vs single-sample SGD: equal epochs, equal time, noise"

CONFIG = {"batch_sizes": [None, 128, 64, 32, 1], "epochs": 30, "learning_rate": 0.05,
          "hidden": [64], "seed": 0, "timing_repeats": 3}
QUICK = {"batch_sizes": [None, 32, 1], "epochs": 3, "timing_repeats": 1}

CLAIM = claim(
    "所有的样本都跑完一遍，叫做一个epoch。与 batch 不同，batch是一次迭代所用的样本数量。因此，以epoch为单位，感觉还是"
    "比较平滑的，以batch为单位就看起来非常的震荡。……Mini Batch SGD：一次选32、64、或128个样本进行SGD。",
    "One pass over all the samples is called an epoch; unlike it, a batch is the number of "
    "samples used in one iteration. So measured per epoch the curve looks fairly smooth, "
    "measured per batch it looks very jumpy. ... Mini-batch SGD: pick 32, 64 or 128 samples at "
    "a time for SGD.", "seed 002, 训练网络的时候还有什么需要注意的 / Mini Batch SGD; seed 004, iteration / epoch")


def label(batch_size) -> str:
    return "full batch" if batch_size is None else ("single sample" if batch_size == 1
                                                     else f"batch {batch_size}")


def rising_fraction(curve) -> float:
    """Fraction of consecutive points where the curve goes up (0: smooth descent)."""
    d = np.diff(np.asarray(curve, np.float64))
    return float(np.mean(d > 0)) if d.size else 0.0


def run_batch_size(batch_size, epochs, config, digits, params, state) -> dict:
    net = fnn.MLP([*config["hidden"], 10])
    objective = fnn.supervised(net)
    n = len(digits.y_train)
    train = trainer(objective, lambda lr: fnn.optim.sgd(lr), n=n, batch_size=batch_size,
                    epochs=epochs, evaluate=True)
    data = (digits.x_train, digits.y_train)
    run = jax.jit(lambda p, s, d, k: train(p, s, d, config["learning_rate"], k, d))
    key = jax.random.key(config["seed"])
    out = jax.block_until_ready(run(params, state, data, key))     # compile + run
    seconds = []
    for _ in range(config["timing_repeats"]):
        start = time.perf_counter()
        jax.block_until_ready(run(params, state, data, key))
        seconds.append(time.perf_counter() - start)
    _, _, out = out
    steps = np.asarray(out["loss"], np.float64)                      # (epochs, steps)
    initial = float(objective(params, state, data, None, False)[0])
    return {"batch_size": batch_size, "steps_per_epoch": int(steps.shape[1]),
            "seconds_per_epoch": float(np.median(seconds)) / epochs,
            "train_loss": np.concatenate([[initial], np.asarray(out["eval"], np.float64)]),
            "step_loss": steps.ravel(), "epoch_mean_loss": steps.mean(axis=1)}


def loss_at(row, seconds: float) -> float:
    """The training loss at the last epoch completed within ``seconds`` of wall time."""
    done = int(np.floor(seconds / row["seconds_per_epoch"] + 1e-9))
    return float(row["train_loss"][min(done, len(row["train_loss"]) - 1)])


def run(config):
    digits = load_digits()
    net = fnn.MLP([*config["hidden"], 10])
    params, state = net.init(jax.random.key(config["seed"]), (64,))   # the same start for all
    n, epochs = len(digits.y_train), config["epochs"]
    smallest_mini = min([b for b in config["batch_sizes"] if b not in (None, 1)] or [32])
    rows = {}
    for b in config["batch_sizes"]:
        e = epochs * (n // smallest_mini) if b is None else epochs   # full batch: equal steps too
        rows[label(b)] = run_batch_size(b, e, config, digits, params, state)

    equal_epochs = {k: float(r["train_loss"][epochs]) for k, r in rows.items()}
    budget = min(r["seconds_per_epoch"] * (len(r["train_loss"]) - 1) for r in rows.values())
    equal_time = {k: loss_at(r, budget) for k, r in rows.items()}
    noise = {k: {"rising_steps": rising_fraction(r["step_loss"]),
                 "rising_epochs": rising_fraction(r["epoch_mean_loss"][:epochs]),
                 "rising_epochs_full_set": rising_fraction(r["train_loss"][: epochs + 1])}
             for k, r in rows.items()}
    minis = [label(b) for b in config["batch_sizes"] if b not in (None, 1)]
    checks = []
    if minis:
        m = minis[-1]
        checks += [check(f"{m}: fraction of steps whose minibatch loss rises (jumpy)",
                         noise[m]["rising_steps"], ">=", 0.3),
                   check(f"{m}: fraction of epochs whose mean loss rises (smooth)",
                         noise[m]["rising_epochs"], "<=", 0.1)]
        best_e = min(minis, key=lambda k: equal_epochs[k])
        best_t = min(minis, key=lambda k: equal_time[k])
        if "full batch" in rows:
            checks += [check(f"after {epochs} epochs: best mini-batch's ({best_e}) training loss "
                             f"/ full batch's", equal_epochs[best_e] / equal_epochs["full batch"],
                             "<", 1.0),
                       check(f"after {budget:.3g} s: best mini-batch's ({best_t}) training loss / "
                             f"full batch's", equal_time[best_t] / equal_time["full batch"],
                             "<", 1.0)]
    for k, r in rows.items():  # per-step losses are kept for the mini-batches (the figure's)
        if k in ("full batch", "single sample"):
            del r["step_loss"]
    result = {"claim": CLAIM, **verdict(checks), "runs": rows,
              "train_loss_at_equal_epochs": equal_epochs, "epochs": epochs,
              "train_loss_at_equal_time": equal_time, "time_budget_seconds": budget,
              "seconds_per_epoch": {k: r["seconds_per_epoch"] for k, r in rows.items()},
              "noise": noise}
    result["summary"] = (
        f"after {epochs} epochs: " + ", ".join(f"{k} {v:.3f}" for k, v in equal_epochs.items())
        + f"; after {budget * 1e3:.0f} ms: "
        + ", ".join(f"{k} {v:.3f}" for k, v in equal_time.items())
        + (f"; {minis[-1]}: loss rises on {100 * noise[minis[-1]]['rising_steps']:.0f}% of steps, "
           f"{100 * noise[minis[-1]]['rising_epochs']:.0f}% of epochs" if minis else "")
        + "; ms/epoch " + ", ".join(f"{k} {1e3 * r['seconds_per_epoch']:.2g}"
                                    for k, r in rows.items()))
    result["checks_text"] = describe_checks(checks)
    return result


def figures(results, out_dir):
    paths = []
    runs = results["runs"]
    epochs = results["epochs"]
    fig, axes = plot.figure(3, size=(4.8, 3.9))
    ax_steps, ax_epochs, ax_time = axes
    # per step vs per epoch, for one mini-batch size
    minis = [k for k in runs if k.startswith("batch")]
    k = minis[-1] if minis else next(iter(runs))
    r = runs[k]
    steps = np.asarray(r.get("step_loss", r["epoch_mean_loss"]), np.float64)
    spe = r["steps_per_epoch"]
    ax_steps.plot(np.arange(1, len(steps) + 1) / spe, steps, color=plot.COLORS[0], lw=0.6,
                  alpha=0.8, label=f"{k}: loss of each step's minibatch")
    ax_steps.plot(np.arange(1, epochs + 1), np.asarray(r["epoch_mean_loss"], np.float64)[:epochs],
                  "o-", color=plot.COLORS[1], lw=2, ms=4, label="its mean over each epoch")
    noise = results["noise"][k]
    ax_steps.set_title(f"per step: rises on {100 * noise['rising_steps']:.0f}% of steps;\n"
                       f"per epoch: rises on {100 * noise['rising_epochs']:.0f}% of epochs",
                       fontsize=9)
    plot.decorate(ax_steps, xlabel="epoch", ylabel="training loss", logy=True, legend_size=7,
                  integer_x=True)

    for i, (name, row) in enumerate(runs.items()):
        loss = np.asarray(row["train_loss"], np.float64)
        ax_epochs.plot(np.arange(0, epochs + 1), loss[: epochs + 1], color=plot.COLORS[i],
                       label=f"{name} ({row['steps_per_epoch']} step"
                             f"{'s' if row['steps_per_epoch'] != 1 else ''}/epoch)")
        ax_time.plot(np.arange(len(loss)) * row["seconds_per_epoch"] * 1e3, loss,
                     color=plot.COLORS[i],
                     label=f"{name} ({row['seconds_per_epoch'] * 1e3:.2g} ms/epoch)")
    plot.decorate(ax_epochs, xlabel="epoch", ylabel="training-set loss (full pass)",
                  title="equal epochs", logy=True, legend_size=7, integer_x=True)
    budget = results["time_budget_seconds"] * 1e3
    ax_time.axvline(budget, color="k", ls=":", lw=1, label=f"equal-time budget {budget:.3g} ms")
    ax_time.set_xlim(0, 3 * budget)
    plot.decorate(ax_time, xlabel="wall time (ms, measured, after compilation)",
                  title="equal wall time", logy=True, legend_size=7)
    paths.append(plot.save(fig, f"{out_dir}/batch_size.png"))
    return paths
