"""The ``playground`` row of scripts/bench.py: fnn playground's speed on TensorFlow
Playground's default setup (2 hidden layers of 4, tanh, 500 points, half for training,
batch 10), measured through the real server (Starlette's TestClient over the WebSocket).

Figures: epochs/s and frames/s the page receives while playing (after warm-up, over
``seconds``); the time from a change to the next frame trained with it, for a change of the
learning rate (kept in the optimizer state: no recompilation), of the regularization (none to
L2, and its rate: the penalty weights are runtime inputs, no recompilation), of the data (noise:
same shapes, the compiled code is reused) and of the architecture (a new network: compiles its
init, its observe program and the engine's program). A program
compiled before in this process or found in the persistent compile cache is not compiled
again: run with ``FNN_COMPILE_CACHE=0`` for the architecture's cold figure. Goals (issue 24): >= 1,000
epochs/s at >= 10 frames/s; learning rate, regularization rate and data within 200 ms;
architecture within 1.5 s.
"""
from __future__ import annotations

import time

GOALS = {"epochs_per_s": (">=", 1000), "frames_per_s": (">=", 10),
         "learning_rate_change_s": ("<=", 0.2), "regularization_change_s": ("<=", 0.2),
         "data_change_s": ("<=", 0.2), "architecture_change_s": ("<=", 1.5)}


def playground_row(seconds: float = 3.0) -> dict:
    from starlette.testclient import TestClient

    from fnn.app.playground.server import app

    def until(ws, kind):
        while True:
            m = ws.receive_json()
            if m["type"] == kind:
                return m

    def change(ws, cfg):
        """Seconds from sending ``cfg`` (paused) to the next trained frame (one step)."""
        t = time.perf_counter()
        ws.send_json({"type": "config", "config": cfg})
        until(ws, "frame")
        ws.send_json({"type": "step"})
        until(ws, "frame")
        return time.perf_counter() - t

    out = {}
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "config", "config": {}})
        until(ws, "frame")
        ws.send_json({"type": "play"})
        t_end = time.perf_counter() + max(seconds, 8.0)   # warm-up: compile every chunk size
        while time.perf_counter() < t_end:
            until(ws, "frame")
        first = until(ws, "frame")
        t0, frames, epoch = time.perf_counter(), 0, first["epoch"]
        while time.perf_counter() - t0 < seconds:
            epoch = until(ws, "frame")["epoch"]
            frames += 1
        dt = time.perf_counter() - t0
        out["epochs_per_s"] = (epoch - first["epoch"]) / dt
        out["frames_per_s"] = frames / dt
        ws.send_json({"type": "pause"})
        until(ws, "paused")
        ws.send_json({"type": "step"})          # compile the one-epoch chunk first
        until(ws, "frame")
        out["learning_rate_change_s"] = change(ws, {"learningRate": 0.1})
        out["regularization_change_s"] = min(
            change(ws, {"regularization": "L2", "regularizationRate": 0.001}),
            change(ws, {"regularizationRate": 0.003}))
        out["data_change_s"] = change(ws, {"noise": 10})
        out["architecture_change_s"] = change(ws, {"networkShape": [4, 3]})
    out["goals_met"] = {k: (v >= goal if op == ">=" else v <= goal)
                        for k, (op, goal) in GOALS.items() for v in [out[k]]}
    return out


def describe(r: dict) -> str:
    return (f"playground: {r['epochs_per_s']:,.0f} epochs/s at {r['frames_per_s']:.1f} "
            f"frames/s; next frame after a change of learning rate "
            f"{1000 * r['learning_rate_change_s']:.0f} ms, regularization rate "
            f"{1000 * r['regularization_change_s']:.0f} ms, data "
            f"{1000 * r['data_change_s']:.0f} ms, architecture "
            f"{1000 * r['architecture_change_s']:.0f} ms")
