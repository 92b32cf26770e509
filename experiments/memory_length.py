"""How far back can a recurrent network remember? SimpleRNN vs LSTM vs GRU on the adding problem.

Seed 000 says: "a plain RNN's results get much worse once sequences reach about 100 steps,
which is why the LSTM was designed; an LSTM handles sequences of about 300". Here each cell
(same hidden size, same optimizer steps and batch size) learns the adding problem
(Hochreiter & Schmidhuber 1997: remember two marked values, one in each half of the
sequence, and output their sum) for T = 25 ... 300; always predicting 1 scores MSE 1/6.

Budget (full config): hidden 32, 2500 Adam steps of batch 32 (10 epochs of 8000 sequences),
gradients clipped to global norm 1, per cell and length: 15 runs, about 3 minutes on two
CPU cores. Learning rates per cell from a sweep over {1e-3, 3e-3, 1e-2} at this budget: the
tanh RNN needs 3e-3 (at 1e-2 it does not even learn T = 25); LSTM and GRU use 1e-2 (at 3e-3
the LSTM does not escape the plateau at T = 300 within 2500 steps).

Also measured, at initialisation: the gradient reaching each input step, ||dl/dx_t|| for
each example's squared error l (mean over the test set). It shrinks geometrically going back
in time (vanishing gradients) for every cell, at a rate set by the recurrence: the tanh RNN
by its Jacobian diag(1 - h^2) W_hh, the LSTM by its forget gate (sigmoid(1) = 0.73 with the
forget bias of 1: the slowest decay), the GRU by its update gate (sigmoid(0) = 0.5 at a zero
bias: the fastest). The gated cells learn to open their gates (f, z -> 1) and with them an
additive path back to the first marker; the RNN has no such path.

The claim is scored from the numbers: a length is *solved* when the test MSE is below 10% of
the baseline (90% of the variance explained) and *failed* when above 50% of it.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn import plot
from fnn.data.sequences import ADDING_BASELINE_MSE, adding_problem

DESCRIPTION = "SimpleRNN vs LSTM vs GRU on the adding problem, T = 25..300 (seed 000's 100 vs 300)"
CONFIG = {"lengths": [25, 50, 100, 200, 300], "cells": ["rnn", "lstm", "gru"], "hidden": 32,
          "steps": 2500, "batch_size": 32, "train_size": 8000, "test_size": 1000,
          "learning_rates": {"rnn": 3e-3, "lstm": 1e-2, "gru": 1e-2}, "clip_norm": 1.0, "seed": 0}
QUICK = {"lengths": [12], "hidden": 8, "steps": 40, "batch_size": 16, "train_size": 320,
         "test_size": 200}
CLAIM = ("seed 000: a plain RNN degrades near sequence length 100, while an LSTM copes with "
         "sequences of about 300")
SOLVED, FAILED = 0.1 * ADDING_BASELINE_MSE, 0.5 * ADDING_BASELINE_MSE


def make_cell(kind: str, hidden: int):
    cells = {"rnn": fnn.SimpleRNNCell, "lstm": fnn.LSTMCell, "gru": fnn.GRUCell}
    if kind not in cells:
        raise ValueError(f"memory_length: unknown cell {kind!r}; expected one of {sorted(cells)}")
    return cells[kind](hidden)


def network(kind: str, hidden: int):
    """cell over the sequence -> last state -> Dense(1)."""
    return fnn.serial(fnn.Recurrent(make_cell(kind, hidden), return_sequences=False),
                      fnn.Dense(1))


def diagnostics(net):
    """A jitted ``(params, x, y) -> (mse, g)`` for x (B, T, 2), y (B, 1): the batch's MSE and
    g_t = mean_i ||d l_i / d x_{i,t}||, t = 1..T, the gradient of each example's squared
    error l_i w.r.t. its input at step t (B dL/dx, since L = mean_i l_i). One compilation
    serves before and after training."""
    def f(params, x, y):
        loss, grad = jax.value_and_grad(lambda x: fnn.losses.mse(net(params, x), y))(x)
        return loss, x.shape[0] * jnp.mean(jnp.linalg.norm(grad, axis=-1), axis=0)
    return jax.jit(f)


def run(config):
    rows = {kind: {} for kind in config["cells"]}
    grad_curves = {kind: {} for kind in config["cells"]}
    curves = {kind: {} for kind in config["cells"]}
    epochs = max(1, config["steps"] * config["batch_size"] // config["train_size"])
    for i, length in enumerate(config["lengths"]):
        x, y = adding_problem(config["train_size"], length, seed=config["seed"] + 1 + 2 * i)
        xt, yt = adding_problem(config["test_size"], length, seed=config["seed"] + 2 + 2 * i)
        xt, yt = jnp.asarray(xt), jnp.asarray(yt)
        for kind in config["cells"]:
            net = network(kind, config["hidden"])
            params, _ = net.init(jax.random.key(config["seed"]), (length, 2))
            measure = diagnostics(net)
            _, norms = measure(params, xt, yt)
            norms = np.asarray(norms)
            lr = config["learning_rates"][kind]
            opt = fnn.optim.chain(fnn.optim.clip_by_global_norm(config["clip_norm"]),
                                  fnn.optim.adam(lr))
            start = time.perf_counter()
            result = fnn.fit(fnn.supervised(net, fnn.losses.mse), params, opt, (x, y),
                             epochs=epochs, batch_size=config["batch_size"],
                             seed=config["seed"], progress=False)
            seconds = time.perf_counter() - start
            test_mse = float(measure(result.params, xt, yt)[0])
            rows[kind][str(length)] = {
                "test_mse": test_mse, "train_loss_last_epoch": float(result.history["loss"][-1]),
                "solved": test_mse < SOLVED, "failed": test_mse > FAILED,
                "learning_rate": lr, "train_seconds": seconds,
                "input_grad_norm_first": float(norms[0]), "input_grad_norm_last": float(norms[-1]),
                "input_grad_ratio_first_to_last": float(norms[0] / norms[-1]),
            }
            grad_curves[kind][str(length)] = norms
            curves[kind][str(length)] = result.history["loss"]

    def mse(kind, length):
        return rows.get(kind, {}).get(str(length), {}).get("test_mse")

    longest = {kind: max([int(t) for t, r in rows[kind].items() if r["solved"]], default=None)
               for kind in rows}
    rnn_100, lstm_300 = mse("rnn", 100), mse("lstm", 300)
    evidence = {"rnn_test_mse_at_100": rnn_100, "lstm_test_mse_at_300": lstm_300,
                "rnn_fails_at_100": rnn_100 is not None and rnn_100 > FAILED,
                "lstm_solves_300": lstm_300 is not None and lstm_300 < SOLVED}
    supported = evidence["rnn_fails_at_100"] and evidence["lstm_solves_300"]
    table = "; ".join(f"{k}: " + ", ".join(f"T={t} {r['test_mse']:.3f}" for t, r in v.items())
                      for k, v in rows.items())
    return {
        "claim": CLAIM,
        "supported": bool(supported),
        "evidence": evidence,
        "criteria": {"solved": f"test MSE < {SOLVED:.4f} (10% of the baseline)",
                     "failed": f"test MSE > {FAILED:.4f} (50% of the baseline)"},
        "baseline_mse": ADDING_BASELINE_MSE,
        "results": rows,
        "longest_solved": longest,
        "input_grad_norms": grad_curves,
        "train_curves": curves,
        "summary": (f"test MSE (baseline {ADDING_BASELINE_MSE:.3f}) {table}; longest solved "
                    f"{longest}; claim {'supported' if supported else 'not supported'}"),
    }


def figures(results, out_dir):
    fig, (ax_mse, ax_grad, ax_curve) = plot.figure(3, size=(4.6, 3.8))
    rows = results["results"]
    for i, (kind, by_length) in enumerate(rows.items()):
        lengths = [int(t) for t in by_length]
        ax_mse.plot(lengths, [r["test_mse"] for r in by_length.values()], "o-",
                    color=plot.COLORS[i], label=kind)
    ax_mse.axhline(results["baseline_mse"], color="k", ls="--", lw=1, label="predict 1")
    ax_mse.axhline(results["baseline_mse"] * 0.1, color="k", ls=":", lw=1, label="solved")
    plot.decorate(ax_mse, xlabel="sequence length T", ylabel="test MSE",
                  title="adding problem after equal training", logy=True, legend_size=8)

    longest = max(int(t) for t in next(iter(rows.values())))
    for i, (kind, by_length) in enumerate(results["input_grad_norms"].items()):
        norms = np.asarray(by_length[str(longest)])
        ax_grad.plot(np.arange(1, len(norms) + 1), norms, color=plot.COLORS[i], label=kind)
    plot.decorate(ax_grad, xlabel="time step t", ylabel="||dl/dx_t|| at initialisation",
                  title=f"gradient reaching each input, T={longest}", logy=True, legend_size=8)

    mid = sorted(int(t) for t in next(iter(rows.values())))[len(next(iter(rows.values()))) // 2]
    plot.loss_curves(ax_curve, {k: v[str(mid)] for k, v in results["train_curves"].items()},
                     xlabel="epoch", ylabel="train MSE", title=f"training, T={mid}")
    return [plot.save(fig, f"{out_dir}/memory_length.png")]
