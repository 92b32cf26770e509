"""Echo state network vs LSTM on the Mackey-Glass series (tau = 17): one-step-ahead and
84-step free-running forecasts (Jaeger & Haas 2004's benchmark).

Data: ``fnn.data.mackey_glass`` (RK4, dt = 0.1, sampled every time unit), standardised
with the training statistics; the first ``train`` samples train both models, the rest test.

ESN (seed 000: "a very sparsely connected hidden layer, about 1% connectivity"): 1000 tanh
units, 1% connectivity, spectral radius 0.9, input scaling 0.2, bias 0.2, washout 200; the
readout is one ridge regression (ridge 1e-9), no gradient training. These settings came
from a small manual search on the training range (spectral radius 0.8-1.1, leak 0.3-1,
input scaling 0.1-0.5, ridge 1e-9-1e-7).

LSTM: ``Recurrent(LSTMCell(hidden)) -> Dense(1)`` trained with Adam to predict the next
value at every step of windows cut from the same training range (teacher forcing), then
run in closed loop like the ESN.

Metrics (series standardised, so NRMSE = RMSE / std):
  one-step NRMSE  teacher-forced predictions over the whole test range;
  NRMSE-84        free-running from ``trials`` starting points in the test range (each
                  after a teacher-forced warm-up on the preceding ``warmup`` samples), the
                  RMS over trials of the error at step 84 (Jaeger's measure), and the
                  NRMSE over all 84 steps.
Wall times cover the whole fit (ESN: building the reservoir, its states and the solve;
LSTM: compilation and training).
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import fnn
from fnn import plot
from fnn.data.sequences import mackey_glass
from fnn.layers.recurrent import scan_cell
from fnn.models.reservoir import EchoStateNetwork, nrmse

DESCRIPTION = "echo state network vs LSTM forecasting Mackey-Glass: one step and 84 free-running"
CONFIG = {"length": 6000, "train": 4000, "horizon": 84, "trials": 20, "warmup": 400,
          "esn": {"units": 1000, "connectivity": 0.01, "spectral_radius": 0.9,
                  "input_scaling": 0.2, "leak_rate": 1.0, "bias_scaling": 0.2,
                  "washout": 200},
          "ridge": 1e-9,
          "lstm": {"hidden": 32, "window": 100, "steps": 3000, "batch_size": 32,
                   "learning_rate": 3e-3},
          "seed": 0}
QUICK = {"length": 900, "train": 600, "trials": 3, "warmup": 100,
         "esn": {"units": 100, "connectivity": 0.05, "spectral_radius": 0.9,
                 "input_scaling": 0.2, "leak_rate": 1.0, "bias_scaling": 0.2, "washout": 50},
         "lstm": {"hidden": 8, "window": 20, "steps": 30, "batch_size": 16,
                  "learning_rate": 3e-3}}


def lstm_forecaster(hidden: int):
    return fnn.serial(fnn.Recurrent(fnn.LSTMCell(hidden)), fnn.Dense(1))


def lstm_generate(params, hidden: int, warm, steps: int):
    """Closed-loop LSTM: warm (B, W, 1) teacher-forced, then each output is the next input.
    Returns (B, steps)."""
    cell = fnn.LSTMCell(hidden)
    p_cell, p_out = params["lstm_0"], params["dense_0"]
    readout = lambda h: h @ p_out["w"] + p_out["b"][None]
    carry, hs = scan_cell(cell, p_cell, warm)

    def body(carry, _):
        carry, y = carry
        carry, h = cell.step(p_cell, carry, y)
        return (carry, readout(h)), y[:, 0]

    _, ys = lax.scan(body, (carry, readout(hs[:, -1])), None, length=steps)
    return ys.T


def run(config):
    s = mackey_glass(config["length"], dtype=np.float64)
    train, horizon = config["train"], config["horizon"]
    mu, sd = s[:train].mean(), s[:train].std()
    z = ((s - mu) / sd).astype(np.float32)
    test_len = len(z) - train - horizon
    starts = train + (np.arange(config["trials"]) * test_len) // config["trials"]
    w = config["warmup"]
    warm = np.stack([z[t - w:t, None] for t in starts])
    truth = np.stack([z[t:t + horizon] for t in starts])

    def scores(one_step, free):
        return {"one_step_nrmse": float(nrmse(one_step, z[train + 1:])),
                "nrmse_84": float(np.sqrt(np.mean((free[:, -1] - truth[:, -1]) ** 2))),
                "free_run_nrmse": float(nrmse(free, truth))}

    # ---- ESN: closed-form readout
    esn = EchoStateNetwork(**config["esn"])
    start = time.perf_counter()
    reservoir = esn.init_reservoir(jax.random.key(config["seed"]), 1)
    readout = esn.fit(reservoir, z[:train - 1, None], z[1:train, None], ridge=config["ridge"])
    jax.block_until_ready(readout)
    esn_seconds = time.perf_counter() - start
    esn_one = np.asarray(esn.predict(reservoir, readout, z[:-1, None]))[train:, 0]
    esn_free = np.asarray(esn.generate(reservoir, readout, warm, horizon))[..., 0]
    esn_scores = {**scores(esn_one, esn_free), "fit_seconds": esn_seconds,
                  "trained_params": int(readout["w"].size + readout["b"].size)}

    # ---- LSTM: gradient training on windows of the same training range
    cfg = config["lstm"]
    win = cfg["window"]
    idx = np.arange(train - win)
    x = np.stack([z[i:i + win] for i in idx])[..., None]
    y = np.stack([z[i + 1:i + win + 1] for i in idx])[..., None]
    net = lstm_forecaster(cfg["hidden"])
    params, _ = net.init(jax.random.key(config["seed"]), (win, 1))
    epochs = max(1, cfg["steps"] * cfg["batch_size"] // len(x))
    opt = fnn.optim.chain(fnn.optim.clip_by_global_norm(1.0), fnn.optim.adam(cfg["learning_rate"]))
    start = time.perf_counter()
    fitted = fnn.fit(fnn.supervised(net, fnn.losses.mse), params, opt, (x, y), epochs=epochs,
                     batch_size=cfg["batch_size"], seed=config["seed"], progress=False)
    jax.block_until_ready(fitted.params)
    lstm_seconds = time.perf_counter() - start
    lstm_one = np.asarray(jax.jit(net)(fitted.params, z[None, :-1, None]))[0, train:, 0]
    gen = jax.jit(lstm_generate, static_argnums=(1, 3))
    lstm_free = np.asarray(gen(fitted.params, cfg["hidden"], jnp.asarray(warm), horizon))
    lstm_scores = {**scores(lstm_one, lstm_free), "fit_seconds": lstm_seconds,
                   "trained_params": int(sum(a.size for a in jax.tree.leaves(fitted.params))),
                   "epochs": epochs, "train_curve": fitted.history["loss"]}

    ratio = lstm_scores["nrmse_84"] / esn_scores["nrmse_84"]
    return {
        "esn": esn_scores, "lstm": lstm_scores,
        "nrmse_84_ratio_lstm_over_esn": ratio,
        "fit_time_ratio_lstm_over_esn": lstm_seconds / esn_seconds,
        "reference": "Jaeger & Haas 2004: NRMSE-84 ~ 10^-4.2 (6e-5) with a 1000-unit ESN",
        "plot": {"t": np.arange(train - 200, train + 300), "truth": z[train - 200:train + 300],
                 "esn_one": esn_one[:300], "lstm_one": lstm_one[:300],
                 "start": int(starts[0]), "esn_free": esn_free[0], "lstm_free": lstm_free[0],
                 "truth_free": truth[0]},
        "summary": (f"ESN ({config['esn']['units']} units, fit {esn_seconds:.1f}s): one-step "
                    f"NRMSE {esn_scores['one_step_nrmse']:.1e}, NRMSE-84 "
                    f"{esn_scores['nrmse_84']:.1e}; LSTM ({cfg['hidden']} units, fit "
                    f"{lstm_seconds:.1f}s): {lstm_scores['one_step_nrmse']:.1e}, "
                    f"{lstm_scores['nrmse_84']:.1e}"),
    }


def figures(results, out_dir):
    fig, (ax_one, ax_free, ax_err) = plot.figure(3, size=(4.8, 3.6))
    p = results["plot"]
    t = np.asarray(p["t"])
    train = t[0] + 200
    ax_one.plot(t, p["truth"], color="k", lw=1.2, label="Mackey-Glass")
    ax_one.plot(np.arange(train, train + len(p["esn_one"])), p["esn_one"], "--",
                color=plot.COLORS[0], label="ESN one-step")
    ax_one.plot(np.arange(train, train + len(p["lstm_one"])), p["lstm_one"], ":",
                color=plot.COLORS[1], label="LSTM one-step")
    ax_one.axvline(train, color="gray", lw=0.8)
    ax_one.set_xlabel("time step")
    ax_one.set_title("one step ahead (test starts at the line)")
    ax_one.legend(frameon=False, fontsize=8)

    h = np.arange(1, len(p["truth_free"]) + 1)
    ax_free.plot(h, p["truth_free"], color="k", lw=1.2, label="truth")
    ax_free.plot(h, p["esn_free"], "--", color=plot.COLORS[0], label="ESN free-running")
    ax_free.plot(h, p["lstm_free"], ":", color=plot.COLORS[1], label="LSTM free-running")
    ax_free.set_xlabel("steps after the warm-up")
    ax_free.set_title(f"free-running from t={p['start']}")
    ax_free.legend(frameon=False, fontsize=8)

    names = ["one_step_nrmse", "free_run_nrmse", "nrmse_84"]
    xs = np.arange(len(names))
    for i, model in enumerate(("esn", "lstm")):
        ax_err.bar(xs + (i - 0.5) * 0.38, [results[model][n] for n in names], 0.38,
                   color=plot.COLORS[i],
                   label=f"{model.upper()} (fit {results[model]['fit_seconds']:.1f}s)")
    ax_err.set_xticks(xs, ["one step", "84 steps (all)", "step 84"])
    plot.log_scale(ax_err, "y")
    ax_err.set_ylabel("NRMSE")
    ax_err.set_title("test error")
    ax_err.legend(frameon=False, fontsize=8)
    return [plot.save(fig, f"{out_dir}/esn_forecast.png")]
