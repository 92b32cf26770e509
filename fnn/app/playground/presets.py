"""The seed note's two questions as one-click presets, each with an explanation computed from
the run it makes.

* ``oscillation`` ("why does the output keep oscillating violently?"): the same network at
  learning rates 0.01 .. 3 with batch size 1, compared (``fnn.sweep``); the explanation
  measures each run's epoch-to-epoch jitter of the training loss over its last half,
  J = mean |L_t - L_{t-1}|, and names the calmest and the wildest.
* ``collapse`` ("with learning rate 1 the weights on every link became tiny"): ReLU at
  learning rate 1, trained live; the explanation reads the per-layer weight and gradient
  norms over time and the dead ReLU units (output 0 on every training point: no gradient
  reaches their weights again).
"""
from __future__ import annotations

import numpy as np

__all__ = ["PRESETS", "jitter", "explain_oscillation", "explain_collapse"]

PRESETS = {
    "oscillation": {"config": {"dataset": "spiral", "networkShape": [8, 8], "activation": "tanh",
                               "batchSize": 1, "learningRate": 0.03, "noise": 10,
                               "optimizer": "sgd", "regularization": "none",
                               "xSquared": False, "ySquared": False, "xTimesY": False,
                               "sinX": False, "sinY": False, "x": True, "y": True},
                    "compare": {"key": "learningRate", "values": [0.01, 0.1, 0.3, 1.0, 3.0],
                                "epochs": 150},
                    # then, at learning rate 0.3, what a larger batch does
                    "batch": {"learningRate": 0.3, "key": "batchSize", "values": [1, 10, 50],
                              "epochs": 100}},
    "collapse": {"config": {"dataset": "circle", "networkShape": [8, 8, 8],
                            "activation": "relu", "learningRate": 1.0, "batchSize": 10,
                            "optimizer": "sgd", "regularization": "none", "noise": 0},
                 "epochs": 300},
}


def jitter(curve) -> float:
    """J = mean |L_t - L_{t-1}| over the second half of a loss curve (inf when it diverged)."""
    c = np.asarray([np.nan if v is None else v for v in curve], np.float64)
    c = c[len(c) // 2:]
    if c.size < 2 or not np.all(np.isfinite(c)):
        return float("inf")
    return float(np.mean(np.abs(np.diff(c))))


def explain_oscillation(result: dict, batches: dict | None = None) -> str:
    """The text for the ``oscillation`` preset from its learning-rate comparison ``result``
    and (optional) its batch-size comparison ``batches`` (as ``compare`` returns it, plus the
    ``learningRate`` it ran at)."""
    js = [(v["value"], jitter(v["loss"])) for v in result["variants"]]
    text = "; ".join(f"lr {v:g}: " + ("diverged" if j == float("inf") else f"{j:.3f}")
                     for v, j in js)
    calm = min(js, key=lambda t: t[1])
    wild = max(js, key=lambda t: t[1])
    return (f"Mean epoch-to-epoch jump of the training loss over the second half of the run: "
            f"{text}. With batch size 1 every step follows a single point's gradient, and "
            f"the step is learning rate x that gradient: at lr {wild[0]:g} each step "
            f"overshoots, so the surface flips back and forth; lr {calm[0]:g} is the calmest. "
            f"A smaller learning rate or a larger batch (an average over more points, a "
            f"less noisy gradient) calms it." + ("" if batches is None else
            f" At lr {batches['learningRate']:g} by batch size: " + "; ".join(
                f"batch {v['value']}: {jitter(v['loss']):.3f}"
                for v in batches["variants"]) + "."))


def explain_collapse(session) -> str:
    hist = session.norm_history
    first, last = hist[0], hist[-1]
    layers = "; ".join(
        f"layer {i + 1}: |W| {a:.3g} -> " + ("nan" if b is None else f"{b:.3g}")
        + ("" if g is None else f", |grad| {g:.2g}")
        for i, (a, b, g) in enumerate(zip(first["weight"], last["weight"], last["grad"])))
    dead = session.snapshot()["dead"]
    n_dead, n_units = sum(len(d) for d in dead), sum(session.config["networkShape"])
    shape = session.config["networkShape"]
    whole = [i + 1 for i, (d, n) in enumerate(zip(dead, shape)) if len(d) == n]
    if session.diverged:
        head = f"The loss became NaN (diverged) by epoch {session.epoch}."
    else:
        head = f"After {session.epoch} epochs at learning rate {session.config['learningRate']:g}:"
    grads = [g for g in last["grad"] if g is not None]
    stopped = (f" Every unit of hidden layer {whole[0]} is dead, so the output is a constant "
               f"(a blank map) and every gradient is 0: training has stopped, the links keep "
               f"whatever weights they had." if whole else "")
    return (f"{head} {layers}. {n_dead} of {n_units} ReLU units are dead (output 0 on every "
            f"training point, so no gradient reaches their weights again).{stopped} One step "
            f"of lr 1 x gradient overshoots and pushes units below zero for every point; they "
            f"never come back (largest gradient now {max(grads, default=0):.2g}). "
            f"A smaller learning rate (0.03) or tanh avoids it.")
