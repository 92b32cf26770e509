"""fnn playground: the configuration's validation, the session logic (no browser), the export,
the presets' explanations, the server over its WebSocket (Starlette's TestClient), and Ctrl-C."""
import base64
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
import weakref

import jax
import numpy as np
import pytest

import fnn

from fnn.app.playground import config as pconfig
from fnn.app.playground.presets import explain_collapse, explain_oscillation, jitter
from fnn.app.playground.session import (GRID, NEURON_GRID, Session, build, compare,
                                        features, init_params, output_sizes)
from fnn.data import multi_gaussian, plane
from lowerings import Lowerings

# Starlette's TestClient warns that it will move from httpx to httpx2 (not packaged here yet)
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def session():
    return Session({"networkShape": [3], "numPoints": 200})


# ------------------------------------------------------------------ config

@pytest.mark.parametrize("bad, words", [
    ({"learningrate": 0.1}, "unknown key(s) ['learningrate']"),
    ({"networkShape": [4] * 7}, "at most 6 layers of 1 to 8 units"),
    ({"networkShape": [9]}, "at most 6 layers of 1 to 8 units"),
    ({"numPoints": 2001}, "numPoints must be an integer in [20, 2000]"),
    ({"activation": "swish"}, "activation must be one of"),
    ({"learningRate": "fast"}, "learningRate must be a number"),
    ({"learningRate": float("nan")}, "learningRate must be a number"),
    ({"x": False, "y": False}, "at least one of x, y"),
    ({"batchSize": 300}, "batchSize must be at most the 250 training points"),
    ({"discretize": "yes"}, "discretize must be true or false"),
])
def test_config_refuses_bad_settings_naming_the_key(bad, words):
    with pytest.raises(ValueError, match="playground config") as err:
        pconfig.validate(bad)
    assert words in str(err.value)


def test_config_defaults_are_tensorflow_playgrounds_and_shape_strings_parse():
    c = pconfig.validate({})
    assert (c["learningRate"], c["activation"], c["networkShape"], c["batchSize"],
            c["percTrainData"], c["numPoints"]) == (0.03, "tanh", [4, 2], 10, 50, 500)
    assert pconfig.validate({"networkShape": "8,8,2"})["networkShape"] == [8, 8, 2]
    assert pconfig.validate({"networkShape": ""})["networkShape"] == []
    assert pconfig.optimizer_hyperparams("adam") == {"b1": 0.9, "b2": 0.999, "eps": 1e-8,
                                                     "eps_root": 0.0}
    args = pconfig.validate({"optimizer": "adam", "optimizerArgs": {"b1": 0.8}})
    assert args["optimizerArgs"] == {"b1": 0.8}


def test_regression_sets_plane_and_multi_gaussian():
    x, y = plane(300, seed=1)
    assert x.shape == (300, 2) and y.dtype == np.float32
    np.testing.assert_allclose(y, (x[:, 0] + x[:, 1]) / 2, atol=1e-6)
    x, y = multi_gaussian(300, seed=1)
    assert y.min() >= -1 and y.max() <= 1 and y.min() < -0.5 and y.max() > 0.5
    np.testing.assert_array_equal(multi_gaussian(50, noise=0.1, seed=3)[0],
                                  multi_gaussian(50, noise=0.1, seed=3)[0])


# ------------------------------------------------------------------ session

def test_session_trains_frames_and_the_loss_falls(session):
    session.reset()
    first = session.snapshot(full=True)
    assert first["epoch"] == 0 and len(first["train"]["x"]) == 100 and len(first["test"]["x"]) == 100
    for _ in range(6):
        f = session.frame()
    assert f["epoch"] >= 60 and f["trainLoss"] < 0.5 * first["trainLoss"]
    assert len(base64.b64decode(f["output"])) == GRID * GRID
    # one map per input feature (x1, x2) and per hidden unit (3)
    assert [len(layer) for layer in f["neurons"]] == [2, 3]
    assert len(base64.b64decode(f["neurons"][1][0])) == NEURON_GRID ** 2
    assert np.array(f["weights"][0]).shape == (2, 3) and np.array(f["weights"][1]).shape == (3, 2)
    assert len(f["norms"]["weight"]) == 2 and all(g > 0 for g in f["norms"]["grad"])
    # the decision map separates the disc (class 0, orange, < 128) from the ring (blue)
    out = np.frombuffer(base64.b64decode(f["output"]), np.uint8).reshape(GRID, GRID)
    assert out[GRID // 2, GRID // 2] < 100 and out[0, 0] > 155


def test_session_updates_hyperparameters_in_place_and_rebuilds_otherwise(session):
    session.reset()
    session.train_epochs(10)
    assert session.update({"learningRate": 0.1}) == "hyper"
    assert session.epoch == 10
    assert float(session.ts.opt_state.hyperparams["learning_rate"]) == pytest.approx(0.1)
    assert session.update({"discretize": True}) == "view" and session.epoch == 10
    assert session.update({"networkShape": [2, 2]}) == "run" and session.epoch == 0
    assert session.update({"dataset": "xor"}) == "data" and session.epoch == 0
    with pytest.raises(ValueError, match="unknown key"):
        session.update({"bogus": 1})
    assert session.config["dataset"] == "xor"          # a refused change changes nothing
    session.update({"dataset": "circle", "networkShape": [3], "learningRate": 0.03,
                    "discretize": False})


def test_a_regularization_change_compiles_nothing_and_trains_as_fit_would():
    cfg = {"networkShape": [3, 2], "numPoints": 120, "batchSize": 6}
    s = Session(cfg)
    s.step()                                     # compiles this structure's programs
    losses = {}
    with Lowerings(every=True) as lowered:
        for change in [{"regularization": "L2", "regularizationRate": 0.01},
                       {"regularizationRate": 0.3}, {"regularization": "L1"},
                       {"regularizationRate": 0.001}, {"regularization": "none"}]:
            assert s.update(change) == "hyper"
            s.step()
            losses[json.dumps(change)] = s.train_loss
    assert lowered.names == []
    assert s.epoch == 6 and len(set(losses.values())) == 5
    # a penalty set from the start: bit for bit fnn.fit with fnn.supervised(net, l1=rate)
    s = Session({**cfg, "regularization": "L1", "regularizationRate": 0.3})
    with Lowerings(every=True) as lowered:
        for _ in range(4):
            s.step()
    assert lowered.names == []
    c = s.config
    net, objective, optimizer, _ = build(c)
    train = (features(c, s.raw[0]), s.raw[1])
    params = init_params(output_sizes(c), c["activation"], c["initializer"], 2,
                         jax.random.key(c["seed"]))
    res = fnn.fit(objective, params, optimizer, train, epochs=4, batch_size=6, seed=0,
                  progress=False)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(s.ts.params),
                 jax.device_get(res.params))
    assert abs(fnn.evaluate(objective, res.params, {}, train)["loss"] - s.train_loss) <= 1e-6


def test_init_is_the_exported_scripts_init_for_every_initializer():
    # for every initializer the session's init_params and the script's jax.jit(net.init) are
    # the same program (equal jaxprs, traced without compiling); a normal and the orthogonal
    # initializer are also compiled both ways and give the same bits
    key = jax.random.key(3)
    program = lambda fn: str(jax.make_jaxpr(fn)(key).eqns[0].params["jaxpr"])
    for init in pconfig.INITIALIZERS:
        c = pconfig.validate({"networkShape": [5, 3], "initializer": init})
        net, _, _, _ = build(c)
        ours = lambda k: init_params(output_sizes(c), c["activation"], init, 2, k)
        script = lambda k: jax.jit(net.init, static_argnums=1)(k, (2,))[0]
        assert program(ours) == program(script), init
        if init in ("glorot_normal", "orthogonal"):
            jax.tree.map(np.testing.assert_array_equal, ours(key), script(key))


def test_session_says_diverged_and_keeps_going():
    s = Session({"problem": "regression", "learningRate": 10.0, "activation": "linear",
                 "networkShape": [4], "numPoints": 100, "xSquared": True})
    for _ in range(5):
        f = s.frame()
        if f["diverged"]:
            break
    assert f["diverged"] and f["trainLoss"] is None
    assert s.frame()["epoch"] == f["epoch"]        # no further training, no exception
    json.dumps(f, allow_nan=False)                 # still valid JSON


def test_exported_script_reproduces_the_final_training_loss(session, tmp_path):
    session.reset()
    for _ in range(3):
        session.frame()
    path = tmp_path / "run.py"
    path.write_text(session.export_script())
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    printed = float(out.stdout.split("training loss ")[1].split(",")[0])
    assert abs(printed - session.train_loss) <= 1e-6
    assert f"EPOCHS = {session.epoch}" in path.read_text()


def test_every_optimizer_argument_and_the_initializer_reach_fnn():
    s = Session({"optimizer": "adam", "optimizerArgs": {"b1": 0.8}, "networkShape": [2],
                 "numPoints": 100, "initializer": "he_normal"})
    hp = s.ts.opt_state.hyperparams
    assert float(hp["b1"]) == pytest.approx(0.8) and float(hp["b2"]) == pytest.approx(0.999)
    s.train_epochs(5)
    assert s.update({"optimizerArgs": {"b1": 0.5}}) == "hyper" and s.epoch == 5
    assert float(s.ts.opt_state.hyperparams["b1"]) == pytest.approx(0.5)
    glorot = Session({"networkShape": [2], "numPoints": 100})
    assert not np.allclose(glorot.ts.params["dense_0"]["w"], s.ts.params["dense_0"]["w"])
    text = s.export_script()       # a setting changed mid-run: the script says so, no check
    assert "PAGE_TRAIN_LOSS = None" in text and "changed a setting during the run" in text
    assert "fnn.optim.inject_hyperparams(fnn.optim.adam)(learning_rate=0.03, b1=0.5)" in text


def test_checkpoint_holds_params_and_config(session, tmp_path):
    import fnn
    session.checkpoint(tmp_path / "c.npz")
    ck = fnn.checkpoint.load(tmp_path / "c.npz")
    assert ck.metadata["playground"]["networkShape"] == [3]
    np.testing.assert_array_equal(ck.tree["params"]["dense_0"]["w"],
                                  np.asarray(session.ts.params["dense_0"]["w"]))


def test_compare_trains_variants_as_one_sweep_and_refuses_bad_requests(session):
    res = compare(session.config, "learningRate", [0.003, 0.3], 30)
    a, b = res["variants"]
    assert len(a["loss"]) == 30 and b["finalLoss"] < a["finalLoss"]
    with pytest.raises(ValueError, match="compare: key must be one of"):
        compare(session.config, "noise", [0, 10], 5)
    with pytest.raises(ValueError, match="1 to 8 settings"):
        compare(session.config, "seed", list(range(9)), 5)


def test_presets_explain_from_the_run():
    curves = {"variants": [{"value": 0.01, "loss": [1.0, 0.9, 0.8, 0.79, 0.78, 0.77]},
                           {"value": 3.0, "loss": [1.0, 0.5, 1.2, 0.4, 1.3, 0.3]}]}
    assert jitter(curves["variants"][0]["loss"]) == pytest.approx(0.01, rel=1e-6)
    batches = {"learningRate": 0.3, "variants": [{"value": 1, "loss": [1, 0.5, 1, 0.5]},
                                                  {"value": 50, "loss": [1, 0.9, 0.8, 0.8]}]}
    text = explain_oscillation(curves, batches)
    assert "at lr 3 each step overshoots" in text and "lr 0.01 is the calmest" in text
    assert "At lr 0.3 by batch size: batch 1: 0.500; batch 50: 0.000." in text
    s = Session({"learningRate": 1.0, "activation": "relu", "networkShape": [8, 8],
                 "numPoints": 100})
    s.train_epochs(10)
    text = explain_collapse(s)
    assert "layer 1: |W|" in text and "ReLU units are dead" in text


# ------------------------------------------------------------------ server (TestClient)

@pytest.fixture()
def client():
    from starlette.testclient import TestClient
    from fnn.app.playground.server import app
    with TestClient(app) as c:
        yield c


def _until(ws, kind):
    while True:
        m = ws.receive_json()
        if m["type"] == kind:
            return m


def test_server_serves_the_page_and_its_modules(client):
    page = client.get("/")
    assert page.status_code == 200 and "window.fnnPlayground" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert "fnnPlayground" in client.get("/static/app.js").text
    assert client.get("/static/style.css").status_code == 200


def test_server_trains_frames_pauses_and_refuses_bad_messages(client):
    from fnn.app.playground.server import SESSIONS
    with client.websocket_connect("/ws") as ws:
        ws.send_text("not json")
        assert "not JSON" in _until(ws, "error")["message"]
        ws.send_json({"type": "play"})
        assert "send a 'config' message first" in _until(ws, "error")["message"]
        ws.send_json({"type": "config", "config": {"networkShape": [3], "numPoints": 200}})
        assert _until(ws, "frame")["config"]["networkShape"] == [3]
        for bad, words in [({"type": "config", "config": {"networkShape": [9] * 7}},
                            "at most 6 layers"),
                           ({"type": "fly"}, "unknown message type 'fly'"),
                           ({"type": "play", "extra": 1}, "unknown key(s) ['extra']"),
                           ({"type": "compare", "key": "seed", "values": list(range(20)),
                             "epochs": 5}, "1 to 8 settings"),
                           ({"type": "preset", "name": "nope"}, "preset: name must be"),
                           ({"type": "config", "config": {"x": "a" * 70000}}, "at most 65536"),
                           ([1, 2], "must be a JSON object")]:
            ws.send_text(json.dumps(bad))
            assert words in _until(ws, "error")["message"]
        ws.send_json({"type": "play"})
        epochs = [_until(ws, "frame")["epoch"] for _ in range(3)]
        assert epochs == sorted(epochs) and epochs[0] > 0
        ws.send_json({"type": "pause"})
        _until(ws, "paused")
        ws.send_json({"type": "step"})
        stepped = _until(ws, "frame")
        ws.send_json({"type": "export"})
        assert "fnn.fit(objective" in _until(ws, "export")["text"]
        assert len(SESSIONS) == 1
    assert stepped["epoch"] > epochs[-1]


def test_server_tabs_train_independently_and_a_closed_tab_leaves_nothing(client):
    from fnn.app.playground import server
    with client.websocket_connect("/ws") as a, client.websocket_connect("/ws") as b:
        a.send_json({"type": "config", "config": {"networkShape": [3], "numPoints": 200}})
        b.send_json({"type": "config", "config": {"networkShape": [2], "numPoints": 200,
                                                  "dataset": "xor"}})
        _until(a, "frame"), _until(b, "frame")
        a.send_json({"type": "play"})
        assert _until(a, "frame")["epoch"] > 0
        b.send_json({"type": "step"})
        assert _until(b, "frame")["epoch"] == 1       # b is not moved by a's training
        assert len(server.SESSIONS) == 2
        tabs = list(server.SESSIONS)
        sessions = [weakref.ref(t.session) for t in tabs]
        playing = [t.task for t in tabs if t.task is not None]
        assert len(playing) == 1
    deadline = time.time() + 10
    while server.SESSIONS and time.time() < deadline:
        time.sleep(0.05)
    assert not server.SESSIONS                      # both closed: no session left
    assert all(t.task is None and t.session is None for t in tabs)
    assert playing[0].done()                        # a's training task ended (cancelled)
    del tabs, playing
    while any(r() is not None for r in sessions) and time.time() < deadline + 10:
        time.sleep(0.05)      # a chunk already on a worker thread finishes, then nothing
        gc.collect()
    assert [r() for r in sessions] == [None, None]  # and the sessions' memory is freed


def test_server_reset_regenerate_checkpoint_and_a_preset(client, tmp_path):
    import fnn
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "config", "config": {"networkShape": [3], "numPoints": 200}})
        first = _until(ws, "frame")
        ws.send_json({"type": "step"})
        assert _until(ws, "frame")["epoch"] == 1
        ws.send_json({"type": "reset"})
        reset = _until(ws, "frame")
        assert reset["epoch"] == 0 and reset["trainLoss"] == first["trainLoss"]
        ws.send_json({"type": "regenerate"})
        regen = _until(ws, "frame")
        assert regen["config"]["seed"] == 1 and regen["train"]["x"] != first["train"]["x"]
        ws.send_json({"type": "checkpoint"})
        ck = _until(ws, "checkpoint")
        (tmp_path / ck["filename"]).write_bytes(base64.b64decode(ck["base64"]))
        loaded = fnn.checkpoint.load(tmp_path / ck["filename"])
        assert loaded.metadata["playground"]["seed"] == 1
        ws.send_json({"type": "preset", "name": "collapse"})
        frame = _until(ws, "frame")
        assert frame["config"]["learningRate"] == 1.0 and frame["epoch"] == 300
        assert "ReLU units are dead" in _until(ws, "explain")["text"]


# ------------------------------------------------------------------ a real server, Ctrl-C

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port):
    """``python -m fnn.app.cli playground --no-browser --port PORT`` as a subprocess, once it
    answers."""
    import httpx
    proc = subprocess.Popen([sys.executable, "-m", "fnn.app.cli", "playground", "--no-browser",
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("fnn playground did not start: " + proc.communicate()[0])


@pytest.mark.xdist_group("playground")
def test_ctrl_c_stops_the_server_cleanly_while_a_tab_trains():
    import asyncio

    import websockets
    port = _free_port()
    proc = start_server(port)

    async def play_then_interrupt():
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await ws.send(json.dumps({"type": "config", "config": {"networkShape": [3],
                                                                   "numPoints": 200}}))
            await ws.send(json.dumps({"type": "play"}))
            frames = 0
            while frames < 3:
                frames += json.loads(await ws.recv())["type"] == "frame"
            proc.send_signal(signal.SIGINT)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await ws.recv()
            assert closed.value.rcvd.code == 1012          # the server said "restart", cleanly

    asyncio.run(play_then_interrupt())
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "serving on http://127.0.0.1:" in out and "fnn playground: stopped" in out
    assert "Traceback" not in out


def test_the_page_ships_as_package_data():
    """A non-editable install ships every file of static/ (pyproject's package-data globs)."""
    import fnmatch
    import tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        globs = tomllib.load(f)["tool"]["setuptools"]["package-data"]["fnn.app.playground"]
    static = os.path.join(ROOT, "fnn", "app", "playground", "static")
    files = sorted(f"static/{n}" for n in os.listdir(static))
    assert files and all(any(fnmatch.fnmatch(f, g) for g in globs) for f in files), files
    page = open(os.path.join(static, "index.html")).read()
    assert "http" not in page.replace("http-equiv", "")     # no CDN: every asset is local


def test_cli_binds_localhost_by_default_and_warns_for_another_address(monkeypatch, capsys):
    import argparse

    import uvicorn

    from fnn.app import playground
    from fnn.app.cli import build_parser
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    args = build_parser().parse_args(["playground", "--no-browser"])
    assert playground.main(args) == 0
    out = capsys.readouterr()
    assert calls[-1]["host"] == "127.0.0.1" and calls[-1]["port"] == playground.DEFAULT_PORT
    assert f"serving on http://127.0.0.1:{playground.DEFAULT_PORT}/" in out.out
    assert "warning" not in out.err
    playground.main(argparse.Namespace(port=9001, host="0.0.0.0", no_browser=True))
    assert calls[-1]["host"] == "0.0.0.0"
    assert "warning: serving on 0.0.0.0, reachable from other machines" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--port must be in"):
        playground.main(argparse.Namespace(port=70000, host="127.0.0.1", no_browser=True))
